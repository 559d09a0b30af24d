// Search over direct reads (SegmentOpenOptions.directIO): graph records read with O_DIRECT through
// io_uring (or pread where the ring is unavailable), pipelined. With one read in flight and records
// in row order the search expands exactly the nodes the mapped search expands, in the same order;
// with more, the order depends on which read finishes first, and a block-aware layout also expands
// the nodes a read brings beside the one asked for, so the answers are checked against exact
// distances and brute-force recall instead.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class DirectIOSearchTests: StrataTestCase {
    private let dimension = 24

    private func rows(count: Int, seed: UInt64) -> [SegmentRow] {
        clusteredRows(count: count, dimension: dimension, clusters: 20, seed: seed, idStride: 3, idBase: 7)
    }

    /// Row order unless asked: the tests that compare with the mapped search need it.
    private func writeIndexed(_ path: String, rows: [SegmentRow], blockLayout: Bool = false) throws {
        try writeIndexedSegment(path, rows: rows, dimension: dimension, blockLayout: blockLayout)
    }

    private func open(_ path: String, cache: Int, ring: Bool = true) throws -> Segment {
        var options = SegmentOpenOptions(cacheBudgetBytes: cache)
        options.directIO = true
        options.directIOUsesRing = ring
        return try Segment.open(path: path, options: options)
    }

    private func l2(_ a: [Float], _ b: [Float]) -> Float {
        var s: Float = 0
        for i in a.indices { s += (a[i] - b[i]) * (a[i] - b[i]) }
        return s
    }

    func testOneReadInFlightExpandsWhatTheMappedSearchExpands() throws {
        let data = rows(count: 4000, seed: 21)
        let path = tmpPath("direct.seg")
        try writeIndexed(path, rows: data)
        for cache in [0, 48 << 10] {
            let mapped = try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: cache))
            for ring in [true, false] {
                let direct = try open(path, cache: cache, ring: ring)
                var rng = SplitMix64(seed: 9)
                for _ in 0..<40 {
                    let q = data[rng.int(data.count)].vector.map { $0 + rng.gaussianish() * 0.4 }
                    let options = SearchOptions(k: 10, listSize: 32, beamWidth: 1)
                    let (want, wantStats) = try mapped.searchWithStats(query: q, options: options)
                    let (got, gotStats) = try direct.searchWithStats(query: q, options: options)
                    XCTAssertEqual(got.map(\.id), want.map(\.id), "cache \(cache), ring \(ring)")
                    XCTAssertEqual(got.map(\.distance), want.map(\.distance))
                    XCTAssertEqual(gotStats?.recordsRead, wantStats?.recordsRead)
                    XCTAssertEqual(gotStats?.cachedRecords, wantStats?.cachedRecords)
                }
            }
        }
    }

    /// Sample searches at open run over direct I/O too; the ranked cache changes no answer.
    func testCacheRankedBySampleSearchesOverDirectIO() throws {
        let data = rows(count: 3000, seed: 5)
        let path = tmpPath("direct-samples.seg")
        try writeIndexed(path, rows: data)
        let mapped = try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 0))
        for ring in [true, false] {
            var options = SegmentOpenOptions(cacheBudgetBytes: 40 << 10)
            options.directIO = true
            options.directIOUsesRing = ring
            options.cacheSampleSearches = 200
            let direct = try Segment.open(path: path, options: options)
            XCTAssertEqual(direct.nodeCacheSummary.sampleSearches, 200)
            let cache = try XCTUnwrap(direct.annIndex?.cache)
            XCTAssertTrue(cache.ranked)
            XCTAssertGreaterThan(cache.cachedCount, 1)
            XCTAssertTrue(cache.contains(try XCTUnwrap(direct.annIndex).graph.medoid))
            var rng = SplitMix64(seed: 3)
            for _ in 0..<30 {
                let q = data[rng.int(data.count)].vector.map { $0 + rng.gaussianish() * 0.4 }
                let search = SearchOptions(k: 10, listSize: 32, beamWidth: 1)
                XCTAssertEqual(try direct.search(query: q, options: search).map(\.id), try mapped.search(query: q, options: search).map(\.id),
                               "ring \(ring)")
            }
        }
    }

    func testPipelinedSearchReturnsExactDistancesAndKeepsRecall() throws {
        let data = rows(count: 5000, seed: 4)
        for blocks in [false, true] {
            let path = tmpPath("direct-w-\(blocks).seg")
            try writeIndexed(path, rows: data, blockLayout: blocks)
            try checkPipelinedSearch(path, data)
        }
    }

    private func checkPipelinedSearch(_ path: String, _ data: [SegmentRow]) throws {
        let mapped = try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 0))
        let byId = Dictionary(uniqueKeysWithValues: data.map { ($0.id, $0.vector) })
        for ring in [true, false] {
            let direct = try open(path, cache: 32 << 10, ring: ring)
            for w in [2, 4, 8, 16] {
                var rng = SplitMix64(seed: 77)
                var hitsDirect = 0, hitsMapped = 0
                for _ in 0..<50 {
                    let q = data[rng.int(data.count)].vector.map { $0 + rng.gaussianish() * 0.4 }
                    let truth = Set(data.map { ($0.id, l2($0.vector, q)) }.sorted { $0.1 < $1.1 }.prefix(10).map(\.0))
                    let options = SearchOptions(k: 10, listSize: 40, beamWidth: w)
                    let got = try direct.search(query: q, options: options)
                    XCTAssertEqual(got.count, 10)
                    XCTAssertEqual(Set(got.map(\.id)).count, got.count, "no id twice")
                    for (a, b) in zip(got, got.dropFirst()) { XCTAssertLessThanOrEqual(a.distance, b.distance) }
                    for h in got {
                        let v = try XCTUnwrap(byId[h.id])
                        XCTAssertEqual(h.distance, l2(v, q), accuracy: 1e-3 * max(1, h.distance), "reranked from the record read")
                    }
                    hitsDirect += got.filter { truth.contains($0.id) }.count
                    hitsMapped += try mapped.search(query: q, options: options).filter { truth.contains($0.id) }.count
                }
                let recall = Double(hitsDirect) / 500, mappedRecall = Double(hitsMapped) / 500
                XCTAssertGreaterThan(recall, 0.7, "W \(w), ring \(ring)")
                XCTAssertGreaterThan(recall, mappedRecall - 0.03, "W \(w), ring \(ring): direct \(recall), mapped \(mappedRecall)")
            }
        }
    }

    /// A block-aware layout: each sector read also expands the nodes placed beside the one asked
    /// for when they make the list, so the same recall takes fewer reads than in row order (one
    /// read in flight, where the search is deterministic); every answer keeps its exact distance.
    func testBlockLayoutExpandsSectorNeighboursWithoutAnotherRead() throws {
        let data = rows(count: 4000, seed: 12)
        let rowPath = tmpPath("rows.seg"), blockPath = tmpPath("blocks.seg")
        try writeIndexed(rowPath, rows: data, blockLayout: false)
        try writeIndexed(blockPath, rows: data, blockLayout: true)
        let rowOrder = try open(rowPath, cache: 0), blocks = try open(blockPath, cache: 0)
        let graph = try XCTUnwrap(blocks.annIndex?.graph)
        XCTAssertTrue(graph.isBlockLayout)
        XCTAssertGreaterThan(graph.geometry.nodesPerSector, 2)
        XCTAssertFalse(try XCTUnwrap(rowOrder.annIndex?.graph).isBlockLayout)
        let byId = Dictionary(uniqueKeysWithValues: data.map { ($0.id, $0.vector) })
        var rng = SplitMix64(seed: 31)
        var reads = (rows: 0, blocks: 0), hits = (rows: 0, blocks: 0), free = 0
        for _ in 0..<60 {
            let q = data[rng.int(data.count)].vector.map { $0 + rng.gaussianish() * 0.4 }
            let truth = Set(data.map { ($0.id, l2($0.vector, q)) }.sorted { $0.1 < $1.1 }.prefix(10).map(\.0))
            let options = SearchOptions(k: 10, listSize: 32, beamWidth: 1)
            let (a, sa) = try rowOrder.searchWithStats(query: q, options: options)
            let (b, sb) = try blocks.searchWithStats(query: q, options: options)
            XCTAssertEqual(sa?.blockExpansions, 0)
            reads.rows += try XCTUnwrap(sa).recordsRead
            reads.blocks += try XCTUnwrap(sb).recordsRead
            free += try XCTUnwrap(sb).blockExpansions
            hits.rows += a.filter { truth.contains($0.id) }.count
            hits.blocks += b.filter { truth.contains($0.id) }.count
            XCTAssertEqual(Set(b.map(\.id)).count, b.count, "no id twice")
            for h in b { XCTAssertEqual(h.distance, l2(try XCTUnwrap(byId[h.id]), q), accuracy: 1e-3 * max(1, h.distance)) }
        }
        XCTAssertGreaterThan(free, 0)
        XCTAssertLessThan(reads.blocks, reads.rows, "reads: blocks \(reads.blocks), rows \(reads.rows)")
        XCTAssertGreaterThanOrEqual(hits.blocks, hits.rows - 6, "recall: blocks \(hits.blocks), rows \(hits.rows) of 600")
    }

    func testSearchersOnManyThreadsAgree() throws {
        let data = rows(count: 3000, seed: 8)
        let path = tmpPath("direct-threads.seg")
        try writeIndexed(path, rows: data)
        let direct = try open(path, cache: 0)
        let mapped = try Segment.open(path: path, options: SegmentOpenOptions(cacheBudgetBytes: 0))
        let queries = (0..<64).map { data[$0 * 40].vector }
        let options = SearchOptions(k: 5, listSize: 24, beamWidth: 1)
        let want = try queries.map { try mapped.search(query: $0, options: options).map(\.id) }
        let got = UnsafeMutableBufferPointer<[UInt64]>.allocate(capacity: queries.count)
        got.initialize(repeating: [])
        defer { got.deallocate() }
        nonisolated(unsafe) let out = got
        DispatchQueue.concurrentPerform(iterations: queries.count) { i in
            out[i] = (try? direct.search(query: queries[i], options: options).map(\.id)) ?? []
        }
        XCTAssertEqual(Array(got), want)
    }

    func testFilesThatCannotBeReadDirectlyAreTypedErrors() throws {
        let missing = tmpPath("missing.seg")
        XCTAssertThrowsError(try DirectGraphFile(path: missing, sectionOffset: 4096)) { error in
            XCTAssertEqual((error as? StrataError)?.code, .io)
            XCTAssertEqual((error as? StrataError)?.path, missing)
        }
        let path = tmpPath("present.seg")
        try writeIndexed(path, rows: rows(count: 2500, seed: 1))
        XCTAssertThrowsError(try DirectGraphFile(path: path, sectionOffset: 4095)) { error in
            XCTAssertEqual((error as? StrataError)?.code, .invalidArgument)
        }
        XCTAssertNoThrow(try DirectGraphFile(path: path, sectionOffset: 8192))
    }
}
