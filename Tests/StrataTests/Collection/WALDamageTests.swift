// A damaged complete WAL record versus a torn tail (docs/COLLECTION-FORMAT.md C.4): damage is refused by open
// and verify and cut only by `strata recover` after a copy; a torn tail is moved to a side file with
// its exact bytes; a reader following the log sees an append in progress as not yet written.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

extension CollectionTestCase {
    /// Byte ranges of the records of a format 2.0 WAL (32-byte record headers; the u32 body length
    /// at the start of each). Stops at a record that runs past the end.
    static func walRecordSpans(_ wal: [UInt8]) -> [Range<Int>] {
        var spans: [Range<Int>] = []
        var pos = WALFormat.headerLength
        while wal.count - pos >= 32 {
            let length = (0..<4).reduce(0) { $0 | Int(wal[pos + $1]) << (8 * $1) }
            guard pos + 32 + length <= wal.count else { break }
            spans.append(pos..<(pos + 32 + length))
            pos += 32 + length
        }
        return spans
    }

    /// The files of a collection directory by name (lock files, which hold no data, left out).
    func directoryContents(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name != "LOCK" && !name.hasSuffix(".lock") {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name)"))
        }
        return out
    }

    func readBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
    func writeBytes(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }
}

final class WALDamageTests: CollectionTestCase {
    func json(_ r: CLIResult) -> [String: Any] { (try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]) ?? [:] }

    /// 500 rows inserted in batches of 100 without a flush, then one byte flipped in the middle of
    /// the last record. That record is complete, so this is damage: verify exits 1 naming it, every
    /// open (flush, insert, the API) refuses and changes nothing; `recover` is a dry run until --yes,
    /// then keeps the whole WAL in a side file and drops exactly that record's 100 rows.
    func testFlippedByteInTheLastRecordIsDamageAndRecoverDropsExactlyIt() throws {
        let dir = tmpPath("c.coll")
        let vectors = SampleDataset.directory.appendingPathComponent("base.fvecs").path
        @discardableResult
        func run(_ args: [String], _ status: Int32, line: UInt = #line) throws -> CLIResult {
            let r = try runStrata(args, scratch: tmp)
            XCTAssertEqual(r.status, status, "\(args): \(r.stdoutText) \(r.stderr)", line: line)
            return r
        }
        try run(["create", dir, "--dim", "32", "--metric", "ip"], 0)
        try run(["insert", dir, "--vectors", vectors, "--rows", "0..500", "--batch", "100"], 0)
        let walName = CollectionFiles.walName(1)
        let walPath = "\(dir)/\(walName)"
        var wal = try readBytes(walPath)
        let spans = Self.walRecordSpans(wal)
        XCTAssertEqual(spans.count, 5)
        XCTAssertEqual(spans.last?.upperBound, wal.count)
        let last = try XCTUnwrap(spans.last)
        wal[(last.lowerBound + last.upperBound) / 2] ^= 0x01
        try writeBytes(wal, walPath)
        let before = try directoryContents(dir)

        let verify = json(try run(["verify", dir, "--json"], 1))
        XCTAssertEqual(verify["ok"] as? Bool, false)
        let problem = try XCTUnwrap((verify["problems"] as? [[String: Any]])?.first)
        XCTAssertEqual(problem["code"] as? String, "checksumMismatch")
        XCTAssertEqual(problem["section"] as? String, "wal")
        XCTAssertEqual(problem["offset"] as? Int, last.lowerBound)
        XCTAssertTrue((problem["message"] as? String ?? "").contains(walName), "\(problem)")
        let flush = try run(["flush", dir], 1)
        XCTAssertTrue(flush.stderr.contains("checksumMismatch") && flush.stderr.contains("offset \(last.lowerBound)"), flush.stderr)
        try run(["insert", dir, "--vectors", vectors, "--rows", "500..600", "--first-id", "500"], 1)
        assertStrataError(.checksumMismatch) { try StrataCollection.open(path: dir, access: .readOnly) }
        assertStrataError(.checksumMismatch) { try StrataCollection.open(path: dir, access: .readWrite) }
        XCTAssertEqual(try directoryContents(dir), before, "a refused open changed the directory")

        // Dry run: says what would go, changes nothing, exits 1 (the damage is still there).
        let dry = json(try run(["recover", dir, "--json"], 1))
        XCTAssertEqual(dry["state"] as? String, "damaged")
        XCTAssertEqual(dry["applied"] as? Bool, false)
        XCTAssertEqual(dry["kept_records"] as? Int, 4)
        XCTAssertEqual(dry["kept_bytes"] as? Int, last.lowerBound)
        let dropped = try XCTUnwrap(dry["dropped"] as? [String: Any])
        XCTAssertEqual(dropped["records"] as? Int, 1)
        XCTAssertEqual(dropped["rows"] as? Int, 100)
        XCTAssertEqual(dropped["deleted_ids"] as? Int, 0)
        XCTAssertEqual(dropped["bytes"] as? Int, last.count)
        XCTAssertEqual(dropped["counts_exact"] as? Bool, true)
        XCTAssertEqual(dropped["id_min"] as? Int, 400)
        XCTAssertEqual(dropped["id_max"] as? Int, 499)
        XCTAssertEqual(try directoryContents(dir), before, "a dry run changed the directory")
        let text = try run(["recover", dir], 1).stdoutText
        XCTAssertTrue(text.contains("DAMAGED") && text.contains("1 record, ") && text.contains("100 rows") && text.contains("--yes"), text)

        let done = json(try run(["recover", dir, "--yes", "--json"], 0))
        XCTAssertEqual(done["applied"] as? Bool, true)
        let copy = try XCTUnwrap(done["copy"] as? String)
        XCTAssertEqual(copy, "\(walName).damaged-\(last.lowerBound)")
        XCTAssertEqual(try readBytes("\(dir)/\(copy)"), wal, "the copy holds the whole WAL as it was")
        XCTAssertEqual(try readBytes(walPath), Array(wal[0..<last.lowerBound]), "the WAL is cut at the damaged record")
        XCTAssertEqual(json(try run(["recover", dir, "--json"], 0))["state"] as? String, "sound")
        let verified = json(try run(["verify", dir, "--json"], 0))
        XCTAssertTrue((verified["notes"] as? [String] ?? []).contains { $0.contains(copy) }, "\(verified)")
        let c = try StrataCollection.open(path: dir, access: .readWrite)
        XCTAssertEqual(try c.count(), 400)
        XCTAssertNotNil(try c.get(id: 399))
        XCTAssertNil(try c.get(id: 400))
        XCTAssertEqual(try c.stats().walSideFiles, [copy])
        XCTAssertEqual(try c.flush()?.rows, 400)
        c.close()
    }

    /// A damaged record header (its length cannot be trusted): recovery finds the next header that
    /// verifies, counts the records in between by their numbers, and reports counts it could not
    /// read as lower bounds.
    func testRecoveryCountsPastADamagedHeader() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try c.insert(rows(0..<10))
        try c.insert(rows(10..<20))
        try c.insert(rows(20..<25))
        try c.delete(ids: [1, 2, 21])
        try c.insert(rows(25..<28))
        c.close()
        let walPath = "\(dir)/\(CollectionFiles.walName(1))"
        var wal = try readBytes(walPath)
        let spans = Self.walRecordSpans(wal)
        XCTAssertEqual(spans.count, 5)
        wal[spans[1].lowerBound + 2] ^= 0x80 // the length field of record 2
        try writeBytes(wal, walPath)
        let e = assertStrataError(.checksumMismatch) { try StrataCollection.open(path: dir, access: .readOnly) }
        XCTAssertEqual(e?.offset, UInt64(spans[1].lowerBound))
        let report = try StrataCollection.recoverWAL(path: dir, apply: false)
        XCTAssertEqual(report.state, .damaged)
        XCTAssertEqual(report.keptRecords, 1)
        XCTAssertEqual(report.lost.records, 4)
        XCTAssertEqual(report.lost.rows, 5 + 3, "records 3 and 5; record 2's count is unreadable")
        XCTAssertEqual(report.lost.deletedIds, 3)
        XCTAssertFalse(report.lost.countsExact)
        XCTAssertFalse(report.lost.idsExact)
        XCTAssertEqual(report.lost.unreadableBytes, UInt64(spans[1].count))
        XCTAssertEqual(report.lost.bytes, UInt64(wal.count - spans[1].lowerBound))
        XCTAssertEqual(try readBytes(walPath), wal, "a dry run changes nothing")
        let text = try runStrata(["recover", dir], scratch: tmp)
        XCTAssertEqual(text.status, 1)
        XCTAssertTrue(text.stdoutText.contains("at least 4 records"), text.stdoutText)
    }

    /// A WAL cut inside the last record's body or header, or followed by a partial header: the
    /// read-write open keeps the records before it, moves the torn bytes to `<wal>.torn-<offset>`
    /// exactly, and cuts the WAL there. A crash between the side file and the cut (the side file
    /// already holds those bytes) reuses it; a name taken by other bytes gets a `-2`.
    func testTornTailIsMovedToASideFileWithItsExactBytes() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try c.insert(rows(0..<20))
        try c.delete(ids: [3])
        try c.insert(rows(20..<30))
        c.close()
        let walName = CollectionFiles.walName(1)
        let walPath = "\(dir)/\(walName)"
        let wal = try readBytes(walPath)
        let spans = Self.walRecordSpans(wal)
        XCTAssertEqual(spans.count, 3)
        var twoRecords: Model = [:]
        for id in UInt64(0)..<20 where id != 3 { twoRecords[id] = 0 }
        var all = twoRecords
        for id in UInt64(20)..<30 { all[id] = 0 }
        let cases: [(String, [UInt8], keep: Int, Model)] = [
            ("cut in the body", Array(wal[0..<(spans[2].lowerBound + 40)]), spans[2].lowerBound, twoRecords),
            ("cut in the header", Array(wal[0..<(spans[2].lowerBound + 20)]), spans[2].lowerBound, twoRecords),
            ("partial next header", wal + [0x10, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3], wal.count, all),
        ]
        for (what, bytes, keep, model) in cases {
            for f in try FileManager.default.contentsOfDirectory(atPath: dir) where f.contains(".torn-") { try FileManager.default.removeItem(atPath: "\(dir)/\(f)") }
            try writeBytes(bytes, walPath)
            let report = try StrataCollection.verify(path: dir)
            XCTAssertTrue(report.isSound, "\(what): \(report.problems)")
            XCTAssertTrue(report.notes.contains { $0.contains("torn tail") && $0.contains("\(walName).torn-\(keep)") }, "\(what): \(report.notes)")
            let r = try StrataCollection.open(path: dir, options: options())
            XCTAssertEqual(r.recovery.droppedBytes, UInt64(bytes.count - keep), what)
            XCTAssertEqual(r.recovery.tornTailFile, "\(walName).torn-\(keep)", what)
            XCTAssertEqual(try readBytes("\(dir)/\(walName).torn-\(keep)"), Array(bytes[keep...]), "\(what): the side file holds the torn bytes")
            XCTAssertEqual(try readBytes(walPath), Array(bytes[0..<keep]), what)
            try assertContent(r, model)
            XCTAssertEqual(try r.stats().walSideFiles, ["\(walName).torn-\(keep)"])
            r.close()
            let again = try StrataCollection.open(path: dir, options: options())
            XCTAssertEqual(again.recovery.droppedBytes, 0, what)
            XCTAssertNil(again.recovery.tornTailFile, what)
            again.close()
        }
        // Recovery needs the writer lock.
        let writer = try StrataCollection.open(path: dir, options: options())
        assertStrataError(.busy) { try StrataCollection.recoverWAL(path: dir, apply: true) }
        XCTAssertEqual(try runStrata(["recover", dir, "--yes"], scratch: tmp).status, 2)
        writer.close()
        // A crash after the side file was written and before the WAL was cut: the side file is
        // reused as is, not duplicated.
        let torn = Array(wal[0..<(spans[2].lowerBound + 40)])
        let side = "\(dir)/\(walName).torn-\(spans[2].lowerBound)"
        try writeBytes(torn, walPath)
        try writeBytes(Array(torn[spans[2].lowerBound...]), side)
        var r = try StrataCollection.open(path: dir, options: options())
        XCTAssertEqual(r.recovery.tornTailFile, "\(walName).torn-\(spans[2].lowerBound)")
        r.close()
        // The same name holding other bytes (an earlier torn tail at the same offset) is kept.
        try writeBytes(torn, walPath)
        try writeBytes([1, 2, 3], side)
        r = try StrataCollection.open(path: dir, options: options())
        XCTAssertEqual(r.recovery.tornTailFile, "\(walName).torn-\(spans[2].lowerBound)-2")
        XCTAssertEqual(try readBytes(side), [1, 2, 3])
        XCTAssertEqual(try readBytes("\(side)-2"), Array(torn[spans[2].lowerBound...]))
        r.close()
    }

    /// A read-only process follows the WAL while the writer appends: at every byte of an append in
    /// progress (the kernel shows readers a prefix of a write), the reader sees the records before
    /// it and no damage; once the record is whole, it sees it.
    func testReaderSeesAnAppendInProgressAsNotYetWrittenNeverAsDamage() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try c.insert(rows(0..<10))
        let reader = try StrataCollection.open(path: dir, access: .readOnly)
        XCTAssertEqual(try reader.count(), 10)
        let walPath = "\(dir)/\(CollectionFiles.walName(1))"
        let start = try readBytes(walPath).count
        try c.insert(rows(10..<20))
        try c.delete(ids: [1])
        c.close()
        let full = try readBytes(walPath)
        let spans = Self.walRecordSpans(full)
        XCTAssertEqual(spans.count, 3)
        // Every byte of each record header and the bytes around it, every 5th byte of the bodies.
        let lengths = ((start + 1)..<full.count).filter { k in
            spans.contains { $0.contains(k) && (k - $0.lowerBound <= 40 || $0.upperBound - k <= 8) } || k % 5 == 0
        }
        var cases = 0
        for k in lengths {
            try writeBytes(Array(full[0..<k]), walPath)
            let want = k >= spans[1].upperBound ? 20 : 10
            XCTAssertEqual(try reader.count(), want, "following reader, \(k) bytes")
            if cases % 9 == 0 {
                let fresh = try StrataCollection.open(path: dir, access: .readOnly)
                XCTAssertEqual(try fresh.count(), want, "fresh reader, \(k) bytes")
                XCTAssertEqual(try fresh.stats().walBytes, UInt64(k >= spans[1].upperBound ? spans[1].upperBound : start))
            }
            cases += 1
        }
        try writeBytes(full, walPath)
        XCTAssertEqual(try reader.count(), 19)
        XCTAssertGreaterThan(cases, 150)
    }

    /// Crash campaign over cut points: the WAL cut at every byte of its last record (what a crash
    /// mid-append can leave) always opens to the records before it, with the cut bytes in the side
    /// file; a flipped bit at every byte of that record is always refused as damage.
    func testEveryCutAndEveryFlipOfTheLastRecord() throws {
        let base = FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm/strata-wal-cuts-\(getpid())" : tmpPath("cuts")
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let dir = "\(base)/c"
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try c.insert(rows(0..<5))
        try c.insert(rows(5..<8))
        c.close()
        let walName = CollectionFiles.walName(1)
        let walPath = "\(dir)/\(walName)"
        let wal = try readBytes(walPath)
        let last = try XCTUnwrap(Self.walRecordSpans(wal).last)
        var model: Model = [:]
        for id in UInt64(0)..<5 { model[id] = 0 }
        var cuts = 0, flips = 0
        for cut in (last.lowerBound + 1)..<last.upperBound {
            try writeBytes(Array(wal[0..<cut]), walPath)
            let r = try StrataCollection.open(path: dir, options: options())
            try assertContent(r, model)
            r.close()
            let side = "\(dir)/\(walName).torn-\(last.lowerBound)"
            XCTAssertEqual(try readBytes(side), Array(wal[last.lowerBound..<cut]), "cut at \(cut)")
            XCTAssertEqual(try readBytes(walPath), Array(wal[0..<last.lowerBound]), "cut at \(cut)")
            try FileManager.default.removeItem(atPath: side)
            cuts += 1
        }
        for i in last {
            var b = wal
            b[i] ^= 0x04
            try writeBytes(b, walPath)
            let e = assertStrataError(.checksumMismatch, "flip at \(i)") { try StrataCollection.open(path: dir, options: options()) }
            XCTAssertEqual(e?.offset, UInt64(last.lowerBound))
            XCTAssertEqual(try readBytes(walPath), b, "a refused open changed the WAL")
            flips += 1
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".torn-") }, [])
        print("WAL cut/flip campaign: \(cuts) cuts inside the last record, \(flips) flipped bytes of it")
    }
}
