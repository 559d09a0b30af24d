// The ANN index inside a segment (format 1.1) through the public API, and reading format 1.0 files.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class SegmentIndexIntegrationTests: StrataTestCase {
    private func sampleRows(count: Int, dimension: Int, seed: UInt64) -> [SegmentRow] {
        var rng = SplitMix64(seed: seed)
        let centers = (0..<16).map { _ in (0..<dimension).map { _ in rng.gaussianish() * 3 } }
        return (0..<count).map { i in
            let c = centers[rng.int(centers.count)]
            return SegmentRow(id: UInt64(i) * 3 + 11, vector: c.map { $0 + rng.gaussianish() })
        }
    }

    private func writeIndexed(_ path: String, rows: [SegmentRow], metric: DistanceMetric = .l2) throws {
        var options = SegmentWriterOptions()
        options.index = .smallTestIndex
        let writer = try SegmentWriter(path: path, schema: SegmentSchema(dimension: 16, metric: metric), options: options)
        try writer.append(rows)
        try writer.finish()
    }

    func testGraphSearchRecallVerifyAndDeterminism() throws {
        let rows = sampleRows(count: 3000, dimension: 16, seed: 7)
        let a = tmpPath("a.seg"), b = tmpPath("b.seg")
        try writeIndexed(a, rows: rows)
        try writeIndexed(b, rows: rows)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a)), try Data(contentsOf: URL(fileURLWithPath: b)),
                       "same rows and seed must give the same bytes")
        let seg = try Segment.open(path: a)
        XCTAssertTrue(seg.hasIndex)
        XCTAssertTrue(seg.formatVersion == (3, 0), "new files carry the current version (3.0: a block-aware graph when indexed)")
        XCTAssertTrue(try XCTUnwrap(seg.annIndex?.graph).isBlockLayout)
        XCTAssertFalse(seg.sections.contains { $0.kind == .vectors })
        let report = seg.verify()
        XCTAssertTrue(report.isSound, "\(report.problems)")
        let graph = try XCTUnwrap(seg.graphReport())
        XCTAssertEqual(graph.unreachableCount, 0)
        XCTAssertLessThanOrEqual(graph.degreeHistogram.count - 1, 24)
        var rng = SplitMix64(seed: 99)
        var found = 0
        let queries = 100
        for _ in 0..<queries {
            let q = rows[rng.int(rows.count)].vector.map { $0 + rng.gaussianish() * 0.5 }
            let exact = Set(try seg.exactSearch(query: q, k: 10).map(\.id))
            let approx = try seg.search(query: q, options: SearchOptions(k: 10, listSize: 40))
            XCTAssertEqual(approx.count, 10)
            XCTAssertEqual(approx.map(\.distance), approx.map(\.distance).sorted())
            for hit in approx { XCTAssertEqual(try seg.id(ofRow: hit.row), hit.id) }
            found += approx.filter { exact.contains($0.id) }.count
        }
        let recall = Double(found) / Double(queries * 10)
        XCTAssertGreaterThanOrEqual(recall, 0.9, "graph recall@10 at L=40")
        // Exact option and bad knobs.
        XCTAssertEqual(try seg.search(query: rows[0].vector, options: SearchOptions(k: 5, exact: true)).first?.id, rows[0].id)
        assertStrataError(.invalidArgument) { try seg.search(query: rows[0].vector, options: SearchOptions(k: 0)) }
        assertStrataError(.invalidArgument) { try seg.search(query: rows[0].vector, options: SearchOptions(k: 5, beamWidth: 0)) }
        assertStrataError(.dimensionMismatch) { try seg.search(query: [1, 2], options: SearchOptions()) }
    }

    func testSmallSegmentsSkipTheIndex() throws {
        var options = SegmentWriterOptions()
        options.index = IndexOptions()  // minimumRows 2,000
        let writer = try SegmentWriter(path: tmpPath("s.seg"), schema: SegmentSchema(dimension: 16, metric: .l2), options: options)
        let rows = sampleRows(count: 500, dimension: 16, seed: 3)
        try writer.append(rows)
        try writer.finish()
        let seg = try Segment.open(path: tmpPath("s.seg"))
        XCTAssertFalse(seg.hasIndex)
        XCTAssertEqual(try seg.search(query: rows[9].vector, options: SearchOptions(k: 1)).first?.id, rows[9].id)
    }

    func testBadIndexParametersAreRejected() throws {
        for mutate in [{ (o: inout IndexOptions) in o.graph.maxDegree = 0 },
                       { (o: inout IndexOptions) in o.pqSubspaces = 5 },   // does not divide 16
                       { (o: inout IndexOptions) in o.graph.buildListSize = 1 }] {
            var index = IndexOptions()
            index.minimumRows = 0
            mutate(&index)
            var options = SegmentWriterOptions()
            options.index = index
            let path = tmpPath("bad.seg")
            let writer = try SegmentWriter(path: path, schema: SegmentSchema(dimension: 16, metric: .l2), options: options)
            try writer.append(sampleRows(count: 50, dimension: 16, seed: 1))
            assertStrataError(.invalidArgument) { try writer.finish() }
            XCTAssertFalse(FileManager.default.fileExists(atPath: path), "a failed finish publishes nothing")
        }
    }

    /// Format 1.0 files (no index sections) differ from index-less 1.1 files only in the minor
    /// version; a 1.0 header (checksum recomputed) must open and read identically.
    func testFormat10FileStillOpens() throws {
        var bytes = [UInt8](try Data(contentsOf: GoldenV1.fixtureURL))
        bytes[10] = 0; bytes[11] = 0
        let sum = bytes.withUnsafeBytes { Checksum.xxh3(UnsafeRawBufferPointer(rebasing: $0[0..<56])) }
        withUnsafeBytes(of: sum.littleEndian) { for i in 0..<8 { bytes[56 + i] = $0[i] } }
        let path = tmpPath("v10.seg")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let seg = try Segment.open(path: path)
        XCTAssertEqual(seg.formatVersion.major, 1)
        XCTAssertEqual(seg.formatVersion.minor, 0)
        XCTAssertTrue(seg.verify().isSound)
        for r in 0..<GoldenV1.rowCount {
            XCTAssertEqual(try seg.vector(row: r), GoldenV1.vector(r))
            XCTAssertTrue(samePayload(try seg.payload(row: r), GoldenV1.values(r)))
        }
    }
}
