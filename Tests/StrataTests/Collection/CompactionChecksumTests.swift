// Compaction and flush must not launder damage: a byte flipped in a section they read from a sealed
// segment (or in a delete bitmap) stops them before they publish, with the file, section and
// offset named, the inputs kept, nothing published and no temporary file left. Index and search
// sections are rebuilt from the checked rows, not copied, so damage there may be compacted away
// (the output is then equal to a compaction of the sound input).
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class CompactionChecksumTests: CollectionTestCase {
    /// Every file of `dir` but the lock files (empty; a run may create COMPACT.lock) with its bytes.
    func snapshot(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where !name.hasSuffix(".lock") && name != "LOCK" {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name)"))
        }
        return out
    }

    func flip(_ path: String, at offset: Int, mask: UInt8 = 0x01) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[offset] ^= mask
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    // MARK: - The CLI scenarios

    /// A CLI collection of the sample data in two unindexed segments.
    func makeCLICollection(_ dir: String) throws {
        let sample = SampleDataset.directory
        for args in [["create", dir, "--dim", "32", "--metric", "l2", "--schema", SampleDataset.schemaSpec],
                     ["insert", dir, "--vectors", sample.appendingPathComponent("base.fvecs").path,
                      "--payload", sample.appendingPathComponent("payload.tsv").path, "--flush-rows", "1000", "--no-index"]] {
            let r = try runStrata(args, scratch: tmp)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
        }
    }

    /// Runs `compact DIR --deleted-threshold 0.001` on a collection damaged by `damage` after a
    /// `delete --flush`, and checks the refusal: exit 1, stderr naming the file and `expect`ed
    /// section (and offset), the manifest and every input unchanged, no temporary file.
    func assertCompactRefuses(damage: (String, Segment) throws -> (file: String, section: String, offset: UInt64),
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = tmpPath("c-\(UUID().uuidString).coll")
        try makeCLICollection(dir)
        let first = try XCTUnwrap(try StrataCollection.open(path: dir, access: .readOnly).snapshot().manifest.segments.first?.name)
        let seg = try Segment.open(path: "\(dir)/\(first)")
        var expected: (file: String, section: String, offset: UInt64)? = nil
        var r = try runStrata(["delete", dir, "--ids", "1..6", "--flush", "--no-index"], scratch: tmp)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        expected = try damage(dir, seg)
        let before = try snapshot(dir)
        r = try runStrata(["compact", dir, "--deleted-threshold", "0.001"], scratch: tmp)
        XCTAssertEqual(r.status, 1, "\(r.stderr) \(r.stdoutText)", file: file, line: line)
        XCTAssertFalse(r.crashed, file: file, line: line)
        if let expected {
            XCTAssertTrue(r.stderr.contains(expected.file), "file not named: \(r.stderr)", file: file, line: line)
            XCTAssertTrue(r.stderr.contains("section \(expected.section)"), "section not named: \(r.stderr)", file: file, line: line)
            XCTAssertTrue(r.stderr.contains("offset \(expected.offset)"), "offset not named: \(r.stderr)", file: file, line: line)
        }
        XCTAssertEqual(try snapshot(dir), before, "compaction changed the collection", file: file, line: line)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "temporary files left", file: file, line: line)
        // The damage is still there for verify to see.
        let v = try runStrata(["verify", dir], scratch: tmp)
        XCTAssertEqual(v.status, 1, v.stdoutText, file: file, line: line)
    }

    /// The reported scenario: a byte flipped in a sealed segment's vectors, a few rows deleted, then
    /// `compact --deleted-threshold 0.001`. Before, it exited 0 and rewrote the damaged rows into a
    /// segment verify called sound, and the original went away.
    func testCompactRefusesAFlippedVectorsByte() throws {
        try assertCompactRefuses { dir, seg in
            let vectors = seg.sections.first { $0.kind == .vectors }!
            try self.flip(seg.path, at: Int(vectors.offset) + 777)
            return (seg.path.split(separator: "/").last.map(String.init)!, "vectors", vectors.offset)
        }
    }

    func testCompactRefusesAFlippedBitmapByte() throws {
        try assertCompactRefuses { dir, seg in
            let manifest = try Manifest.read(directory: dir)
            let bitmap = try XCTUnwrap(manifest.segments.compactMap(\.deleteFile).first)
            try self.flip("\(dir)/\(bitmap)", at: 40)
            let size = try FileManager.default.attributesOfItem(atPath: "\(dir)/\(bitmap)")[.size] as! Int
            // The bitmap's checksum covers bytes 0..<size-16 and is stored there.
            return (bitmap, "delete_bitmap", UInt64(size - 16))
        }
    }

    /// A payload block byte: the column section's checksum fails and the damaged block is named.
    func testCompactRefusesAFlippedPayloadBlockByte() throws {
        try assertCompactRefuses { dir, seg in
            let column = seg.sections.first { $0.kind == .column && $0.ordinal == 4 }!
            let block = try seg.blocks(ofColumn: "summary")[0]
            try self.flip(seg.path, at: Int(column.offset + block.offset) + 100)
            return (seg.path.split(separator: "/").last.map(String.init)!, "column 'summary'", column.offset + block.offset)
        }
    }

    // MARK: - Section sweep (library)

    /// The sections a compaction rebuilds rather than copies. Not the graph: the sweep's segment is
    /// format 2.0 and indexed, so its graph records are the only copy of the vectors.
    static let rebuiltKinds: Set<SectionKind> = [.pqCodebook, .pqCodes, .payloadIndex, .sparseIndex, .textIndex]

    /// Compacts `dir`, whose `file` was damaged in `section` (nil: the bitmap), and checks the
    /// outcome; returns it for the tally.
    func compactDamaged(_ dir: String, file: String, section: SectionInfo?, label: String?, policy: CompactionPolicy,
                        content: [UInt64: String], what: String) throws -> String {
        let before = try snapshot(dir)
        let rebuilt = section.flatMap { $0.kind }.map { Self.rebuiltKinds.contains($0) } ?? false
        let result: CompactionResult
        do {
            result = try Compactor(path: dir, policy: policy).run()
        } catch {
            XCTAssertEqual(try snapshot(dir), before, "\(what): a refused compaction changed the collection (\(error))")
            if error.code == .checksumMismatch {
                XCTAssertEqual(error.path, "\(dir)/\(file)", "\(what): \(error)")
                if let section {
                    XCTAssertEqual(error.section, label, "\(what): \(error)")
                    XCTAssertTrue((section.offset..<(section.offset + section.length)).contains(error.offset ?? 0), "\(what): \(error)")
                } else {
                    XCTAssertEqual(error.section, "delete_bitmap", "\(what): \(error)")
                }
            }
            return "refused: \(error.code.rawValue)"
        }
        XCTAssertTrue(rebuilt, "\(what): compaction published over damage it read (\(result.done.map(\.output)))")
        XCTAssertEqual(result.done.count, 1, what)
        let after = try StrataCollection.open(path: dir, access: .readOnly)
        XCTAssertEqual(try Self.content(after), content, "\(what): rewritten content differs")
        XCTAssertTrue(try StrataCollection.verify(path: dir).isSound, what)
        return "rebuilt"
    }

    /// Opens `dir` (damaged in ids or id_index) for writing, adds a row and flushes: the flush must
    /// throw `.checksumMismatch` naming the section and change nothing.
    func flushDamaged(_ dir: String, label: String, what: String) throws {
        let w: StrataCollection
        do {
            w = try StrataCollection.open(path: dir, access: .readWrite, options: options(grace: 3600))
        } catch {
            // Refused at open (the damage broke a structure open reads): nothing can be flushed.
            XCTAssertNotEqual(error.code, .io, "\(what): \(error)")
            return
        }
        defer { w.close() }
        try w.insert(rows([1_000]))
        let before = try snapshot(dir)
        let e = assertStrataError(.checksumMismatch, "flush, \(what)") { try w.flush() }
        XCTAssertEqual(e?.section, label, what)
        XCTAssertEqual(try snapshot(dir), before, "\(what): a refused flush changed the collection")
    }

    /// One indexed segment of 300 rows with a payload index on `ver` and BM25 on `tag` (every kind of
    /// section a collection writes but `vectors`, which a 2.0 indexed segment does not have: the
    /// CLI scenarios above damage one), 3 rows deleted through a bitmap, one more pending in the WAL.
    func makeSweepFixture(_ dir: String) throws -> (files: [String: Data], segment: String, bitmap: String, content: [UInt64: String]) {
        var ix = IndexOptions()
        ix.minimumRows = 100
        ix.graph.maxDegree = 8
        ix.graph.buildListSize = 16
        ix.pqTrainingSample = 300
        ix.pqIterations = 2
        var o = options(index: ix, grace: 3600)
        o.search = SearchSectionOptions(indexedColumns: ["ver"], bm25Columns: ["tag"])
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: o)
        try c.insert(rows(0..<300))
        try c.flush()
        _ = try c.delete(ids: [5, 6, 7])
        try c.flush()
        _ = try c.delete(ids: [9])
        let content = try Self.content(c)
        c.close()
        let m = try Manifest.read(directory: dir)
        XCTAssertEqual(m.segments.count, 1)
        let segment = m.segments[0].name, bitmap = try XCTUnwrap(m.segments[0].deleteFile)
        let kinds = Set(try Segment.open(path: "\(dir)/\(segment)").sections.compactMap(\.kind))
        XCTAssertEqual(kinds, Set(SectionKind.allCases).subtracting([.sparseIndex, .vectors]), "the fixture lacks a section kind")
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name)"))
        }
        return (files, segment, bitmap, content)
    }

    /// id -> payload and vector bits of every live row.
    static func content(_ c: StrataCollection) throws -> [UInt64: String] {
        var out: [UInt64: String] = [:]
        try c.snapshot().forEachRow { r in out[r.id] = "\(r.payload) \(r.vector.map(\.bitPattern))" }
        return out
    }

    func restore(_ dir: String, _ files: [String: Data]) throws {
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        for (name, data) in files { try data.write(to: URL(fileURLWithPath: "\(dir)/\(name)")) }
    }

    /// For every section of a sealed, indexed segment and for its bitmap, bytes flipped at the start,
    /// the middle and the end (and a few more places) of it, then a compaction that rewrites the
    /// segment. Checked sections (schema, ids, id_index, the graph that holds the vectors, columns) and the bitmap: the run
    /// must throw, publish nothing, keep the inputs and leave no temporary file; when the error is a
    /// checksum mismatch it must name the file, the section and an offset inside it. Index and search
    /// sections: a refusal is fine, and so is a rewrite whose content equals the sound input's and
    /// that verify calls sound (they are rebuilt, not copied). Then the same flips in ids and
    /// id_index under a flush that retires a WAL with a pending delete: refused, nothing published.
    func testCompactionAndFlushRefuseDamageInEverySectionTheyRead() throws {
        let dir = tmpPath("sweep.coll")
        let fixture = try makeSweepFixture(dir)
        let segPath = "\(dir)/\(fixture.segment)"
        let sections = try Segment.open(path: segPath).sections
        let schema = Self.schema
        func label(_ s: SectionInfo) -> String {
            s.kind == .column ? "column '\(schema.columns[Int(s.ordinal)].name)'" : s.kind!.description
        }
        var cases: [(name: String, file: String, offset: Int, section: SectionInfo?)] = []
        for s in sections where s.length > 0 {
            let n = Int(s.length)
            for at in Set([0, 1, n / 3, n / 2, n - 8, n - 1].filter { $0 >= 0 && $0 < n }).sorted() {
                cases.append(("\(label(s)) +\(at)", fixture.segment, Int(s.offset) + at, s))
            }
        }
        let bitmapSize = fixture.files[fixture.bitmap]!.count
        for at in [0, 9, 17, 25, 32, 33, bitmapSize - 17, bitmapSize - 16, bitmapSize - 1] {
            cases.append(("bitmap +\(at)", fixture.bitmap, at, nil))
        }
        var policy = CompactionPolicy()
        policy.deletedFractionThreshold = 0.001
        policy.index = nil
        policy.graceSeconds = 3600
        var tally: [String: Int] = [:]
        for c in cases {
            try restore(dir, fixture.files)
            try flip("\(dir)/\(c.file)", at: c.offset)
            let outcome = try compactDamaged(dir, file: c.file, section: c.section, label: c.section.map(label), policy: policy,
                                             content: fixture.content, what: c.name)
            tally[outcome, default: 0] += 1
        }
        // Flush: ids and id_index are what pending deletes resolve through.
        var flushCases = 0
        for c in cases {
            guard let s = c.section, s.kind == .ids || s.kind == .idIndex else { continue }
            try restore(dir, fixture.files)
            try flip("\(dir)/\(c.file)", at: c.offset)
            try flushDamaged(dir, label: label(s), what: c.name)
            flushCases += 1
        }
        let total = tally.values.reduce(0, +)
        print("compaction section sweep: \(total) cases (\(tally.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))); "
              + "flush: \(flushCases) cases")
        XCTAssertGreaterThan(total, 60)
        XCTAssertGreaterThan(flushCases, 10)
    }
}
