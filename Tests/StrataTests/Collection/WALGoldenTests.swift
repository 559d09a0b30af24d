// Golden WAL files (tools/make-fixtures/README.md): a collection whose WAL was written by the format
// 1.0 writer still opens, replays and takes writes; the format 2.0 and 3.0 writers' bytes are
// pinned; a WAL of an unknown major is refused as `unsupportedVersion`, and a 3.0 record (sparse
// vectors) under a 2.0 header is damage.
//   STRATA_WRITE_FIXTURES=1 swift test --filter WALGoldenTests/testWriteFixtures
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class WALGoldenTests: CollectionTestCase {
    /// With STRATA_WRITE_FIXTURES=1: writes Fixtures/collection-wal2.0/ and collection-wal3.0/.
    /// (collection-wal1.0 was written once by the 1.0 writer and is never regenerated.) Otherwise skipped.
    func testWriteFixtures() throws {
        guard writeFixturesRequested else { throw XCTSkip("set STRATA_WRITE_FIXTURES=1 to (re)write Fixtures/collection-wal2.0 and -wal3.0") }
        for (url, files) in [(GoldenWAL.v2URL, GoldenWAL.v2Files()), (GoldenWAL.v3URL, GoldenWAL.v3Files())] {
            let dir = url.path
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (name, bytes) in files { try writeBytes(bytes, "\(dir)/\(name)") }
        }
    }

    /// A copy of a fixture directory in the test's temp directory.
    func copyFixture(_ url: URL) throws -> String {
        let dir = tmpPath(url.lastPathComponent)
        try FileManager.default.copyItem(atPath: url.path, toPath: dir)
        return dir
    }

    /// Checks every live row against `content` (GoldenV1 row -> version).
    func assertGolden(_ c: StrataCollection, _ content: [Int: Int], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try c.count(), content.count, file: file, line: line)
        for r in 0..<20 {
            let got = try c.get(id: GoldenV1.id(r))
            guard let v = content[r] else { XCTAssertNil(got, "row \(r)", file: file, line: line); continue }
            let row = try XCTUnwrap(got, "row \(r)", file: file, line: line)
            XCTAssertEqual(row.vector, GoldenV1.vector(r + 20 * v), "row \(r)", file: file, line: line)
            XCTAssertTrue(samePayload(row.payload, GoldenV1.values(r + 20 * v)), "row \(r): \(row.payload)", file: file, line: line)
        }
    }

    func walMajor(_ path: String) throws -> Int { let b = try readBytes(path); return Int(b[8]) | Int(b[9]) << 8 }

    /// Fixtures/collection-wal1.0 (segment, bitmap, four 1.0 WAL records) opens read-only with its
    /// content; read-write it replays, appends 1.0 records to the 1.0 file, and the next flush starts
    /// a 2.0 WAL. The fixture itself is never written to (a copy is).
    func testWALFormat1CollectionOpensReplaysAndFlushesIntoFormat2() throws {
        let dir = try copyFixture(GoldenWAL.v1URL)
        let walPath = "\(dir)/\(CollectionFiles.walName(3))"
        XCTAssertEqual(try walMajor(walPath), 1)
        let ro = try StrataCollection.open(path: dir, access: .readOnly)
        try assertGolden(ro, GoldenWAL.v1Content)
        XCTAssertEqual(ro.recovery.records, GoldenWAL.v1Records)
        XCTAssertEqual(ro.recovery.walFormat, "1.0")
        XCTAssertEqual(try ro.stats().walFormat, "1.0")
        let report = try StrataCollection.verify(path: dir)
        XCTAssertTrue(report.isSound, "\(report.problems)")
        XCTAssertEqual(report.liveRows, GoldenWAL.v1Content.count)

        var content = GoldenWAL.v1Content
        let c = try StrataCollection.open(path: dir, options: GoldenWAL.options())
        XCTAssertEqual(c.recovery.records, GoldenWAL.v1Records)
        XCTAssertNil(c.recovery.tornTailFile)
        try c.insert(GoldenWAL.rows(14..<16))
        try c.upsert(GoldenWAL.rows([0], 1))
        for r in 14..<16 { content[r] = 0 }
        content[0] = 1
        try assertGolden(c, content)
        c.close()
        XCTAssertEqual(try walMajor(walPath), 1, "a 1.0 WAL takes 1.0 records until the next flush")
        XCTAssertEqual(try StrataCollection.recoverWAL(path: dir, apply: false).state, .sound)
        let c2 = try StrataCollection.open(path: dir, options: GoldenWAL.options())
        XCTAssertEqual(c2.recovery.records, GoldenWAL.v1Records + 2)
        try assertGolden(c2, content)
        // The reader follows the 1.0 WAL incrementally too.
        let follower = try StrataCollection.open(path: dir, access: .readOnly)
        try c2.delete(ids: [GoldenV1.id(14)])
        content[14] = nil
        try assertGolden(follower, content)
        XCTAssertNotNil(try c2.flush())
        XCTAssertEqual(try c2.stats().walFormat, "2.0")
        try c2.insert(GoldenWAL.rows([16]))
        content[16] = 0
        try assertGolden(c2, content)
        try assertGolden(follower, content)
        c2.close()
        let manifest = try Manifest.read(directory: dir)
        XCTAssertEqual(try walMajor("\(dir)/\(CollectionFiles.walName(manifest.walSequence))"), 2)
        try assertGolden(try StrataCollection.open(path: dir, access: .readOnly), content)
        XCTAssertTrue(try StrataCollection.verify(path: dir).isSound)
    }

    /// A 1.0 WAL damaged in its second of four records (a checksum mismatch with records after it)
    /// is refused; `recoverWAL` drops records 2 to 4, counted from the 1.0 records, after a copy.
    func testDamagedFormat1WALIsRefusedAndRecovered() throws {
        let dir = try copyFixture(GoldenWAL.v1URL)
        let walPath = "\(dir)/\(CollectionFiles.walName(3))"
        var wal = try readBytes(walPath)
        var starts: [Int] = []
        var pos = WALFormat.headerLength
        while pos < wal.count {
            starts.append(pos)
            pos += 16 + (0..<4).reduce(0) { $0 | Int(wal[pos + $1]) << (8 * $1) }
        }
        XCTAssertEqual(starts.count, GoldenWAL.v1Records)
        XCTAssertEqual(pos, wal.count)
        wal[starts[1] + 16 + 8 + 8 + 2] ^= 0x01 // inside the first vector of the upsert
        try writeBytes(wal, walPath)
        let e = assertStrataError(.checksumMismatch) { try StrataCollection.open(path: dir, options: GoldenWAL.options()) }
        XCTAssertEqual(e?.offset, UInt64(starts[1]))
        XCTAssertEqual(try readBytes(walPath), wal)
        let report = try StrataCollection.recoverWAL(path: dir, apply: true)
        XCTAssertEqual(report.walFormat, "1.0")
        XCTAssertEqual(report.state, .damaged)
        XCTAssertEqual(report.keptRecords, 1)
        XCTAssertEqual(report.lost.records, 3)
        XCTAssertEqual(report.lost.rows, 4, "upsert of 2 rows and insert of 2 rows")
        XCTAssertEqual(report.lost.deletedIds, 2)
        XCTAssertTrue(report.lost.countsExact)
        XCTAssertEqual(try readBytes("\(dir)/\(try XCTUnwrap(report.copyFile))"), wal)
        let c = try StrataCollection.open(path: dir, options: GoldenWAL.options())
        defer { c.close() }
        try assertGolden(c, [0: 0, 1: 0, 3: 0, 4: 0, 6: 0, 7: 0, 8: 0, 9: 0, 10: 0, 11: 0])
    }

    /// A 1.0 WAL whose first record's length is damaged (it now runs past the end of the file) is
    /// not a torn tail: complete records follow it, and a torn tail is a prefix of one record. Read
    /// with the 1.0 reader's rules alone, all four acknowledged records would be cut as "torn".
    func testFormat1LengthDamageWithRecordsAfterItIsNotATornTail() throws {
        let dir = try copyFixture(GoldenWAL.v1URL)
        let walPath = "\(dir)/\(CollectionFiles.walName(3))"
        var wal = try readBytes(walPath)
        wal.replaceSubrange(WALFormat.headerLength..<(WALFormat.headerLength + 4), with: [0xFF, 0xFF, 0x00, 0x00])
        try writeBytes(wal, walPath)
        let e = assertStrataError(.corrupt) { try StrataCollection.open(path: dir, options: GoldenWAL.options()) }
        XCTAssertEqual(e?.offset, UInt64(WALFormat.headerLength))
        XCTAssertEqual(try readBytes(walPath), wal, "a refused open changes nothing")
        XCTAssertFalse(try StrataCollection.verify(path: dir).isSound)
        XCTAssertEqual(try runStrata(["flush", dir], scratch: tmp).status, 1)
        XCTAssertEqual(try readBytes(walPath), wal)
        XCTAssertEqual(try StrataCollection.recoverWAL(path: dir, apply: false).state, .damaged)
    }

    /// Fixtures/collection-wal2.0: regenerated byte for byte, opened with its content, verified.
    func testWALFormat2GoldenFiles() throws {
        let fixture = GoldenWAL.v2URL.path
        for (name, bytes) in GoldenWAL.v2Files() {
            XCTAssertEqual(try readBytes("\(fixture)/\(name)"), bytes, "\(name) differs from what the 2.0 writer produces")
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: fixture)), Set(GoldenWAL.v2Files().keys))
        let dir = try copyFixture(GoldenWAL.v2URL)
        let wal = try readBytes("\(dir)/\(CollectionFiles.walName(1))")
        XCTAssertEqual(Self.walRecordSpans(wal).count, 4)
        XCTAssertEqual(Self.walRecordSpans(wal).last?.upperBound, wal.count)
        let c = try StrataCollection.open(path: dir, access: .readOnly)
        try assertGolden(c, GoldenWAL.v2Content)
        XCTAssertEqual(c.recovery, WALReplaySummary(records: 4, droppedBytes: 0, walFormat: "2.0", tornTailFile: nil))
        XCTAssertTrue(try StrataCollection.verify(path: dir).isSound)
    }

    /// Fixtures/collection-wal3.0: regenerated byte for byte; opened with its content and sparse
    /// vectors (rows 1 and 4 overwritten, 4 without one now), verified; a writer appends 3.0
    /// records to it, and a flush carries the sparse vectors into the segment.
    func testWALFormat3GoldenFiles() throws {
        let fixture = GoldenWAL.v3URL.path
        for (name, bytes) in GoldenWAL.v3Files() {
            XCTAssertEqual(try readBytes("\(fixture)/\(name)"), bytes, "\(name) differs from what the 3.0 writer produces")
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: fixture)), Set(GoldenWAL.v3Files().keys))
        let dir = try copyFixture(GoldenWAL.v3URL)
        let wal = try readBytes("\(dir)/\(CollectionFiles.walName(1))")
        XCTAssertEqual(try walMajor("\(dir)/\(CollectionFiles.walName(1))"), 3)
        XCTAssertEqual(Self.walRecordSpans(wal).count, 4)
        XCTAssertEqual(Self.walRecordSpans(wal).last?.upperBound, wal.count)
        let ro = try StrataCollection.open(path: dir, access: .readOnly)
        try assertGolden(ro, GoldenWAL.v3Content.mapValues { $0.version })
        XCTAssertEqual(ro.recovery, WALReplaySummary(records: 4, droppedBytes: 0, walFormat: "3.0", tornTailFile: nil))
        XCTAssertTrue(try StrataCollection.verify(path: dir).isSound)

        // Every (dimension) query finds exactly the live rows whose current vector holds it.
        func check(_ c: StrataCollection, _ content: [Int: (version: Int, sparse: Bool)]) throws {
            for dim in UInt32(0)..<48 {
                let want = content.compactMap { (r, e) -> (UInt64, Float)? in
                    guard e.sparse, let s = GoldenWAL.sparse(r, e.version), let i = s.indices.firstIndex(of: dim) else { return nil }
                    return (GoldenV1.id(r), s.values[i])
                }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
                let hits = try c.sparseSearch(query: SparseVector(indices: [dim], values: [1]), k: 20)
                XCTAssertEqual(hits.map(\.id), want.map(\.0), "dimension \(dim)")
                XCTAssertEqual(hits.map { -$0.distance }, want.map(\.1), "dimension \(dim)")
            }
        }
        try check(ro, GoldenWAL.v3Content)
        var content = GoldenWAL.v3Content
        let c = try StrataCollection.open(path: dir, options: GoldenWAL.options())
        defer { c.close() }
        var row = GoldenWAL.row(9)
        row.sparse = GoldenWAL.sparse(9)
        try c.insert([row])
        content[9] = (0, true)
        XCTAssertEqual(try walMajor("\(dir)/\(CollectionFiles.walName(1))"), 3, "no flush: the WAL is 3.0 already")
        try check(c, content)
        XCTAssertNotNil(try c.flush())
        try check(c, content)
        try check(try StrataCollection.open(path: dir, access: .readOnly), content)
    }

    /// A put with the sparse flag (bit 1) in a WAL whose header says 2.0 is damage, not a record to
    /// misread: open refuses it as `corrupt` at its offset.
    func testSparseRecordInA2WALIsDamage() throws {
        let dir = try copyFixture(GoldenWAL.v2URL)
        let walPath = "\(dir)/\(CollectionFiles.walName(1))"
        var wal = WALFormat.header(sequence: 1, version: .v2)
        wal += WALFormat.encode(GoldenWAL.v3Records[0], schema: GoldenWAL.schema, version: .v3, number: 1)
        try writeBytes(wal, walPath)
        let e = assertStrataError(.corrupt) { try StrataCollection.open(path: dir, access: .readOnly) }
        XCTAssertEqual(e?.offset, UInt64(WALFormat.headerLength))
        XCTAssertTrue(e?.message.contains("flags") ?? false, "\(String(describing: e))")
    }

    /// A WAL whose major is not 1, 2 or 3 (header checksum valid) is refused by open, verify and
    /// recover as `unsupportedVersion`, and nothing is changed.
    func testWALOfAnUnknownMajorIsUnsupportedVersion() throws {
        let dir = try copyFixture(GoldenWAL.v2URL)
        let walPath = "\(dir)/\(CollectionFiles.walName(1))"
        var wal = try readBytes(walPath)
        wal[8] = 4
        let sum = wal[0..<24].withUnsafeBytes { Checksum.xxh3($0) }
        for i in 0..<8 { wal[24 + i] = UInt8(truncatingIfNeeded: sum >> (8 * UInt64(i))) }
        try writeBytes(wal, walPath)
        let e = assertStrataError(.unsupportedVersion) { try StrataCollection.open(path: dir, access: .readOnly) }
        XCTAssertTrue(e?.message.contains("4.0") ?? false, "\(String(describing: e))")
        assertStrataError(.unsupportedVersion) { try StrataCollection.open(path: dir, access: .readWrite) }
        assertStrataError(.unsupportedVersion) { try StrataCollection.recoverWAL(path: dir, apply: true) }
        XCTAssertEqual(try StrataCollection.verify(path: dir).problems.map(\.code), [.unsupportedVersion])
        XCTAssertEqual(try readBytes(walPath), wal)
        let r = try runStrata(["verify", dir], scratch: tmp)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stdoutText.contains("unsupportedVersion"), r.stdoutText)
    }
}
