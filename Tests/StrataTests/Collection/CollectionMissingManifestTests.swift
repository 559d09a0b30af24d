// A collection directory whose MANIFEST was moved aside or lost still holds acknowledged data in its
// segments, bitmaps and WAL. `create` must refuse it (and any directory holding collection files)
// without changing a byte, and every other command must refuse it with exit 1 rather than open,
// clean up or compact it.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class CollectionMissingManifestTests: CollectionTestCase {
    /// Every file of `dir` (dot files and empty lock files included) with its bytes.
    func snapshot(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name)"))
        }
        return out
    }

    /// A CLI collection of the sample data in two sealed segments, three rows deleted through a
    /// bitmap, two more pending in the WAL.
    func makeCLICollection(_ dir: String) throws {
        let sample = SampleDataset.directory
        func run(_ args: [String]) throws {
            let r = try runStrata(args, scratch: tmp)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
        }
        try run(["create", dir, "--dim", "32", "--metric", "l2", "--schema", SampleDataset.schemaSpec])
        try run(["insert", dir, "--vectors", sample.appendingPathComponent("base.fvecs").path,
                 "--payload", sample.appendingPathComponent("payload.tsv").path, "--flush-rows", "1000", "--no-index"])
        try run(["delete", dir, "--ids", "0..3", "--flush"])
        try run(["delete", dir, "--ids", "10,11"])
    }

    /// The scenario as reported: MANIFEST moved aside, then `strata create DIR --dim 32`. Before the
    /// fix it exited 0, deleted every segment and bitmap and replaced the WAL.
    func testCreateRefusesACollectionWhoseManifestWasMovedAside() throws {
        let dir = tmpPath("c.coll")
        try makeCLICollection(dir)
        try FileManager.default.moveItem(atPath: "\(dir)/MANIFEST", toPath: tmpPath("MANIFEST.aside"))
        let before = try snapshot(dir)
        XCTAssertTrue(before.keys.contains { $0.hasPrefix("seg-") } && before.keys.contains { $0.hasPrefix("del-") }
                      && before.keys.contains { $0.hasPrefix("wal-") }, "\(before.keys.sorted())")

        let r = try runStrata(["create", dir, "--dim", "32"], scratch: tmp)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("alreadyExists") && r.stderr.contains("without a MANIFEST"), r.stderr)
        for name in before.keys where CollectionFiles.isDataFile(name) { XCTAssertTrue(r.stderr.contains(name), "\(name) not named: \(r.stderr)") }
        XCTAssertEqual(try snapshot(dir), before, "create changed the directory")

        let e = assertStrataError(.alreadyExists) { try StrataCollection.create(path: dir, schema: SegmentSchema(dimension: 32)) }
        XCTAssertEqual(e?.path, dir)
        XCTAssertEqual(try snapshot(dir), before, "StrataCollection.create changed the directory")

        // With the manifest back, everything is still there.
        try FileManager.default.moveItem(atPath: tmpPath("MANIFEST.aside"), toPath: "\(dir)/MANIFEST")
        let c = try StrataCollection.open(path: dir, access: .readOnly)
        XCTAssertEqual(try c.count(), SampleDataset.baseCount - 5)
    }

    /// Each kind of collection file alone is enough for create to refuse, naming it; files that are
    /// not a collection's are fine.
    func testCreateRefusesAnyCollectionFile() throws {
        let names = ["MANIFEST", "MANIFEST.lock", "LOCK", "COMPACT.lock", "seg-w0123456789abcdef.seg", "del-c0123456789abcdef.del",
                     "wal-00000000000000000001.log", ".seg-w0123456789abcdef.seg.tmp-1-2", ".MANIFEST.tmp-1-2"]
        for name in names {
            let dir = tmpPath("d-\(UUID().uuidString)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
            try Data("x".utf8).write(to: URL(fileURLWithPath: "\(dir)/\(name)"))
            try Data("notes".utf8).write(to: URL(fileURLWithPath: "\(dir)/README"))
            let before = try snapshot(dir)
            let e = assertStrataError(.alreadyExists, name) { try StrataCollection.create(path: dir, schema: Self.schema) }
            XCTAssertTrue(e?.message.contains(name) ?? false, "\(String(describing: e))")
            XCTAssertEqual(try snapshot(dir), before, name)
        }
        // A directory with unrelated files only is a fine place for a collection.
        let dir = tmpPath("plain")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        try Data("notes".utf8).write(to: URL(fileURLWithPath: "\(dir)/README"))
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try c.insert(rows(0..<3))
        XCTAssertEqual(try c.count(), 3)
    }

    /// Every command refuses a directory with segments, bitmaps and WALs but no MANIFEST: exit 1,
    /// a message that says so, and not a byte changed (no lock file created, no file removed).
    func testEveryCommandRefusesCollectionFilesWithoutAManifest() throws {
        let dir = tmpPath("c.coll")
        try makeCLICollection(dir)
        let manifest = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/MANIFEST"))
        try FileManager.default.removeItem(atPath: "\(dir)/MANIFEST")
        try assertEveryCommandRefuses(dir, saying: "MANIFEST is missing")
        // The same with a MANIFEST that is there but unreadable (a flipped byte).
        var damaged = manifest
        damaged[damaged.count / 2] ^= 0x01
        try damaged.write(to: URL(fileURLWithPath: "\(dir)/MANIFEST"))
        try assertEveryCommandRefuses(dir, saying: "manifest checksum mismatch")
    }

    func assertEveryCommandRefuses(_ dir: String, saying message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        // No lock files either: a refusing command must not even create one.
        for lock in ["LOCK", "MANIFEST.lock", "COMPACT.lock"] { try? FileManager.default.removeItem(atPath: "\(dir)/\(lock)") }
        let before = try snapshot(dir)
        let sample = SampleDataset.directory
        let commands: [[String]] = [
            ["stats", dir], ["stats", dir, "--json"], ["dump", dir], ["verify", dir], ["verify", dir, "--json"],
            ["search", dir, "--query", sample.appendingPathComponent("query.fvecs").path],
            ["insert", dir, "--vectors", sample.appendingPathComponent("base.fvecs").path, "--first-id", "100000"],
            ["delete", dir, "--ids", "5"], ["delete", dir, "--ids", "5", "--flush"], ["flush", dir],
            ["compact", dir], ["compact", dir, "--dry-run"], ["compact", dir, "--deleted-threshold", "0.001", "--grace-seconds", "0"],
            ["scrub", dir], ["scrub", dir, "--json"], ["create", dir, "--dim", "32"],
        ]
        for args in commands {
            let r = try runStrata(args, scratch: tmp)
            XCTAssertFalse(r.crashed, "\(args)", file: file, line: line)
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderr) \(r.stdoutText)", file: file, line: line)
            let text = r.stderr + r.stdoutText
            // create names what it found rather than why the manifest cannot be read.
            XCTAssertTrue(text.contains(args[0] == "create" ? "MANIFEST" : message), "\(args): \(text)", file: file, line: line)
            XCTAssertEqual(try snapshot(dir), before, "\(args) changed the directory", file: file, line: line)
        }
    }

    /// The library refuses it too, with `.corrupt` naming the manifest; a directory that holds no
    /// collection file is `.io` (not a collection), as before.
    func testLibraryRefusesCollectionFilesWithoutAManifest() throws {
        let dir = tmpPath("lib.coll")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try c.insert(rows(0..<20))
        try c.flush()
        _ = try c.delete(ids: [1, 2])
        try c.flush()
        try c.insert(rows(20..<25))
        c.close()
        try FileManager.default.removeItem(atPath: "\(dir)/MANIFEST")
        let before = try snapshot(dir)
        for access in [CollectionAccess.readWrite, .readOnly] {
            let e = assertStrataError(.corrupt, "\(access)") { try StrataCollection.open(path: dir, access: access, options: self.options()) }
            XCTAssertEqual(e?.section, "manifest")
            XCTAssertTrue(e?.message.contains("seg-w") ?? false, "\(String(describing: e))")
        }
        assertStrataError(.corrupt, "compactor run") { try Compactor(path: dir).run() }
        assertStrataError(.corrupt, "compactor plan") { try Compactor(path: dir).plan() }
        XCTAssertEqual(try StrataCollection.verify(path: dir).problems.map(\.code), [.corrupt])
        XCTAssertEqual(try StrataCollection.scrub(path: dir).problems.map(\.code), [.corrupt])
        XCTAssertEqual(try snapshot(dir), before)

        let empty = tmpPath("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        let e = assertStrataError(.io) { try StrataCollection.open(path: empty, access: .readWrite) }
        XCTAssertEqual(e?.errno, ENOENT)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: empty), [], "a refused open creates no lock file")
    }

    /// A WAL that the manifest does not name but that holds records belongs to another manifest
    /// (an older MANIFEST put back, say): the writer's cleanup keeps it, while it still removes an
    /// empty one (the leftover of a flush that crashed before it published).
    func testCleanupKeepsAStrayWALThatHoldsRecords() throws {
        let dir = tmpPath("wal.coll")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try c.insert(rows(0..<5))
        c.close()
        let manifest = try Manifest.read(directory: dir)
        let live = "\(dir)/\(CollectionFiles.walName(manifest.walSequence))"
        let withRecords = "\(dir)/\(CollectionFiles.walName(manifest.walSequence + 1))"
        let empty = "\(dir)/\(CollectionFiles.walName(manifest.walSequence + 2))"
        try FileManager.default.copyItem(atPath: live, toPath: withRecords)
        try Data(WALFormat.header(sequence: manifest.walSequence + 2)).write(to: URL(fileURLWithPath: empty))
        let keep = try Data(contentsOf: URL(fileURLWithPath: withRecords))
        let c2 = try StrataCollection.open(path: dir, access: .readWrite, options: options())
        XCTAssertEqual(try c2.count(), 5)
        XCTAssertTrue(FileManager.default.fileExists(atPath: withRecords), "a stray WAL with records was deleted")
        XCTAssertFalse(FileManager.default.fileExists(atPath: empty), "an empty stray WAL is a leftover")
        // A flush would create the next WAL by renaming over it: it refuses instead, and stays usable.
        assertStrataError(.alreadyExists) { try c2.flush() }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: withRecords)), keep)
        XCTAssertEqual(try Manifest.read(directory: dir), manifest)
        try c2.insert(rows(5..<6))
        XCTAssertEqual(try c2.count(), 6)
        c2.close()
        // verify does not call it a removable leftover: it is data the manifest does not name.
        let report = try StrataCollection.verify(path: dir)
        XCTAssertEqual(report.problems.map(\.path), [withRecords], "\(report.problems)")
        XCTAssertEqual(try runStrata(["verify", dir], scratch: tmp).status, 1)
    }

    /// `recover` refuses a directory without a manifest before it creates a lock file there (which
    /// would then make `create` refuse the directory).
    func testRecoverRefusesAnEmptyDirectoryWithoutLeavingALockFile() throws {
        let dir = tmpPath("empty")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        XCTAssertEqual(try runStrata(["recover", dir], scratch: tmp).status, 2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
        XCTAssertEqual(try runStrata(["create", dir, "--dim", "4"], scratch: tmp).status, 0)
    }
}
