// Pins the bytes the index build produces for fixed inputs and seeds: a change of the in-memory
// Vamana build, of the out-of-core build (partitioning, merge prune, medoid, reachability) or of the
// segment's index sections shows up here as a different digest. Distances are rounded differently on
// different instruction sets, so the digests are recorded per `DistanceKernels.instructionSet`; on a
// machine whose kernels have no recorded digest the test is skipped.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class GraphBuildDigestTests: StrataTestCase {
    private static let dimension = 24

    /// Clustered rows from the bit-reproducible test generator.
    private func rows(count: Int, seed: UInt64) -> [SegmentRow] {
        var rng = SplitMix64(seed: seed)
        let centers = (0..<20).map { _ in (0..<Self.dimension).map { _ in rng.gaussianish() * 2 } }
        return (0..<count).map { i in
            let c = centers[rng.int(centers.count)]
            return SegmentRow(id: UInt64(i) * 5 + 1, vector: c.map { $0 + rng.gaussianish() })
        }
    }

    /// xxh3 of the index sections (pq_codebook, pq_codes and graph, in that order) of the segment
    /// written from `rows` with a small index (R 16, L 40, M 6). The sections, not the whole file:
    /// format 2.0 moved the other sections without changing these bytes. Records in row order
    /// unless `blockLayout` (format 3.0 placed them block-aware by default, the graph unchanged).
    private func segmentDigest(_ rows: [SegmentRow], elementType: VectorElementType, metric: DistanceMetric,
                               budget: Int?, threads: Int = 2, saturate: Bool = false,
                               blockLayout: Bool = false) throws -> (UInt64, phases: Set<String>) {
        var index = IndexOptions()
        index.minimumRows = 0
        index.pqSubspaces = 6
        index.pqIterations = 4
        index.graph.maxDegree = 16
        index.graph.buildListSize = 40
        index.graph.threads = threads
        index.graph.saturate = saturate
        index.memoryBudget = budget
        index.blockLayout = blockLayout
        let log = PhaseNames()
        var options = SegmentWriterOptions()
        options.index = index
        options.progress = { log.add($0.phase) }
        let path = tmpPath("digest-\(UInt64.random(in: 0...UInt64.max)).seg")
        let writer = try SegmentWriter(path: path, schema: SegmentSchema(dimension: Self.dimension, elementType: elementType, metric: metric),
                                       options: options)
        try writer.append(rows)
        try writer.finish()
        let segment = try Segment.open(path: path)
        var bytes: [UInt8] = []
        for kind in [SectionKind.pqCodebook, .pqCodes, .graph] {
            bytes += try XCTUnwrap(segment.sections.first { $0.kind == kind }.map(segment.sectionBytes))
        }
        try FileManager.default.removeItem(atPath: path)
        return (bytes.withUnsafeBytes { Checksum.xxh3($0) }, log.names)
    }

    /// Digests of the index sections, recorded with progressive occlusion in RobustPrune (the same
    /// on the three kernel levels of this machine: STRATA_KERNELS=scalar|avx2|avx512; the block-aware
    /// ones checked on avx512 and scalar: their placement follows from the graph alone).
    private static let recorded: [String: [String: UInt64]] = [
        "avx512": digests, "avx2": digests, "scalar": digests,
    ]
    private static let digests: [String: UInt64] = ["memory-f32": 0xdf0ccf4cd131e49, "memory-f16": 0x9b879b824bb51f0,
                                                    "partitioned-f32": 0x9f100d68c25e15d4, "partitioned-f16": 0x7471bb183e0d6936,
                                                    "memory-f32-saturated": 0xd2ac48f124f2bde0,
                                                    // The same graphs with the records placed block-aware (format 3.0).
                                                    "memory-f32-blocks": 0x4338b30521df6adb, "partitioned-f16-blocks": 0x49e63722d8dc622]

    func testIndexBuildBytesAreUnchanged() throws {
        let isa = DistanceKernels.instructionSet
        let inMemory = rows(count: 3000, seed: 21)
        let (memoryF32, memoryPhases) = try segmentDigest(inMemory, elementType: .float32, metric: .l2, budget: nil)
        XCTAssertFalse(memoryPhases.contains("merge"))
        let (memoryF16, _) = try segmentDigest(inMemory, elementType: .float16, metric: .cosine, budget: nil)
        let (partitionedF32, partitionedPhases) = try segmentDigest(inMemory, elementType: .float32, metric: .l2, budget: 512 << 10)
        XCTAssertTrue(partitionedPhases.contains("merge"), "a 512 KiB budget must split 3000 rows")
        let (partitionedF16, _) = try segmentDigest(inMemory, elementType: .float16, metric: .cosine, budget: 512 << 10, threads: 1)
        let (saturated, _) = try segmentDigest(inMemory, elementType: .float32, metric: .l2, budget: nil, saturate: true)
        let (blocks, _) = try segmentDigest(inMemory, elementType: .float32, metric: .l2, budget: nil, blockLayout: true)
        let (partitionedBlocks, _) = try segmentDigest(inMemory, elementType: .float16, metric: .cosine, budget: 512 << 10, threads: 1,
                                                       blockLayout: true)
        let got = ["memory-f32": memoryF32, "memory-f16": memoryF16, "partitioned-f32": partitionedF32, "partitioned-f16": partitionedF16,
                   "memory-f32-saturated": saturated, "memory-f32-blocks": blocks, "partitioned-f16-blocks": partitionedBlocks]
        print("index build digests (\(isa)): \(got.sorted { $0.key < $1.key }.map { "\"\($0.key)\": 0x\(String($0.value, radix: 16))" }.joined(separator: ", "))")
        guard let want = Self.recorded[isa], !want.isEmpty else {
            throw XCTSkip("no digests recorded for the \(isa) kernels")
        }
        XCTAssertEqual(got, want)
    }
}

/// Phase names reported by the writer's progress callback.
private final class PhaseNames: @unchecked Sendable {
    private let lock = NSLock()
    private var set: Set<String> = []
    func add(_ name: String) { lock.lock(); set.insert(name); lock.unlock() }
    var names: Set<String> { lock.lock(); defer { lock.unlock() }; return set }
}
