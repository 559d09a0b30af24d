// The golden v1 segment (Fixtures/v1/small.seg) and the sample dataset (Fixtures/sample/): both
// must match their deterministic generators in TestSupport.swift, byte for byte.
//
// Regenerate (only when the format version changes, never silently):
//   STRATA_WRITE_FIXTURES=1 swift test --filter SegmentGoldenTests/testWriteFixtures
// See tools/make-fixtures/README.md.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class SegmentGoldenTests: StrataTestCase {
    /// With STRATA_WRITE_FIXTURES=1: writes Fixtures/v1/small.seg, Fixtures/v1/small.dump.json (via the
    /// built `strata dump`) and Fixtures/sample/*. Otherwise skipped.
    func testWriteFixtures() throws {
        guard writeFixturesRequested else { throw XCTSkip("set STRATA_WRITE_FIXTURES=1 to (re)write Fixtures/") }
        let fm = FileManager.default
        try fm.createDirectory(at: GoldenV1.fixtureURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? fm.removeItem(at: GoldenV1.fixtureURL)
        try GoldenV1.write(to: GoldenV1.fixtureURL.path)
        let dump = try runStrata(["dump", GoldenV1.fixtureRelativePath, "--json", "--rows", "0..\(GoldenV1.rowCount)"], scratch: tmp)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        try dump.stdout.write(to: GoldenV1.dumpURL)
        try fm.createDirectory(at: SampleDataset.directory, withIntermediateDirectories: true)
        for (name, data) in SampleDataset.generate().files {
            try data.write(to: SampleDataset.directory.appendingPathComponent(name))
        }
        print("wrote \(GoldenV1.fixtureURL.path), \(GoldenV1.dumpURL.path) and \(SampleDataset.directory.path)/")
    }

    func testGoldenV1() throws {
        let path = GoldenV1.fixtureURL.path
        guard FileManager.default.fileExists(atPath: path) else {
            return XCTFail("missing \(path): run STRATA_WRITE_FIXTURES=1 swift test --filter SegmentGoldenTests/testWriteFixtures")
        }
        // (a) Open the committed file and check its full content against the generator.
        let seg = try Segment.open(path: path)
        XCTAssertEqual(seg.formatVersion.major, 1)
        XCTAssertEqual(seg.formatVersion.minor, 1, "small.seg was written by the format 1.1 writer")
        XCTAssertEqual(seg.rowCount, GoldenV1.rowCount)
        XCTAssertEqual(seg.schema, GoldenV1.schema)
        let report = seg.verify()
        XCTAssertTrue(report.isSound, "\(report.problems)")
        XCTAssertEqual(report.blocksChecked, GoldenV1.schema.columns.count * GoldenV1.rowCount / GoldenV1.rowsPerBlock)
        XCTAssertEqual(seg.sections.map(\.kind), [.vectors, .ids, .idIndex, .schema, .column, .column, .column, .column, .column])
        for r in 0..<GoldenV1.rowCount {
            XCTAssertEqual(try seg.id(ofRow: r), GoldenV1.id(r))
            XCTAssertEqual(try seg.row(forId: GoldenV1.id(r)), r)
            XCTAssertEqual(try seg.vector(row: r), GoldenV1.vector(r), "row \(r)")
            let payload = try seg.payload(row: r)
            XCTAssertTrue(samePayload(payload, GoldenV1.values(r)), "row \(r): \(payload) != \(GoldenV1.values(r))")
        }
        XCTAssertNil(try seg.row(forId: 1))
        let hits = try seg.exactSearch(query: GoldenV1.vector(7), k: 3)
        XCTAssertEqual(hits.first?.row, 7)
        XCTAssertEqual(hits.first?.distance, 0)

        // (b) Regenerate and compare byte for byte. A newer writer (format 1.2+, 2.0 for a segment
        // without an index) writes the same bytes except the header's major and minor version
        // (bytes 8..<12) and the header checksum (56..<64), which are patched back to the fixture's
        // before comparing; the rest of the layout, and reader major 1, are unchanged.
        let regenerated = tmpPath("small.seg")
        try GoldenV1.write(to: regenerated)
        let want = try Data(contentsOf: GoldenV1.fixtureURL)
        var got = try Data(contentsOf: URL(fileURLWithPath: regenerated))
        XCTAssertEqual(UInt16(got[8]) | UInt16(got[9]) << 8, SegmentFormat.writerMajor, "the writer stamps its own major")
        XCTAssertEqual(UInt16(got[10]) | UInt16(got[11]) << 8, SegmentFormat.writerMinor, "the writer stamps its own minor")
        if got.count == want.count, got.count >= 64 {
            got.replaceSubrange(8..<12, with: want[8..<12])
            got.replaceSubrange(56..<64, with: want[56..<64])
        }
        XCTAssertEqual(got.count, want.count)
        if got != want {
            let first = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            XCTFail("regenerated segment differs from Fixtures/v1/small.seg (first difference at byte \(first.map(String.init) ?? "end"))")
        }
    }

    func testSampleDatasetMatchesGenerator() throws {
        let generated = SampleDataset.generate()
        XCTAssertEqual(generated.base.count, SampleDataset.baseCount)
        XCTAssertEqual(generated.queries.count, SampleDataset.queryCount)
        XCTAssertEqual(generated.groundtruth.count, SampleDataset.queryCount)
        XCTAssertTrue(generated.groundtruth.allSatisfy { $0.count == SampleDataset.groundtruthK })
        for v in generated.base.prefix(50) + generated.queries {
            XCTAssertEqual(Double(v.reduce(Float(0)) { $0 + $1 * $1 }), 1, accuracy: 1e-5)
        }
        let nulls = generated.payloadLines.filter { $0.split(separator: "\t", omittingEmptySubsequences: false)[3].isEmpty }.count
        XCTAssertGreaterThan(nulls, 0)
        XCTAssertLessThan(nulls, SampleDataset.baseCount)
        var total = 0
        for (name, data) in generated.files {
            let url = SampleDataset.directory.appendingPathComponent(name)
            guard let stored = try? Data(contentsOf: url) else {
                XCTFail("missing \(url.path): run STRATA_WRITE_FIXTURES=1 swift test --filter SegmentGoldenTests/testWriteFixtures")
                continue
            }
            total += stored.count
            XCTAssertTrue(stored == data, "\(name) differs from the generator's output")
        }
        XCTAssertLessThan(total, 1 << 20, "sample dataset stays under 1 MB")
        // Ground truth is exact: recompute a few queries naively.
        for qi in [0, 17, 49] {
            let q = generated.queries[qi]
            let scores = generated.base.map { v in zip(q, v).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
            let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            XCTAssertEqual(generated.groundtruth[qi].map(Int.init), Array(order.prefix(100)))
        }
    }

    func testFixturesStayUnderTwoMegabytes() throws {
        let root = repoRoot.appendingPathComponent("Fixtures")
        guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.fileSizeKey]) else { return }
        var total = 0
        for case let url as URL in e {
            total += (try url.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0
        }
        XCTAssertLessThan(total, 2 << 20, "Fixtures/ is \(total) bytes")
    }
}
