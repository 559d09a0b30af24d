// The collection's durable paths under injected file-system faults (FaultInjectingFileLayer): a
// short write or a full disk during a flush, a crash between a manifest rename and the directory
// fsync that follows it, and a failing WAL append. In every case each acknowledged write is there
// after a restart, nothing unacknowledged is reported as written, and the collection verifies.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat

#if canImport(Glibc)
import Glibc
#endif

final class CollectionFaultInjectionTests: CollectionTestCase {
    /// A collection with a flushed segment and a buffer holding inserts, an upsert and deletes of
    /// both sealed and buffered rows (so a flush writes a segment, a bitmap, a WAL and a manifest).
    private func populated(_ dir: String) throws -> (StrataCollection, Model) {
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        var model: Model = [:]
        try c.insert(rows(0..<60))
        for id in UInt64(0)..<60 { model[id] = 0 }
        try c.flush()
        try c.insert(rows(60..<120))
        for id in UInt64(60)..<120 { model[id] = 0 }
        try c.upsert(rows([5, 70], version: 1))
        model[5] = 1
        model[70] = 1
        try c.delete(ids: [3, 80])
        model[3] = nil
        model[80] = nil
        return (c, model)
    }

    private func temporaries(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".tmp-") }.sorted()
    }

    /// A flush that hits a short write or a full disk (in the new segment, bitmap, WAL or manifest)
    /// or a failing fsync or rename fails with `.io`, leaves no temporary file, and the collection
    /// stays readable with every acknowledged row, before and after a restart.
    func testFailedWriteDuringFlushKeepsEveryAcknowledgedRow() throws {
        let cases: [(String, FaultInjectingFileLayer.Fault, FaultInjectingFileLayer.Operation, @Sendable (String) -> Bool, Int32)] = [
            ("segment short write", .shortWrite(ENOSPC), .write, { $0.hasPrefix(".seg-") }, ENOSPC),
            ("segment fsync", .fail(EIO), .sync, { $0.hasPrefix(".seg-") }, EIO),
            ("bitmap short write", .shortWrite(ENOSPC), .write, { $0.hasPrefix(".del-") }, ENOSPC),
            ("new WAL short write", .shortWrite(ENOSPC), .write, { $0.hasPrefix(".wal-") }, ENOSPC),
            ("manifest full disk", .fail(ENOSPC), .write, { $0.hasPrefix(".MANIFEST") }, ENOSPC),
            ("manifest fsync", .fail(EIO), .sync, { $0.hasPrefix(".MANIFEST") }, EIO),
            ("manifest rename", .fail(EIO), .rename, { $0 == "MANIFEST" }, EIO),
        ]
        for (n, (label, fault, operation, name, errno)) in cases.enumerated() {
            let dir = tmpPath("c\(n)")
            let (c, populatedModel) = try populated(dir)
            var model = populatedModel
            let files = FaultInjectingFileLayer()
            files.inject(fault, on: operation, name: name)
            let error = assertStrataError(.io, label) { try files.run { try c.flush() } }
            XCTAssertEqual(error?.errno, errno, label)
            XCTAssertEqual(files.fired.count, 1, "\(label): \(files.fired)")
            XCTAssertEqual(temporaries(dir), [], label)
            try assertContent(c, model)
            // Before the publish the handle carries on; a failed publish makes it refuse writes.
            do {
                try c.insert(rows([500]))
                model[500] = 0
                try c.flush()
            } catch {
                XCTAssertEqual(error.code, .io, "\(label): \(error)")
            }
            c.close()
            let r = try StrataCollection.open(path: dir, options: options())
            try assertContent(r, model)
            try r.insert(rows([600]))
            model[600] = 0
            try r.flush()
            try assertContent(r, model)
            r.close()
            let report = try StrataCollection.verify(path: dir)
            XCTAssertTrue(report.isSound, "\(label): \(report.problems)")
        }
    }

    /// A crash after the MANIFEST rename and before the directory fsync, with the rename kept or lost
    /// (a power cut may do either): a flush recovers to the old manifest (and replays the old WAL) or
    /// to the new one (nothing to replay), with exactly the acknowledged rows either way.
    func testCrashBeforeManifestDirectorySyncRecoversToOldOrNewFlushState() throws {
        for renameLost in [true, false] {
            let dir = tmpPath("c-\(renameLost)")
            let (c, model) = try populated(dir)
            let before = try Manifest.read(directory: dir)
            let files = FaultInjectingFileLayer()
            files.inject(.crashBeforeDirectorySync(renameLost: renameLost), on: .rename, name: { $0 == "MANIFEST" })
            assertStrataError(.io) { try files.run { try c.flush() } }
            XCTAssertTrue(files.crashed)
            c.close()
            let after = try Manifest.read(directory: dir)
            XCTAssertEqual(after.generation, renameLost ? before.generation : before.generation + 1)
            XCTAssertEqual(after.walSequence, renameLost ? before.walSequence : before.walSequence + 1)
            let r = try StrataCollection.open(path: dir, options: options())
            XCTAssertEqual(r.recovery.records > 0, renameLost, "\(r.recovery)")
            try assertContent(r, model)
            r.close()
            XCTAssertEqual(temporaries(dir), [], "the open removes the crashed publish's leftovers")
            let report = try StrataCollection.verify(path: dir)
            XCTAssertTrue(report.isSound, "\(report.problems)")
        }
    }

    /// The same for a compaction: the old segments or the merged one, never both or neither.
    func testCrashBeforeManifestDirectorySyncRecoversToOldOrNewCompactionState() throws {
        for renameLost in [true, false] {
            let dir = tmpPath("c-\(renameLost)")
            let (c, populatedModel) = try populated(dir)
            var model = populatedModel
            try c.flush()
            try c.insert(rows(200..<230))
            for id in UInt64(200)..<230 { model[id] = 0 }
            try c.flush()
            c.close()
            let before = try Manifest.read(directory: dir)
            var policy = CompactionPolicy()
            policy.index = nil
            policy.tierBaseRows = 5
            policy.mergeFactor = 2
            let files = FaultInjectingFileLayer()
            files.inject(.crashBeforeDirectorySync(renameLost: renameLost), on: .rename, name: { $0 == "MANIFEST" })
            XCTAssertThrowsError(try files.run { try Compactor(path: dir, policy: policy).run() })
            XCTAssertEqual(files.fired, ["rename MANIFEST"])
            let after = try Manifest.read(directory: dir)
            if renameLost {
                XCTAssertEqual(after, before)
            } else {
                XCTAssertEqual(after.generation, before.generation + 1)
                XCTAssertLessThan(after.segments.count, before.segments.count)
            }
            let r = try StrataCollection.open(path: dir, options: options())
            try assertContent(r, model)
            r.close()
            let report = try StrataCollection.verify(path: dir)
            XCTAssertTrue(report.isSound, "\(report.problems)")
        }
    }

    /// A compaction with no grace period whose inputs got new bitmaps from the writer after it read
    /// the manifest, killed between its garbage collection and the MANIFEST rename: the manifest that
    /// stands still names those bitmaps, so they must still be there (the edit retired them, and
    /// its garbage collection removed them before the rename, whose loss left them named but gone).
    func testCrashedCompactionKeepsTheBitmapsTheStandingManifestNames() throws {
        let dir = tmpPath("c")
        var model: Model = [:]
        var policy = CompactionPolicy()
        policy.index = nil
        policy.tierBaseRows = 5
        policy.mergeFactor = 2
        policy.graceSeconds = 0
        let compactor = Compactor(path: dir, policy: policy)
        let stale: Version
        let task: CompactionTask
        do {
            let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options(grace: 0))
            try c.insert(rows(0..<60))
            try c.flush()
            try c.insert(rows(60..<120))
            try c.flush()
            for id in UInt64(0)..<120 { model[id] = 0 }
            // The compactor reads the manifest and plans a merge of both segments...
            stale = try Version.open(directory: dir, manifest: try Manifest.read(directory: dir), reusing: nil)
            task = try XCTUnwrap(compactor.plan(stale.manifest).tasks.first)
            XCTAssertEqual(task.inputs.count, 2)
            // ...then the writer (another process: its versions go with it) gives both new bitmaps.
            try c.delete(ids: [3, 80])
            model[3] = nil
            model[80] = nil
            try c.flush()
            c.close()
        }
        let before = try Manifest.read(directory: dir)
        let bitmaps = before.segments.compactMap(\.deleteFile)
        XCTAssertEqual(bitmaps.count, 2)
        let files = FaultInjectingFileLayer()
        files.inject(.crashBeforeDirectorySync(renameLost: true), on: .rename, name: { $0 == "MANIFEST" })
        XCTAssertThrowsError(try files.run { try compactor.runTask(task, version: stale) })
        XCTAssertEqual(files.fired, ["rename MANIFEST"])
        XCTAssertEqual(try Manifest.read(directory: dir), before)
        for name in before.referencedFiles {
            XCTAssertTrue(FileSystem.exists("\(dir)/\(name)"), "\(name), named by the standing manifest, was removed")
        }
        // A restart finds every row; the next compaction merges, and its cleanup removes the retired files.
        do {
            let r = try StrataCollection.open(path: dir, options: options(grace: 0))
            try assertContent(r, model)
            r.close()
        }
        XCTAssertEqual(try compactor.run().done.count, 1)
        for name in bitmaps { XCTAssertFalse(FileSystem.exists("\(dir)/\(name)"), "\(name) outlived its grace period") }
        let report = try StrataCollection.verify(path: dir)
        XCTAssertTrue(report.isSound, "\(report.problems)")
    }

    /// A WAL append that fails (EIO on the write, a short write on a full disk, EIO from fdatasync)
    /// is reported as `.io`, the handle refuses later writes, and after a restart every acknowledged
    /// row is there. A batch whose write failed is not; one whose fdatasync failed may be (its bytes
    /// may have reached the disk), and is then whole.
    func testFailedWALAppendIsReportedAndNothingIsAcknowledged() throws {
        let cases: [(String, FaultInjectingFileLayer.Fault, FaultInjectingFileLayer.Operation, Int32)] = [
            ("write EIO", .fail(EIO), .write, EIO),
            ("short write", .shortWrite(ENOSPC), .write, ENOSPC),
            ("fdatasync EIO", .fail(EIO), .syncData, EIO),
        ]
        for (n, (label, fault, operation, errno)) in cases.enumerated() {
            let dir = tmpPath("c\(n)")
            let files = FaultInjectingFileLayer()
            let c = try files.run { try StrataCollection.create(path: dir, schema: Self.schema, options: options()) }
            var model: Model = [:]
            try c.insert(rows(0..<20))
            for id in UInt64(0)..<20 { model[id] = 0 }
            try c.delete(ids: [4])
            model[4] = nil
            files.inject(fault, on: operation, name: { $0.hasPrefix("wal-") })
            let error = assertStrataError(.io, label) { try c.insert(rows(20..<40)) }
            XCTAssertEqual(error?.errno, errno, label)
            XCTAssertTrue(error?.message.hasPrefix("WAL ") ?? false, "\(label): \(String(describing: error))")
            XCTAssertEqual(files.fired.count, 1, label)
            assertStrataError(.io, label) { try c.delete(ids: [1]) }
            c.close()
            let r = try StrataCollection.open(path: dir, options: options())
            defer { r.close() }
            if operation == .syncData, try r.get(id: 20) != nil {
                for id in UInt64(20)..<40 { model[id] = 0 }
            }
            try assertContent(r, model)
            if case .shortWrite = fault { XCTAssertNotNil(r.recovery.tornTailFile, label) }
        }
    }

    /// publishAtomically leaves the old file or the new one, never a partial one: a failed write,
    /// fsync or rename leaves the old file and no temporary; a crash that loses the rename leaves
    /// the old file (and the temporary, for the next cleanup); one that keeps it, the new file.
    func testPublishAtomicallyLeavesTheOldOrTheNewFile() throws {
        let path = tmpPath("f")
        let old = [UInt8](repeating: 1, count: 100)
        let new = [UInt8](repeating: 2, count: 300)
        for (fault, operation) in [(FaultInjectingFileLayer.Fault.shortWrite(ENOSPC), FaultInjectingFileLayer.Operation.write),
                                   (.fail(EIO), .sync), (.fail(EIO), .rename), (.fail(EIO), .create)] {
            try publishAtomically(old, to: path)
            let files = FaultInjectingFileLayer()
            files.inject(fault, on: operation)
            assertStrataError(.io) { try files.run { try publishAtomically(new, to: path) } }
            XCTAssertEqual(try FileSystem.readAll(path), old, "\(operation)")
            XCTAssertEqual(temporaries(tmp.path), [], "\(operation)")
        }
        for renameLost in [true, false] {
            try publishAtomically(old, to: path)
            let files = FaultInjectingFileLayer()
            files.inject(.crashBeforeDirectorySync(renameLost: renameLost), on: .rename)
            assertStrataError(.io) { try files.run { try publishAtomically(new, to: path) } }
            XCTAssertEqual(try FileSystem.readAll(path), renameLost ? old : new)
            XCTAssertEqual(temporaries(tmp.path).count, renameLost ? 1 : 0)
            for t in temporaries(tmp.path) { FileSystem.removeIfPresent("\(tmp.path)/\(t)") }
        }
    }
}
