// Golden files of schema growth (docs/COLLECTION-FORMAT.md C.3, manifest format 2.0):
// Fixtures/collection-grown/ is a collection whose schema grew after rows were sealed: a segment of
// GoldenV1's five columns with a delete bitmap, a segment of all seven, and a WAL whose records use
// the new columns. Written once through the library (segment and bitmap names are random):
//   STRATA_WRITE_FIXTURES=1 swift test --filter SchemaGrowthGoldenTests/testWriteFixtures
// The tests read it, check its manifest byte by byte where the format changed, check that a
// manifest without narrow segments is still written as 1.0 byte for byte, and that a manifest
// asking for a newer reader is refused as unsupported.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

enum GoldenGrowth {
    static var url: URL { repoRoot.appendingPathComponent("Fixtures/collection-grown") }

    /// The columns appended to GoldenV1's schema.
    static let added = [ColumnSpec(name: "rank", type: .int64, nullable: true),
                        ColumnSpec(name: "labels", type: .stringList, nullable: true)]

    static var grownSchema: SegmentSchema {
        var s = GoldenV1.schema
        s.columns += added
        return s
    }

    /// Values of the added columns for row `r` in version `v` (v 0: written before the change: null).
    static func extra(_ r: Int, _ v: Int) -> [PayloadValue] {
        guard v > 0 else { return [.null, .null] }
        return [r % 3 == 0 ? .null : .int64(Int64(r * 100 + v)), r % 2 == 0 ? .stringList(["l\(r)", "v\(v)"]) : .null]
    }

    /// Row `r` in version `v`: GoldenWAL's row with the added columns set (v > 0).
    static func row(_ r: Int, _ v: Int) -> SegmentRow {
        var row = GoldenWAL.row(r, v)
        for (spec, value) in zip(added, extra(r, v)) where value != .null { row.payload[spec.name] = value }
        return row
    }

    /// The history: rows 0..<8 flushed (5 columns); rows 2 and 5 deleted; the columns added (the
    /// flush that does it turns the deletes into a bitmap); rows 8..<12 written in version 1 and
    /// flushed (7 columns); then three WAL records: insert 12..<14 (version 1), upsert 3 (version 2,
    /// an old row rewritten with the new columns), delete 9.
    static func populate(_ c: StrataCollection) throws {
        try c.insert(GoldenWAL.rows(0..<8))
        try c.flush()
        try c.delete(ids: [GoldenV1.id(2), GoldenV1.id(5)])
        try c.addColumns(added)
        try c.insert((8..<12).map { row($0, 1) })
        try c.flush()
        try c.insert((12..<14).map { row($0, 1) })
        try c.upsert([row(3, 2)])
        try c.delete(ids: [GoldenV1.id(9)])
    }

    /// Live content: row -> version.
    static let content: [Int: Int] = [0: 0, 1: 0, 3: 2, 4: 0, 6: 0, 7: 0, 8: 1, 10: 1, 11: 1, 12: 1, 13: 1]
    static let walRecords = 3
}

final class SchemaGrowthGoldenTests: CollectionTestCase {
    /// With STRATA_WRITE_FIXTURES=1: writes Fixtures/collection-grown/. Otherwise skipped.
    func testWriteFixtures() throws {
        guard writeFixturesRequested else { throw XCTSkip("set STRATA_WRITE_FIXTURES=1 to (re)write Fixtures/collection-grown") }
        let work = tmpPath("grown")
        let c = try StrataCollection.create(path: work, schema: GoldenWAL.schema, options: GoldenWAL.options())
        try GoldenGrowth.populate(c)
        c.close()
        let dir = GoldenGrowth.url.path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, data) in try directoryContents(work) { try data.write(to: URL(fileURLWithPath: "\(dir)/\(name)")) }
    }

    func copyFixture() throws -> String {
        let dir = tmpPath("grown")
        try FileManager.default.copyItem(atPath: GoldenGrowth.url.path, toPath: dir)
        return dir
    }

    func assertContent(_ c: StrataCollection, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(c.schema, GoldenGrowth.grownSchema, file: file, line: line)
        XCTAssertEqual(try c.count(), GoldenGrowth.content.count, file: file, line: line)
        for r in 0..<20 {
            let got = try c.get(id: GoldenV1.id(r))
            guard let v = GoldenGrowth.content[r] else { XCTAssertNil(got, "row \(r)", file: file, line: line); continue }
            let row = try XCTUnwrap(got, "row \(r)", file: file, line: line)
            XCTAssertEqual(row.vector, GoldenV1.vector(r + 20 * v), "row \(r)", file: file, line: line)
            XCTAssertTrue(samePayload(row.payload, GoldenV1.values(r + 20 * v) + GoldenGrowth.extra(r, v)), "row \(r): \(row.payload)",
                          file: file, line: line)
        }
        // Filters on the added columns, over both segment widths and the WAL rows.
        let nullRank = try c.search(query: GoldenV1.vector(0), filter: .only(.isNull(key: "rank")), options: SearchOptions(k: 20))
        XCTAssertEqual(Set(nullRank.map(\.id)), Set(GoldenGrowth.content.filter { GoldenGrowth.extra($0.key, $0.value)[0] == .null }.keys.map(GoldenV1.id)),
                       file: file, line: line)
        let labelled = try c.search(query: GoldenV1.vector(0), filter: .only(.match(key: "labels", value: .string("v1"))), options: SearchOptions(k: 20))
        XCTAssertEqual(Set(labelled.map(\.id)), Set([8, 10, 12].map(GoldenV1.id)), file: file, line: line)
    }

    /// Fixtures/collection-grown opens read-only and read-write, reads right, verifies; its manifest
    /// is format 2.0 with the column counts of C.3 and re-encodes to the same bytes.
    func testGrownCollectionFixture() throws {
        let dir = try copyFixture()
        let bytes = try readBytes("\(dir)/MANIFEST")
        let u16 = { (at: Int) in Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        XCTAssertEqual([u16(8), u16(10), u16(12)], [2, 0, 2], "major 2, minor 0, min reader major 2")
        let manifest = try bytes.withBytes { (raw) throws(StrataError) in try Manifest.decode(raw) }
        XCTAssertEqual(manifest.encoded(), bytes, "decode + encode is the identity")
        XCTAssertEqual(manifest.schema, GoldenGrowth.grownSchema)
        XCTAssertEqual(manifest.segments.map { $0.columns(of: manifest.schema) }, [5, 7])
        XCTAssertEqual(manifest.segments.map(\.columnCount), [5, nil])
        XCTAssertNotNil(manifest.segments[0].deleteFile)
        // The first entry's column count, as laid out in C.3: after the schema, the two names, 3 x u64
        // and the flags byte, three reserved zero bytes, then a u32.
        let schemaLength = Int(bytes[64]) | Int(bytes[65]) << 8 | Int(bytes[66]) << 16 | Int(bytes[67]) << 24
        var at = 68 + schemaLength
        at += 2 + u16(at)
        at += 2 + u16(at)
        at += 24 + 1
        XCTAssertEqual(Array(bytes[at..<(at + 7)]), [0, 0, 0, 5, 0, 0, 0])

        let ro = try StrataCollection.open(path: dir, access: .readOnly)
        XCTAssertEqual(ro.recovery.records, GoldenGrowth.walRecords)
        try assertContent(ro)
        let report = try StrataCollection.verify(path: dir)
        XCTAssertTrue(report.isSound, "\(report.problems)")
        XCTAssertTrue(try StrataCollection.scrub(path: dir).isSound)
        // `strata dump`: each segment's column count, every row with every column (null when unset).
        let dump = try runStrata(["dump", dir, "--json", "--rows", "0..20"], scratch: tmp)
        XCTAssertEqual(dump.status, 0, dump.stdoutText)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: dump.stdout) as? [String: Any])
        XCTAssertEqual((json["segments"] as? [[String: Any]])?.compactMap { $0["columns"] as? Int }, [5, 7])
        let rows = try XCTUnwrap(json["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.count, GoldenGrowth.content.count)
        for r in rows { XCTAssertEqual((r["payload"] as? [String: String])?.keys.sorted(), GoldenGrowth.grownSchema.columns.map(\.name).sorted()) }
        let stats = try runStrata(["stats", dir, "--json"], scratch: tmp)
        let statsJSON = try XCTUnwrap(try JSONSerialization.jsonObject(with: stats.stdout) as? [String: Any])
        XCTAssertEqual((statsJSON["segments"] as? [[String: Any]])?.compactMap { $0["columns"] as? Int }, [5, 7])
        let row0 = rows.first { ($0["id"] as? UInt64) == GoldenV1.id(0) || ($0["id"] as? Int) == 0 }
        XCTAssertEqual((row0?["payload"] as? [String: String])?["rank"], "null")

        let rw = try StrataCollection.open(path: dir, options: GoldenWAL.options())
        try assertContent(rw)
        try rw.flush()
        try assertContent(rw)
        var policy = CompactionPolicy()
        policy.mergeFactor = 2
        policy.tierBaseRows = 1_000
        policy.graceSeconds = 0
        policy.index = nil
        XCTAssertFalse(try Compactor(path: dir, policy: policy).run().done.isEmpty)
        try assertContent(rw)
        XCTAssertFalse(try Manifest.read(directory: dir).hasNarrowSegments, "compacted to one width: 1.0 again")
        let again = try readBytes("\(dir)/MANIFEST")
        XCTAssertEqual([Int(again[8]), Int(again[12])], [1, 1])
        rw.close()
    }

    /// A manifest without narrow segments is written exactly as before schema growth (1.0): the
    /// golden 1.0 manifest decodes and re-encodes to its own bytes.
    func testManifestWithoutNarrowSegmentsIsFormat1ByteForByte() throws {
        let bytes = try readBytes(GoldenWAL.v1URL.appendingPathComponent("MANIFEST").path)
        let manifest = try bytes.withBytes { (raw) throws(StrataError) in try Manifest.decode(raw) }
        XCTAssertFalse(manifest.hasNarrowSegments)
        XCTAssertEqual(manifest.encoded(), bytes)
    }

    /// A manifest asking for a reader of major 3 is refused as `unsupportedVersion`, whatever its
    /// minor; a higher minor of a major this build reads is read (minors add nothing a reader must
    /// understand: C.3); an entry column count above the schema's is `corrupt`.
    func testManifestVersionsAndColumnCounts() throws {
        let dir = try copyFixture()
        let original = try readBytes("\(dir)/MANIFEST")
        func patched(_ edits: [(Int, UInt8)]) -> [UInt8] {
            var b = original
            for (at, v) in edits { b[at] = v }
            let footer = b.count - 16
            let sum = b[0..<footer].withUnsafeBytes { Checksum.xxh3($0) }
            for i in 0..<8 { b[footer + i] = UInt8(truncatingIfNeeded: sum >> (8 * UInt64(i))) }
            return b
        }
        func decode(_ b: [UInt8]) throws(StrataError) -> Manifest { try b.withBytes { (raw) throws(StrataError) in try Manifest.decode(raw) } }
        for edits in [[(8, UInt8(3)), (12, UInt8(3))], [(8, 3), (10, 7), (12, 3)], [(12, 9)]] {
            try writeBytes(patched(edits), "\(dir)/MANIFEST")
            let e = assertStrataError(.unsupportedVersion) { try StrataCollection.open(path: dir, access: .readOnly) }
            XCTAssertTrue(e?.message.contains("upgrade") ?? false, "\(String(describing: e))")
            assertStrataError(.unsupportedVersion) { try StrataCollection.open(path: dir) }
        }
        XCTAssertEqual(try decode(patched([(10, 9)])).segments.map(\.columnCount), [5, nil], "minor 9 of major 2 is read")
        // Column count 8 > 7 columns.
        let schemaLength = Int(original[64]) | Int(original[65]) << 8
        var at = 68 + schemaLength
        at += 2 + (Int(original[at]) | Int(original[at + 1]) << 8)
        at += 2 + (Int(original[at]) | Int(original[at + 1]) << 8)
        at += 24 + 4
        assertStrataError(.corrupt) { try decode(patched([(at, 8)])) }
        // A count that does not match the segment file (6: the segment has 5) fails the open.
        try writeBytes(patched([(at, 6)]), "\(dir)/MANIFEST")
        assertStrataError(.corrupt) { try StrataCollection.open(path: dir, access: .readOnly) }
        // A 1.0 manifest (no counts) over a narrow segment is corrupt, as it always was.
        var narrowAsFull = try decode(original)
        narrowAsFull.segments[0].columnCount = nil
        try writeBytes(narrowAsFull.encoded(), "\(dir)/MANIFEST")
        XCTAssertEqual(Int(try readBytes("\(dir)/MANIFEST")[8]), 1)
        assertStrataError(.corrupt) { try StrataCollection.open(path: dir, access: .readOnly) }
        XCTAssertFalse(try StrataCollection.verify(path: dir).isSound)
    }
}
