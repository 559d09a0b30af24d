// The out-of-core graph build (IndexOptions.memoryBudget, StrataIndex/Graph/PartitionedGraphBuilder.swift):
// partitioning, merge, reachability, determinism, recall against exact search, bad budgets.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class OutOfCoreBuildTests: StrataTestCase {
    private static let dimension = 32

    private func clusteredRows(count: Int, seed: UInt64) -> [SegmentRow] {
        var rng = SplitMix64(seed: seed)
        let centers = (0..<24).map { _ in (0..<Self.dimension).map { _ in rng.gaussianish() * 2 } }
        return (0..<count).map { i in
            let c = centers[rng.int(centers.count)]
            return SegmentRow(id: UInt64(i) * 7 + 3, vector: c.map { $0 + rng.gaussianish() })
        }
    }

    private func indexOptions(budget: Int?, threads: Int = 2) -> IndexOptions {
        var index = IndexOptions()
        index.minimumRows = 0
        index.pqSubspaces = 8
        index.graph.maxDegree = 16
        index.graph.buildListSize = 40
        index.graph.threads = threads
        index.memoryBudget = budget
        return index
    }

    private func write(_ path: String, rows: [SegmentRow], elementType: VectorElementType = .float32,
                       index: IndexOptions) throws -> [IndexBuildProgress] {
        let seen = PhaseLog()
        var options = SegmentWriterOptions()
        options.index = index
        options.progress = { seen.append($0) }
        let writer = try SegmentWriter(path: path, schema: SegmentSchema(dimension: Self.dimension, elementType: elementType, metric: .l2),
                                       options: options)
        try writer.append(rows)
        try writer.finish()
        return seen.all
    }

    func testPlanSplitsOnlyWhenTheBudgetIsSmallerThanAnInMemoryBuild() throws {
        let p = VamanaParameters(maxDegree: 16, buildListSize: 40)
        let perRow = PartitionedGraphBuilder.partitionBytesPerRow(dimension: 32, parameters: p)
        XCTAssertFalse(try PartitionedGraphBuilder.plan(count: 6000, dimension: 32, codeSize: 8, parameters: p, memoryBudget: nil).isPartitioned)
        XCTAssertFalse(try PartitionedGraphBuilder.plan(count: 6000, dimension: 32, codeSize: 8, parameters: p,
                                                        memoryBudget: 6000 * (8 + perRow)).isPartitioned)
        // Float32 rows read in place (a mapped segment) need no gathered copy when built at once.
        let inPlaceBudget = 6000 * (8 + perRow - 4 * 32)
        XCTAssertFalse(try PartitionedGraphBuilder.plan(count: 6000, dimension: 32, codeSize: 8, parameters: p,
                                                        memoryBudget: inPlaceBudget, rowsInPlace: true).isPartitioned)
        XCTAssertTrue(try PartitionedGraphBuilder.plan(count: 6000, dimension: 32, codeSize: 8, parameters: p,
                                                       memoryBudget: inPlaceBudget, rowsInPlace: false).isPartitioned)
        let plan = try PartitionedGraphBuilder.plan(count: 6000, dimension: 32, codeSize: 8, parameters: p, memoryBudget: 1 << 20)
        XCTAssertTrue(plan.isPartitioned)
        XCTAssertEqual(plan.overlap, 2)
        // The partitions can hold every row twice, and one partition's build fits the budget.
        XCTAssertGreaterThanOrEqual(plan.partitions * plan.capacity, 2 * 6000)
        XCTAssertLessThanOrEqual(plan.fixedBytes + plan.capacity * plan.bytesPerPartitionRow, 1 << 20)
        assertStrataError(.invalidArgument) {
            _ = try PartitionedGraphBuilder.plan(count: 6000, dimension: 32, codeSize: 8, parameters: p, memoryBudget: 64 << 10)
        }
    }

    func testPartitionedBuildIsSoundReachableDeterministicAndAccurate() throws {
        let rows = clusteredRows(count: 6000, seed: 5)
        let a = tmpPath("a.seg"), b = tmpPath("b.seg"), inMemory = tmpPath("m.seg")
        let phases = try write(a, rows: rows, index: indexOptions(budget: 1 << 20))
        XCTAssertTrue(phases.contains { $0.phase == "merge" }, "a 1 MiB budget must split 6000 rows")
        let partitions = phases.filter { $0.phase == "graph" && $0.detail.hasPrefix("partition ") }.count
        XCTAssertGreaterThanOrEqual(partitions, 3)
        _ = try write(b, rows: rows, index: indexOptions(budget: 1 << 20, threads: 1))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a)), try Data(contentsOf: URL(fileURLWithPath: b)),
                       "the out-of-core build must not depend on the thread count")
        let memoryPhases = try write(inMemory, rows: rows, index: indexOptions(budget: nil))
        XCTAssertFalse(memoryPhases.contains { $0.phase == "merge" })

        let seg = try Segment.open(path: a)
        XCTAssertTrue(seg.hasIndex)
        let report = seg.verify()
        XCTAssertTrue(report.isSound, "\(report.problems)")
        let graph = try XCTUnwrap(seg.graphReport())
        XCTAssertEqual(graph.unreachableCount, 0)
        XCTAssertTrue(graph.isValid, "\(graph.problems)")
        XCTAssertEqual(graph.degreeHistogram.count, 17, "R = 16")
        XCTAssertGreaterThan(Double(graph.edgeCount) / 6000, 8, "merged lists keep a useful degree")

        var rng = SplitMix64(seed: 77)
        var found = 0
        let queries = 100
        for _ in 0..<queries {
            let q = rows[rng.int(rows.count)].vector.map { $0 + rng.gaussianish() * 0.5 }
            let exact = Set(try seg.exactSearch(query: q, k: 10).map(\.id))
            let approx = try seg.search(query: q, options: SearchOptions(k: 10, listSize: 40))
            XCTAssertEqual(approx.count, 10)
            found += approx.filter { exact.contains($0.id) }.count
        }
        XCTAssertGreaterThanOrEqual(Double(found) / Double(queries * 10), 0.9, "out-of-core graph recall@10 at L=40")
        // Leftover temporary files: none.
        XCTAssertEqual(tmpContents().filter { $0.contains(".tmp-") }, [])
    }

    func testFloat16SegmentsBuildOutOfCore() throws {
        let rows = clusteredRows(count: 4000, seed: 9)
        let path = tmpPath("h.seg")
        let phases = try write(path, rows: rows, elementType: .float16, index: indexOptions(budget: 700 << 10))
        XCTAssertTrue(phases.contains { $0.phase == "merge" })
        let seg = try Segment.open(path: path)
        XCTAssertTrue(seg.verify().isSound)
        XCTAssertEqual(try XCTUnwrap(seg.graphReport()).unreachableCount, 0)
        let hit = try seg.search(query: rows[123].vector, options: SearchOptions(k: 1, listSize: 40))
        XCTAssertEqual(hit.first?.id, rows[123].id)
    }

    func testBudgetTooSmallFailsAndPublishesNothing() throws {
        let rows = clusteredRows(count: 3000, seed: 3)
        let path = tmpPath("small.seg")
        assertStrataError(.invalidArgument) { _ = try self.write(path, rows: rows, index: self.indexOptions(budget: 32 << 10)) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        XCTAssertEqual(tmpContents().filter { $0.contains(".tmp-") }, [])
    }

    func testShouldStopCancelsTheBuildInMemoryAndOutOfCore() throws {
        let rows = clusteredRows(count: 4000, seed: 5)
        // In memory: asked after PQ, then before each batch. Out of core: also between partitions.
        for (budget, stopAt) in [(nil, 1), (nil, 4), (700 << 10, 2), (700 << 10, 6)] as [(Int?, Int)] {
            let path = tmpPath("cancel-\(budget ?? 0)-\(stopAt).seg")
            let asked = Counter()
            var options = SegmentWriterOptions()
            options.index = indexOptions(budget: budget)
            options.shouldStop = { asked.increment() >= stopAt }
            let writer = try SegmentWriter(path: path, schema: SegmentSchema(dimension: Self.dimension, metric: .l2), options: options)
            try writer.append(rows)
            let e = assertStrataError(.busy, "budget \(String(describing: budget))") { try writer.finish() }
            XCTAssertTrue(e.map(IndexBuildCancellation.isCancellation) ?? false, "\(String(describing: e))")
            XCTAssertEqual(asked.value, stopAt, "nothing more was built after the stop")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path))
            XCTAssertEqual(tmpContents().filter { $0.contains(".tmp-") || $0.contains(".part") || $0.hasSuffix(".graph") }, [])
        }
    }
}

/// Counts calls (from the writer's thread).
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}

/// Collects progress reports from the writer (called on the writer's thread).
private final class PhaseLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [IndexBuildProgress] = []
    func append(_ p: IndexBuildProgress) { lock.lock(); items.append(p); lock.unlock() }
    var all: [IndexBuildProgress] { lock.lock(); defer { lock.unlock() }; return items }
}
