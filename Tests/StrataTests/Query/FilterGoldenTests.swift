// Golden fixture of format 1.2 (Fixtures/v1.2/search.seg): the v1 golden rows plus every search
// section (payload indexes on all columns, BM25 on `title`, a sparse vector per row). Opened and
// checked by every later build; never regenerated in place (docs/SEGMENT-FORMAT.md section 9).
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

enum GoldenV12 {
    static var fixtureURL: URL { repoRoot.appendingPathComponent("Fixtures/v1.2/search.seg") }

    static func sparse(_ r: Int) -> SparseVector {
        SparseVector(indices: [UInt32(r % 7), UInt32(10 + r % 3), 1000], values: [Float(r % 5) + 0.5, 0.25, Float(r) * 0.125])
    }

    static func write(to path: String) throws {
        var options = SegmentWriterOptions()
        options.rowsPerBlock = GoldenV1.rowsPerBlock
        options.search = SearchSectionOptions(indexedColumns: GoldenV1.schema.columns.map(\.name), bm25Columns: ["title"])
        let writer = try SegmentWriter(path: path, schema: GoldenV1.schema, options: options)
        for r in 0..<GoldenV1.rowCount {
            try GoldenV1.vector(r).withUnsafeBufferPointer { v in try writer.append(id: GoldenV1.id(r), vector: v, values: GoldenV1.values(r)) }
            try writer.setSparseVector(row: r, sparse(r))
        }
        try writer.finish()
    }
}

final class FilterGoldenTests: StrataTestCase {
    /// With STRATA_WRITE_FIXTURES=1: writes Fixtures/v1.2/search.seg.
    func testWriteFixture() throws {
        guard writeFixturesRequested else { throw XCTSkip("set STRATA_WRITE_FIXTURES=1 to (re)write Fixtures/v1.2") }
        try FileManager.default.createDirectory(at: GoldenV12.fixtureURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        try GoldenV12.write(to: GoldenV12.fixtureURL.path)
    }

    func testGoldenV12() throws {
        let path = GoldenV12.fixtureURL.path
        guard FileManager.default.fileExists(atPath: path) else {
            return XCTFail("missing \(path): run STRATA_WRITE_FIXTURES=1 swift test --filter FilterGoldenTests/testWriteFixture")
        }
        let seg = try Segment.open(path: path)
        XCTAssertEqual(seg.formatVersion.major, 1)
        XCTAssertEqual(seg.formatVersion.minor, 2, "search.seg was written by the format 1.2 writer")
        XCTAssertTrue(seg.verify().isSound)
        XCTAssertEqual(Set(seg.sections.compactMap(\.kind)).intersection([.payloadIndex, .sparseIndex, .textIndex]).count, 3)
        XCTAssertFalse(seg.sections.contains { $0.kind?.isSearchSection == true && $0.required })
        let values = (0..<GoldenV1.rowCount).map(GoldenV1.values)
        for json in [#"{"must":[{"key":"count","range":{"gte":0}}]}"#, #"{"must":[{"is_null":{"key":"tags"}}]}"#,
                     #"{"must":[{"key":"tags","match":{"any":["x","t3"]}}]}"#, #"{"must":[{"key":"title","prefix":"a"}]}"#,
                     #"{"should":[{"key":"flag","match":{"value":true}},{"key":"score","range":{"lt":0}}]}"#] {
            let f = try Filter(json: json)
            XCTAssertEqual(try seg.rows(matching: f), (0..<GoldenV1.rowCount).filter { f.matches(values[$0], schema: GoldenV1.schema) }, json)
        }
        XCTAssertEqual(try seg.bm25Search(column: "title", text: "alpha", k: 5).map(\.row), [1, 11])
        let q = SparseVector(indices: [3, 1000], values: [1, 1])
        let want = (0..<GoldenV1.rowCount).map { ($0, GoldenV12.sparse($0).dot(q)) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        XCTAssertEqual(try seg.sparseSearch(query: q, k: 3).map(\.row), want.prefix(3).map(\.0))
        // The current writer reproduces it byte for byte (apart from a later version stamp: the
        // segment has no index, so a 2.0 writer keeps the 1.2 layout and reader major 1).
        let regenerated = tmpPath("search.seg")
        try GoldenV12.write(to: regenerated)
        var got = try Data(contentsOf: URL(fileURLWithPath: regenerated))
        let fixture = try Data(contentsOf: GoldenV12.fixtureURL)
        if got.count == fixture.count, got.count >= 64, SegmentFormat.writerMajor != 1 || SegmentFormat.writerMinor != 2 {
            got.replaceSubrange(8..<12, with: fixture[8..<12])
            got.replaceSubrange(56..<64, with: fixture[56..<64])
        }
        XCTAssertTrue(got == fixture, "regenerated segment differs from Fixtures/v1.2/search.seg")
    }

    /// Random byte damage anywhere in the three search sections of the fixture: open, query and
    /// verify must throw or answer, never trap (the section checksums catch what open lets through).
    func testDamagedSearchSectionsNeverTrap() throws {
        let original = try Data(contentsOf: GoldenV12.fixtureURL)
        let sections = try Segment.open(path: GoldenV12.fixtureURL.path).sections.filter { $0.kind?.isSearchSection == true }
        var rng = SplitMix64(seed: 12)
        let filters = try [#"{"must":[{"key":"count","range":{"gte":0}}]}"#, #"{"must":[{"key":"tags","match":{"any":["x"]}}]}"#,
                           #"{"must":[{"key":"title","prefix":{"value":"A","case_insensitive":true}}]}"#,
                           #"{"must_not":[{"is_null":{"key":"score"}}]}"#].map { try Filter(json: $0) }
        for trial in 0..<1000 {
            var bytes = original
            let s = sections[trial % sections.count]
            for _ in 0..<(1 + rng.int(4)) {
                let at = Int(s.offset) + rng.int(Int(s.length))
                switch rng.int(3) {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes[at] = 0xFF
                default: bytes[at] ^= 0x80
                }
            }
            let p = tmpPath("d\(trial).seg")
            try bytes.write(to: URL(fileURLWithPath: p))
            guard let seg = try? Segment.open(path: p) else { continue }
            if bytes != original { XCTAssertFalse(seg.verify().isSound, "trial \(trial)") }
            for f in filters {
                _ = try? seg.rows(matching: f)
                _ = try? seg.search(query: GoldenV1.vector(3), filter: f)
                _ = try? seg.bm25Search(column: "title", text: "alpha title", k: 5, filter: f)
            }
            _ = try? seg.sparseSearch(query: SparseVector(indices: [1, 3, 10, 1000], values: [1, 2, 3, 0.5]), k: 5)
            _ = try? seg.sparseSearch(query: SparseVector(indices: [1, 3], values: [1, -2]), k: 5)
            _ = try? seg.bm25Statistics(column: "title", text: "alpha")
        }
    }
}
