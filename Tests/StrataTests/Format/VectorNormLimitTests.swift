// Finite vectors whose squared norm would overflow float32 distances (Sources/StrataFormat/Segment/
// VectorLimits.swift): refused for every metric by the segment writer, collection inserts and every
// search entry point; accepted up to the limit, where every distance stays finite; rows stored
// before the limit existed are carried over by compaction, never lost. Also: fusion weights.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class VectorNormLimitTests: StrataTestCase {
    static let limitComponent: Float = 0x1p62               // [2^62, 0, ...] has squared norm exactly 2^124
    static let metrics: [DistanceMetric] = [.l2, .innerProduct, .cosine]

    /// Vectors that overflow (or sit just past the limit) with finite components.
    static let overflowing: [[Float]] = [
        [3e38, 0, 0, 0], [-3e38, 3e38, 1, 2], [2e19, 0, 0, 0], [1.9e19, 1.9e19, 0, 0],
        [0x1p62, 0x1p50, 0, 0],                              // 2^124 + 2^100: just over
    ]

    func testOverflowingVectorsAreRefusedByTheWriterForEveryMetric() throws {
        XCTAssertTrue(Self.overflowing.allSatisfy { VectorLimits.squaredNorm($0) > VectorLimits.maximumSquaredNorm })
        XCTAssertEqual(VectorLimits.squaredNorm([Float](repeating: 0x1p61, count: 4)), VectorLimits.maximumSquaredNorm)
        for metric in Self.metrics {
            let w = try SegmentWriter(path: tmpPath("w-\(metric).seg"), schema: SegmentSchema(dimension: 4, metric: metric))
            for v in Self.overflowing {
                let e = assertStrataError(.invalidValue, "\(metric) \(v)") { try w.append([SegmentRow(id: 1, vector: v)]) }
                XCTAssertTrue(e?.message.contains("squared norm") == true && e?.message.contains("row 0 (id 1)") == true, "\(e?.message ?? "")")
                assertStrataError(.invalidValue, "\(metric) \(v), pointer API") {
                    try v.withUnsafeBufferPointer { try w.append(id: 1, vector: $0, values: []) }
                }
            }
            // The writer stays usable; vectors at the limit are accepted.
            try w.append([SegmentRow(id: 1, vector: [Self.limitComponent, 0, 0, 0]), SegmentRow(id: 2, vector: [0, -Self.limitComponent, 0, 0]),
                          SegmentRow(id: 3, vector: [Float](repeating: 0x1p61, count: 4))])
            try w.finish()
            XCTAssertEqual(try Segment.open(path: tmpPath("w-\(metric).seg")).rowCount, 3)
        }
        // Through the CLI-facing float16 path too (65504 overflows float16 first, so the norm check
        // matters only for float32; both stay typed errors).
        let w16 = try SegmentWriter(path: tmpPath("f16.seg"), schema: SegmentSchema(dimension: 4, elementType: .float16, metric: .l2))
        assertStrataError(.nonFiniteValue) { try w16.append([SegmentRow(id: 1, vector: [3e38, 0, 0, 0])]) }
        w16.abort()
    }

    /// The point of the bound: between any two vectors within it, l2 and inner-product distances
    /// are finite (2^126 at most), in the exact scan, the batched scan and the graph search.
    func testDistancesAtTheLimitAreFinite() throws {
        for metric in [DistanceMetric.l2, .innerProduct] {
            let path = tmpPath("edge-\(metric).seg")
            var options = SegmentWriterOptions()
            var index = IndexOptions()
            index.minimumRows = 0; index.pqSubspaces = 2; index.graph.maxDegree = 8; index.graph.buildListSize = 16; index.graph.threads = 1
            options.index = index
            let w = try SegmentWriter(path: path, schema: SegmentSchema(dimension: 4, metric: metric), options: options)
            var rows = [SegmentRow(id: 0, vector: [Self.limitComponent, 0, 0, 0]), SegmentRow(id: 1, vector: [-Self.limitComponent, 0, 0, 0]),
                        SegmentRow(id: 2, vector: [Float](repeating: 0x1p61, count: 4)), SegmentRow(id: 3, vector: [Float](repeating: -0x1p61, count: 4))]
            rows += (4..<40).map { SegmentRow(id: UInt64($0), vector: [Float($0), 1, 2, 3]) }
            try w.append(rows)
            try w.finish()
            let seg = try Segment.open(path: path)
            for q in [[Self.limitComponent, 0, 0, 0], [-Self.limitComponent, 0, 0, 0], [Float](repeating: -0x1p61, count: 4)] as [[Float]] {
                let exact = try seg.exactSearch(query: q, k: 40)
                XCTAssertEqual(exact.count, 40)
                XCTAssertTrue(exact.allSatisfy { $0.distance.isFinite }, "\(metric) \(q): \(exact.map(\.distance))")
                XCTAssertTrue(try seg.exactSearch(queries: [q], k: 40)[0].allSatisfy { $0.distance.isFinite })
                XCTAssertTrue(try seg.search(query: q, options: SearchOptions(k: 10, listSize: 40)).allSatisfy { $0.distance.isFinite })
            }
            if metric == .l2 {
                XCTAssertEqual(try seg.exactSearch(query: [Self.limitComponent, 0, 0, 0], k: 40).last?.distance, 0x1p126, "|a - (-a)|^2 = 4 * 2^124")
            }
        }
    }

    func testOverflowingQueriesAreRefusedEverywhere() throws {
        for metric in Self.metrics {
            let path = tmpPath("q-\(metric).seg")
            let schema = SegmentSchema(dimension: 4, metric: metric, columns: [ColumnSpec(name: "n", type: .int64)])
            var options = SegmentWriterOptions()
            options.search = SearchSectionOptions(indexedColumns: ["n"])
            let w = try SegmentWriter(path: path, schema: schema, options: options)
            try w.append((0..<20).map { SegmentRow(id: UInt64($0), vector: [Float($0), 1, 1, 1], payload: ["n": .int64(Int64($0))]) })
            try w.finish()
            let seg = try Segment.open(path: path)
            let filter = try Filter(json: #"{"must":[{"key":"n","range":{"gte":3}}]}"#)
            for q in Self.overflowing {
                assertStrataError(.invalidValue, "\(metric) exactSearch \(q)") { try seg.exactSearch(query: q, k: 3) }
                assertStrataError(.invalidValue) { try seg.exactSearch(queries: [[1, 1, 1, 1], q], k: 3) }
                assertStrataError(.invalidValue) { try seg.search(query: q, options: SearchOptions(k: 3)) }
                assertStrataError(.invalidValue) { try seg.search(query: q, filter: filter) }
                assertStrataError(.invalidValue) { try seg.exactSearch(query: q, k: 3, filter: filter) }
                assertStrataError(.invalidValue) { try seg.hybridSearch(HybridQuery(dense: q, k: 3)) }
            }
            assertStrataError(.nonFiniteValue) { try seg.exactSearch(query: [1, .nan, 1, 1], k: 3) }

            // Collections: insert and search (segments and the write buffer).
            var o = CollectionOptions()
            o.index = nil
            let c = try StrataCollection.create(path: tmpPath("c-\(metric)"), schema: schema, options: o)
            try c.insert((0..<10).map { SegmentRow(id: UInt64($0), vector: [Float($0), 1, 1, 1], payload: ["n": .int64(Int64($0))]) })
            let walBytes = try c.stats().walBytes
            for v in Self.overflowing {
                let e = assertStrataError(.invalidValue, "\(metric) insert \(v)") {
                    try c.insert([SegmentRow(id: 100, vector: [1, 1, 1, 1], payload: ["n": .int64(0)]),
                                  SegmentRow(id: 101, vector: v, payload: ["n": .int64(0)])])
                }
                XCTAssertTrue(e?.message.contains("row 1 (id 101)") == true, e?.message ?? "")
                assertStrataError(.invalidValue) { try c.upsert([SegmentRow(id: 1, vector: v, payload: ["n": .int64(0)])]) }
                assertStrataError(.invalidValue, "buffer search") { try c.search(query: v) }
                assertStrataError(.invalidValue) { try c.search(query: v, filter: filter) }
            }
            XCTAssertEqual(try c.stats().walBytes, walBytes, "refused batches write nothing")
            XCTAssertEqual(try c.count(), 10)
            _ = try c.flush()
            for v in Self.overflowing { assertStrataError(.invalidValue, "segment search") { try c.search(query: v) } }
            try c.insert([SegmentRow(id: 200, vector: [Self.limitComponent, 0, 0, 0], payload: ["n": .int64(0)])])
            XCTAssertTrue(try c.search(query: [-Self.limitComponent, 0, 0, 0], options: SearchOptions(k: 11)).allSatisfy { $0.distance.isFinite })
            c.close()
        }
    }

    /// A segment written before the limit may hold such a vector (made here by patching one and
    /// re-sealing the checksums). Compaction rewrites its live rows through the writer: the row
    /// must be carried over, not refused (acknowledged data is never lost).
    func testCompactionCarriesOverAStoredVectorBeyondTheLimit() throws {
        let dir = tmpPath("legacy")
        var o = CollectionOptions()
        o.index = nil
        o.obsoleteFileGraceSeconds = 0
        let c = try StrataCollection.create(path: dir, schema: SegmentSchema(dimension: 2, metric: .l2), options: o)
        try c.insert((0..<10).map { SegmentRow(id: UInt64($0), vector: [Float($0), 1]) })
        _ = try c.flush()
        c.close()
        let segName = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasSuffix(".seg") })
        let segPath = dir + "/" + segName
        let original = try Segment.open(path: segPath)
        let row = try original.row(forId: 0)!
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segPath)))
        let at = 4096 + row * 8                                   // the vectors section is first (SEGMENT-FORMAT.md)
        for (i, x) in [Float(3e38), 3e38].enumerated() {
            for b in 0..<4 { bytes[at + 4 * i + b] = UInt8(truncatingIfNeeded: x.bitPattern >> (8 * UInt32(b))) }
        }
        Reseal.segmentDeep(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: segPath))
        XCTAssertEqual(try Segment.open(path: segPath).vector(row: row), [3e38, 3e38])
        XCTAssertTrue(try Segment.open(path: segPath).verify().isSound)

        let w = try StrataCollection.open(path: dir, options: o)
        XCTAssertEqual(try w.delete(ids: [5, 6, 7, 8, 9]), 5)   // half deleted: the compactor rewrites the segment
        _ = try w.flush()
        w.close()
        var policy = CompactionPolicy()
        policy.index = nil
        policy.graceSeconds = 0
        let result = try Compactor(path: dir, policy: policy).run()
        XCTAssertFalse(result.done.isEmpty, "the segment was rewritten")
        let r = try StrataCollection.open(path: dir, access: .readOnly, options: o)
        defer { r.close() }
        XCTAssertEqual(try r.count(), 5)
        XCTAssertEqual(try r.get(id: 0)?.vector, [3e38, 3e38], "the stored row survives compaction")
        XCTAssertFalse(try r.snapshot().manifest.segments.contains { $0.name == segName }, "the old segment was replaced")
    }

    /// Likewise a WAL record written before the limit (made here by patching a logged vector and
    /// re-sealing the record): replay keeps it, and the flush that seals it into a segment must not
    /// refuse it.
    func testFlushCarriesOverALoggedVectorBeyondTheLimit() throws {
        let dir = tmpPath("legacy-wal")
        var o = CollectionOptions()
        o.index = nil
        o.obsoleteFileGraceSeconds = 0
        let marker: [Float] = [1.25, -7.5]
        let c = try StrataCollection.create(path: dir, schema: SegmentSchema(dimension: 2, metric: .innerProduct), options: o)
        try c.insert([SegmentRow(id: 1, vector: [1, 1]), SegmentRow(id: 2, vector: marker)])
        c.close()
        let wal = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasPrefix("wal-") })
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + wal)))
        let pattern = marker.flatMap { x in (0..<4).map { UInt8(truncatingIfNeeded: x.bitPattern >> (8 * UInt32($0))) } }
        let at = try XCTUnwrap((0...(bytes.count - pattern.count)).first { bytes[$0..<($0 + pattern.count)].elementsEqual(pattern) })
        let big = [Float(3e38), -3e38].flatMap { x in (0..<4).map { UInt8(truncatingIfNeeded: x.bitPattern >> (8 * UInt32($0))) } }
        bytes.replaceSubrange(at..<(at + 8), with: big)
        Reseal.wal(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + wal))

        let w = try StrataCollection.open(path: dir, options: o)
        XCTAssertEqual(try w.get(id: 2)?.vector, [3e38, -3e38], "replay keeps the logged row")
        XCTAssertNotNil(try w.flush(), "the flush seals it")
        w.close()
        let r = try StrataCollection.open(path: dir, access: .readOnly, options: o)
        defer { r.close() }
        XCTAssertEqual(try r.snapshot().manifest.segments.count, 1)
        XCTAssertEqual(try r.get(id: 2)?.vector, [3e38, -3e38])
        XCTAssertEqual(try r.count(), 2)
    }

    /// Sparse vectors: the same limit, with duplicate indices summed first (two weights of 2e38 on
    /// one index would otherwise be stored as +inf).
    func testSparseVectorsBeyondTheLimitAreRefused() throws {
        for bad in [SparseVector(indices: [3], values: [3e38]), SparseVector(indices: [1, 1], values: [2e38, 2e38]),
                    SparseVector(indices: [1, 2], values: [0x1p62, 0x1p62])] {
            assertStrataError(.invalidValue, "\(bad)") { try bad.validate() }
        }
        XCTAssertNoThrow(try SparseVector(indices: [1, 1, 2], values: [0x1p61, 0x1p61, -1]).validate(), "2^124 + 1 rounds to the limit")
        XCTAssertNoThrow(try SparseVector(indices: [1, 1], values: [2e38, -2e38]).validate(), "duplicates that cancel")
        let schema = SegmentSchema(dimension: 2, metric: .l2)
        let w = try SegmentWriter(path: tmpPath("sp.seg"), schema: schema)
        try w.append((0..<4).map { SegmentRow(id: UInt64($0), vector: [Float($0), 0]) })
        assertStrataError(.invalidValue) { try w.setSparseVector(row: 0, SparseVector(indices: [1, 1], values: [2e38, 2e38])) }
        try w.setSparseVector(row: 1, SparseVector(indices: [1, 7], values: [0.5, 2]))
        try w.finish()
        let seg = try Segment.open(path: tmpPath("sp.seg"))
        assertStrataError(.invalidValue) { try seg.sparseSearch(query: SparseVector(indices: [7], values: [3e38]), k: 2) }
        XCTAssertEqual(try seg.sparseSearch(query: SparseVector(indices: [7], values: [1]), k: 2).map(\.id), [1])
    }

    /// The other finite values the format cannot take are `.invalidValue` too (exit 1 in the CLI):
    /// a zero vector or query under cosine, a payload value over the size limit.
    func testZeroCosineVectorsAndOversizedValuesAreInvalidValues() throws {
        let schema = SegmentSchema(dimension: 2, metric: .cosine, columns: [ColumnSpec(name: "s", type: .string)])
        let w = try SegmentWriter(path: tmpPath("cos.seg"), schema: schema)
        assertStrataError(.invalidValue) { try w.append([SegmentRow(id: 1, vector: [0, 0], payload: ["s": .string("a")])]) }
        let blob = String(repeating: "x", count: SegmentWriter.maximumValueBytes + 1)
        assertStrataError(.invalidValue) { try w.append([SegmentRow(id: 1, vector: [1, 0], payload: ["s": .string(blob)])]) }
        try w.append([SegmentRow(id: 1, vector: [1, 0], payload: ["s": .string("a")])])
        try w.finish()
        assertStrataError(.invalidValue) { try Segment.open(path: self.tmpPath("cos.seg")).exactSearch(query: [0, 0], k: 1) }
        var o = CollectionOptions()
        o.index = nil
        let c = try StrataCollection.create(path: tmpPath("c"), schema: schema, options: o)
        defer { c.close() }
        assertStrataError(.invalidValue) { try c.insert([SegmentRow(id: 1, vector: [0, 0], payload: ["s": .string("a")])]) }
        assertStrataError(.invalidValue) { try c.insert([SegmentRow(id: 1, vector: [1, 0], payload: ["s": .string(blob)])]) }
        try c.insert([SegmentRow(id: 1, vector: [1, 0], payload: ["s": .string("a")])])
        assertStrataError(.invalidValue, "zero query over the buffer") { try c.search(query: [0, 0]) }
    }

    /// A tiny but nonzero vector is a valid cosine row and a valid cosine query: its squared norm
    /// (1e-44 per component) underflows float32 but not the Double every normalisation uses.
    func testTinyCosineQueriesAreNormalisedNotTakenForZero() throws {
        let tiny = [Float](repeating: 1e-23, count: 32)
        XCTAssertEqual(tiny.reduce(Float(0)) { $0 + $1 * $1 }, 0, "the float32 squared norm underflows")
        let schema = SegmentSchema(dimension: 32, metric: .cosine)
        var o = CollectionOptions()
        o.index = nil
        let c = try StrataCollection.create(path: tmpPath("tiny"), schema: schema, options: o)
        defer { c.close() }
        let other = (0..<32).map { Float($0 % 3) - 1 }
        try c.insert([SegmentRow(id: 1, vector: tiny), SegmentRow(id: 2, vector: other)])
        XCTAssertEqual(try c.search(query: tiny, options: SearchOptions(k: 1)).map(\.id), [1], "buffer")
        try c.flush()
        XCTAssertEqual(try c.search(query: tiny, options: SearchOptions(k: 1)).map(\.id), [1], "sealed segment")
    }

    func testFusionWeightsMustBeFinite() throws {
        for bad: HybridFusion in [.weighted(dense: .nan, sparse: 1, text: 1), .weighted(dense: 1, sparse: .infinity, text: 1),
                                  .weighted(dense: 1, sparse: 1, text: -.infinity), .weighted(dense: 1e308, sparse: 1e308, text: 0),
                                  .rrf(k: .nan), .rrf(k: -1), .rrf(k: .infinity)] {
            assertStrataError(.invalidArgument, "\(bad)") { try bad.validate() }
        }
        for good: HybridFusion in [.weighted(dense: 1, sparse: 0, text: -2.5), .weighted(dense: 1e300, sparse: 1e300, text: 1e300), .rrf(), .rrf(k: 0)] {
            XCTAssertNoThrow(try good.validate(), "\(good)")
        }
        let path = tmpPath("h.seg")
        let w = try SegmentWriter(path: path, schema: SegmentSchema(dimension: 2, metric: .l2))
        try w.append((0..<5).map { SegmentRow(id: UInt64($0), vector: [Float($0), 0]) })
        try w.finish()
        let seg = try Segment.open(path: path)
        assertStrataError(.invalidArgument) { try seg.hybridSearch(HybridQuery(dense: [0, 0], fusion: .weighted(dense: .nan, sparse: 1, text: 1))) }
        XCTAssertEqual(try seg.hybridSearch(HybridQuery(dense: [0, 0], k: 2, fusion: .weighted(dense: 1, sparse: 1, text: 1))).count, 2)
    }
}
