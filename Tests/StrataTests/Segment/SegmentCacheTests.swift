// The node cache (graph records nearest the entry point, in RAM) and read-ahead: searches return the
// same results with and without them, the memory budget is respected, and the cached set is a
// deterministic BFS prefix from the medoid.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class SegmentCacheTests: StrataTestCase {
    private let dimension = 16

    private func sampleRows(count: Int, seed: UInt64) -> [SegmentRow] {
        clusteredRows(count: count, dimension: dimension, clusters: 16, seed: seed, idStride: 5, idBase: 1)
    }

    private func writeIndexed(_ path: String, rows: [SegmentRow]) throws {
        try writeIndexedSegment(path, rows: rows, dimension: dimension)
    }

    func testResultsAreIdenticalWithAndWithoutCacheAndReadAhead() throws {
        let rows = sampleRows(count: 3000, seed: 11)
        let path = tmpPath("cache.seg")
        try writeIndexed(path, rows: rows)
        let plain = try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 0))
        let small = try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 3000 * 4 + 40 * 4096))
        let whole = try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 64 << 20))
        let byDefault = try Segment.open(path: path)
        XCTAssertEqual(plain.nodeCacheSummary.nodes, 0)
        XCTAssertGreaterThan(small.nodeCacheSummary.nodes, 1)
        XCTAssertLessThan(small.nodeCacheSummary.nodes, 3000)
        XCTAssertEqual(whole.nodeCacheSummary.nodes, 3000, "a budget above the graph caches every reachable node")
        XCTAssertEqual(byDefault.nodeCacheSummary.nodes, 3000)

        var rng = SplitMix64(seed: 5)
        var cachedRecords = 0
        for _ in 0..<60 {
            let q = rows[rng.int(rows.count)].vector.map { $0 + rng.gaussianish() * 0.5 }
            for (w, readAhead) in [(1, false), (4, false), (4, true), (8, true)] {
                let options = SearchOptions(k: 10, listSize: 40, beamWidth: w, readAhead: readAhead)
                let (reference, refStats) = try plain.searchWithStats(query: q, options: options)
                XCTAssertEqual(refStats?.cachedRecords, 0)
                for seg in [small, whole, byDefault] {
                    let (hits, stats) = try seg.searchWithStats(query: q, options: options)
                    XCTAssertEqual(hits.map(\.id), reference.map(\.id), "W \(w) read-ahead \(readAhead)")
                    XCTAssertEqual(hits.map(\.distance), reference.map(\.distance))
                    XCTAssertEqual(stats?.recordsRead, refStats?.recordsRead)
                    XCTAssertLessThanOrEqual(stats?.cachedRecords ?? 0, stats?.recordsRead ?? 0)
                    if seg === small { cachedRecords += stats?.cachedRecords ?? 0 }
                }
            }
        }
        XCTAssertGreaterThan(cachedRecords, 0, "the partial cache serves the first hops")
        // The cold preset is only knobs: same answers as its explicit form.
        let q = rows[0].vector
        XCTAssertEqual(try small.search(query: q, options: .cold(k: 5, listSize: 30)).map(\.id),
                       try plain.search(query: q, options: SearchOptions(k: 5, listSize: 30, beamWidth: SearchOptions.defaultColdBeamWidth)).map(\.id))
    }

    func testBudgetIsRespected() throws {
        let rows = sampleRows(count: 2500, seed: 3)
        let path = tmpPath("budget.seg")
        try writeIndexed(path, rows: rows)
        let record = try XCTUnwrap(Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 0)).indexSummary).recordBytes
        // The slot map is a hash map sized for the most records the budget could hold (8-byte
        // entries, a power of two >= 2x that count); whole record pages fill what it leaves.
        func expected(_ budget: Int) -> (nodes: Int, mapBytes: Int) {
            guard budget > 0 else { return (0, 0) }
            let most = min(2500, budget / (record + 16))
            var entries = 1
            while entries < 2 * most { entries <<= 1 }
            guard budget > entries * 8 else { return (0, entries * 8) }
            return (min(2500, (budget - entries * 8) / 4096 * 4096 / record, entries / 2), entries * 8)
        }
        for budget in [0, 100, 10_000, 10_000 + record, 14_096, 10 * 4096 + 123, 1 << 20, 64 << 20] {
            let seg = try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: budget))
            let c = seg.nodeCacheSummary
            XCTAssertLessThanOrEqual(c.bytes, budget, "budget \(budget)")
            let want = expected(budget)
            if c.nodes > 0 {
                XCTAssertGreaterThanOrEqual(c.bytes, want.mapBytes + c.nodes * record)
                XCTAssertGreaterThanOrEqual(c.completeLevels, 1)
            } else {
                XCTAssertEqual(c.bytes, 0)
            }
            XCTAssertEqual(c.nodes, want.nodes, "budget \(budget)")
        }
        XCTAssertEqual(try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 4096)).nodeCacheSummary.nodes, 0,
                       "a budget below one record page and its map caches nothing")
        XCTAssertEqual(try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 64 << 20)).nodeCacheSummary.nodes, 2500)
        XCTAssertEqual(SegmentOpenOptions().cacheBudgetBytes, SegmentOpenOptions.defaultCacheBudgetBytes)
    }

    func testCachedSetIsADeterministicBFSPrefix() throws {
        let rows = sampleRows(count: 2000, seed: 9)
        let path = tmpPath("bfs.seg")
        try writeIndexed(path, rows: rows)
        let seg = try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 0))
        let index = try XCTUnwrap(seg.annIndex)
        let graph = index.graph
        let budget = 2000 * 4 + 30 * 4096
        let a = NodeCache(graph: graph, budgetBytes: budget)
        let b = NodeCache(graph: graph, budgetBytes: budget)
        XCTAssertGreaterThan(a.cachedCount, 1)
        let setA = (0..<2000).filter(a.contains)
        XCTAssertEqual(setA, (0..<2000).filter(b.contains), "same graph and budget, same nodes")
        XCTAssertEqual(setA.count, a.cachedCount)
        XCTAssertTrue(a.contains(graph.medoid))
        XCTAssertFalse(a.contains(-1))
        XCTAssertFalse(a.contains(2000))
        // BFS levels from the medoid.
        var depth = [Int](repeating: -1, count: 2000)
        depth[graph.medoid] = 0
        var queue = [graph.medoid], head = 0
        while head < queue.count {
            let v = queue[head]; head += 1
            for u in graph.neighbors(of: v) ?? [] where depth[Int(u)] < 0 {
                depth[Int(u)] = depth[v] + 1
                queue.append(Int(u))
            }
        }
        let deepestCached = setA.map { depth[$0] }.max()!
        // Every node shallower than the deepest cached level is cached; levels counted as complete are.
        for v in 0..<2000 where depth[v] >= 0 && depth[v] < deepestCached {
            XCTAssertTrue(a.contains(v), "node \(v) at depth \(depth[v]) < \(deepestCached) not cached")
        }
        XCTAssertEqual(a.completeLevels, deepestCached, "levels 0..<\(deepestCached) complete, the last one partial")
        // Cached records are byte-identical copies.
        for v in setA.prefix(50) {
            let cached = try XCTUnwrap(a.record(v))
            XCTAssertEqual(Array(UnsafeRawBufferPointer(start: cached, count: a.recordSize)),
                           Array(UnsafeRawBufferPointer(start: graph.unsafeRecord(v), count: a.recordSize)))
        }
        XCTAssertNil(a.record(setA.count == 2000 ? 0 : (0..<2000).first { !a.contains($0) }!))
    }

    /// A ranked cache holds the medoid, then the ranking's nodes in order (out-of-range ids and
    /// repeats skipped) until the budget is spent, as byte-identical copies.
    func testRankedCacheTakesTheRankingInOrder() throws {
        let rows = sampleRows(count: 2000, seed: 4)
        let path = tmpPath("ranked.seg")
        try writeIndexed(path, rows: rows)
        let seg = try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 0))
        let graph = try XCTUnwrap(seg.annIndex).graph
        let budget = 2000 * 4 + 10 * 4096
        let capacity = NodeCache(graph: graph, budgetBytes: budget).cachedCount
        XCTAssertGreaterThan(capacity, 5)
        var ranking: [UInt32] = [5_000, 17, 17, UInt32(graph.medoid), 3]
        ranking += (100..<2000).reversed().map { UInt32($0) }
        let cache = NodeCache(graph: graph, budgetBytes: budget, ranking: ranking)
        XCTAssertTrue(cache.ranked)
        XCTAssertEqual(cache.cachedCount, capacity, "the budget, not the order, sets the count")
        let want = [graph.medoid, 17, 3] + (100..<2000).reversed().filter { $0 != graph.medoid }
        let cached = Set((0..<2000).filter(cache.contains))
        XCTAssertEqual(cached, Set(want.prefix(capacity)))
        // A ranking shorter than the budget: the rest is filled in BFS order from the medoid.
        let short = NodeCache(graph: graph, budgetBytes: budget, ranking: [1_999, 1_998])
        XCTAssertEqual(short.cachedCount, capacity)
        XCTAssertTrue(short.contains(1_999) && short.contains(1_998) && short.contains(graph.medoid))
        for u in graph.neighbors(of: graph.medoid) ?? [] where Int(u) < 2000 {
            XCTAssertTrue(short.contains(Int(u)), "the medoid's neighbour \(u) comes first in BFS order")
        }
        for v in cached {
            let copy = try XCTUnwrap(cache.record(v))
            XCTAssertEqual(Array(UnsafeRawBufferPointer(start: copy, count: cache.recordSize)),
                           Array(UnsafeRawBufferPointer(start: graph.unsafeRecord(v), count: cache.recordSize)))
        }
    }

    /// Sample searches rank nodes by how often they expand them: the counts add up to the records
    /// the same searches read, every search expands the medoid, and the order is by count. A
    /// segment opened with sample searches caches the top of that ranking and answers as before.
    func testSampleSearchesRankTheCacheAndChangeNoAnswer() throws {
        let rows = sampleRows(count: 3000, seed: 21)
        let path = tmpPath("samples.seg")
        try writeIndexed(path, rows: rows)
        let plain = try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 0))
        let index = try XCTUnwrap(plain.annIndex)
        let samples = 300
        let parameters = BeamSearchParameters(k: 10, listSize: SegmentOpenOptions.cacheSampleListSize)
        let graph = index.graph
        let sample = { @Sendable (i: Int) -> [Float]? in graph.vector(of: i * 3000 / samples) }
        let ranking = index.searchers.expansionRanking(count: samples, query: sample, parameters: parameters)
        XCTAssertEqual(index.searchers.expansionRanking(count: samples, query: sample, parameters: parameters, threads: 1).map(\.node),
                       ranking.map(\.node), "the same ranking on one thread")
        var reads = 0
        for i in 0..<samples {
            let q = try XCTUnwrap(sample(i))
            let options = SearchOptions(k: 10, listSize: SegmentOpenOptions.cacheSampleListSize)
            reads += try XCTUnwrap(plain.searchWithStats(query: q, options: options).1).recordsRead
        }
        XCTAssertEqual(ranking.reduce(0) { $0 + Int($1.expansions) }, reads, "every expansion counted once")
        XCTAssertEqual(Set(ranking.map(\.node)).count, ranking.count)
        XCTAssertTrue(zip(ranking, ranking.dropFirst()).allSatisfy { $0.expansions > $1.expansions || ($0.expansions == $1.expansions && $0.node < $1.node) })
        XCTAssertEqual(ranking.first { $0.node == UInt32(index.graph.medoid) }?.expansions, UInt32(samples))
        XCTAssertEqual(index.searchers.expansionRanking(count: 2, query: { _ in [1, 2] }, parameters: parameters).count, 0,
                       "samples of the wrong length are skipped")

        var options = SegmentOpenOptions(cacheBudgetBytes: 3000 * 4 + 20 * 4096)
        options.cacheSampleSearches = samples
        let ranked = try Segment.open(path: path, options: options)
        let summary = ranked.nodeCacheSummary
        XCTAssertEqual(summary.sampleSearches, samples)
        let cache = try XCTUnwrap(ranked.annIndex?.cache)
        var want = [index.graph.medoid]
        for r in ranking where want.count < summary.nodes && Int(r.node) != index.graph.medoid { want.append(Int(r.node)) }
        XCTAssertEqual(Set((0..<3000).filter(cache.contains)), Set(want))
        var rng = SplitMix64(seed: 8)
        for _ in 0..<40 {
            let q = rows[rng.int(rows.count)].vector.map { $0 + rng.gaussianish() * 0.5 }
            let search = SearchOptions(k: 10, listSize: 40)
            XCTAssertEqual(try ranked.search(query: q, options: search).map(\.id), try plain.search(query: q, options: search).map(\.id))
        }
        options.cacheSampleSearches = 1 << 40
        XCTAssertEqual(try Segment.open(path: path, options: options).nodeCacheSummary.sampleSearches, 3000, "a huge count is clamped to the rows")
        options.cacheBudgetBytes = 64 << 20
        let whole = try Segment.open(path: path, options: options).nodeCacheSummary
        XCTAssertEqual(whole.nodes, 3000)
        XCTAssertEqual(whole.sampleSearches, 0, "a budget that holds every record runs no samples")
    }
}
