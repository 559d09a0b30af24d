// Edge cases of the collection layer, each of which once lost data or trapped:
//   - a batch whose WAL record is over the replay limit (1 GiB) was acknowledged, then dropped on replay;
//   - a MANIFEST publish that failed after its rename deleted files the new MANIFEST references;
//   - an obsolete file stamped in the future (wall clock stepped back) was removed at once;
//   - a manifest entry with a row count over Int.max trapped the compaction planner;
//   - `strata compact --memory-budget 1e30G` trapped converting to Int;
//   - a huge k on an indexed segment with deletes trapped computing the over-fetch.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

#if canImport(Glibc)
import Glibc
#endif

final class CollectionEdgeCaseTests: CollectionTestCase {
    /// A put record larger than the replay limit must be refused before it is written: it used to be
    /// fsynced and acknowledged, and the next open treated it as a torn tail and cut it (and every
    /// later record) off the log.
    func testBatchOverTheWALRecordLimitIsRefusedNotLostOnReplay() throws {
        let dir = tmpPath("c")
        let schema = SegmentSchema(dimension: 4, elementType: .float32, metric: .l2, columns: [ColumnSpec(name: "blob", type: .string)])
        var o = options()
        o.flushThresholdBytes = Int.max
        let c = try StrataCollection.create(path: dir, schema: schema, options: o)
        // 17 rows with a 64 MiB string each (one shared buffer): about 1.06 GiB of record body.
        let blob = String(repeating: "x", count: SegmentWriter.maximumValueBytes)
        let big = (UInt64(0)..<17).map { SegmentRow(id: $0, vector: [1, 2, 3, Float($0)], payload: ["blob": .string(blob)]) }
        var acknowledged = false
        do {
            try c.insert(big)
            acknowledged = true
        } catch {
            XCTAssertEqual(error.code, .invalidArgument, "\(error)")
        }
        // The collection stays usable after a refused batch.
        try c.insert([SegmentRow(id: 100, vector: [1, 1, 1, 1], payload: ["blob": .string("small")])])
        c.close()
        let r = try StrataCollection.open(path: dir, options: o)
        defer { r.close() }
        XCTAssertEqual(r.recovery.droppedBytes, 0, "replay dropped acknowledged bytes")
        XCTAssertEqual(try r.count(), acknowledged ? 18 : 1)
        XCTAssertNotNil(try r.get(id: 100))
    }

    /// The MANIFEST rename happened but the process crashed before the directory fsync after it:
    /// the new MANIFEST may be the one on disk, so a flush must not delete the segment and WAL it names, and the handle must
    /// refuse further writes (it cannot know which WAL the disk names).
    func testFlushPublishFailingAfterRenameKeepsReferencedFiles() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try c.insert(rows(0..<30))
        try c.flush()
        try c.insert(rows(30..<60))
        try c.delete(ids: [1, 2])
        let files = FaultInjectingFileLayer()
        files.inject(.crashBeforeDirectorySync(renameLost: false), on: .rename, name: { $0 == "MANIFEST" })
        XCTAssertThrowsError(try files.run { try c.flush() })
        XCTAssertEqual(files.fired, ["rename MANIFEST"])
        assertStrataError(.io) { try c.insert(rows([500])) }
        c.close()
        let r = try StrataCollection.open(path: dir, options: options())
        defer { r.close() }
        var model: Model = [:]
        for id in UInt64(0)..<60 where id != 1 && id != 2 { model[id] = 0 }
        try assertContent(r, model)
        XCTAssertTrue(try StrataCollection.verify(path: dir).isSound)
    }

    /// The same for a compaction task: its output is named by the MANIFEST on disk.
    func testCompactionPublishFailingAfterRenameKeepsReferencedFiles() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        for start in stride(from: UInt64(0), to: 40, by: 10) {
            try c.insert(rows(start..<(start + 10)))
            try c.flush()
        }
        c.close()
        var policy = CompactionPolicy()
        policy.index = nil
        policy.tierBaseRows = 5
        policy.mergeFactor = 2
        let files = FaultInjectingFileLayer()
        files.inject(.crashBeforeDirectorySync(renameLost: false), on: .rename, name: { $0 == "MANIFEST" })
        XCTAssertThrowsError(try files.run { try Compactor(path: dir, policy: policy).run() })
        XCTAssertEqual(files.fired, ["rename MANIFEST"])
        let r = try StrataCollection.open(path: dir, access: .readOnly, options: options())
        var model: Model = [:]
        for id in UInt64(0)..<40 { model[id] = 0 }
        try assertContent(r, model)
        XCTAssertTrue(try StrataCollection.verify(path: dir).isSound)
    }

    /// An obsolete entry whose time is after now (the wall clock was stepped back) has not yet served
    /// its grace period; `now &- since` wrapped to a huge age and removed it at once.
    func testGracePeriodSurvivesAClockSteppedBack() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        c.close()
        let name = "seg-w00000000000000aa.seg"
        FileManager.default.createFile(atPath: "\(dir)/\(name)", contents: Data([1]))
        var m = try Manifest.read(directory: dir)
        let now = WallClock.milliseconds()
        m.obsolete = [ObsoleteFile(name: name, sinceMilliseconds: now + 3_600_000)]
        Maintenance.collectGarbage(&m, directory: dir, graceSeconds: 60, now: now, keeping: [])
        XCTAssertEqual(m.obsolete.map(\.name), [name])
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/\(name)"))
        XCTAssertEqual(Compactor(path: dir).plan(m).expiredObsoleteFiles, 0)
    }

    /// Row and byte counts in a checksummed manifest are checked before the planner converts them
    /// to Int (a row count over Int.max trapped `strata compact --dry-run`).
    func testManifestWithHugeCountsIsCorruptNotATrap() throws {
        for (rows, bytes) in [(UInt64.max, UInt64(1000)), (UInt64(1) << 63, UInt64(1000)), (UInt64(10), UInt64.max)] {
            let m = Manifest(generation: 2, walSequence: 1, createdMilliseconds: 1, schema: Self.schema,
                             segments: [ManifestSegment(name: "seg-w0000000000000001.seg", deleteFile: nil, rowCount: rows, deletedCount: 0,
                                                        fileBytes: bytes, indexed: false),
                                        ManifestSegment(name: "seg-w0000000000000002.seg", deleteFile: nil, rowCount: rows, deletedCount: 0,
                                                        fileBytes: bytes, indexed: false)],
                             obsolete: [])
            let dir = tmpPath("c-\(rows)-\(bytes)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Data(m.encoded()).write(to: URL(fileURLWithPath: "\(dir)/MANIFEST"))
            assertStrataError(.corrupt) { try Compactor(path: dir).plan() }
        }
    }

    /// A memory budget too large for Int is a usage error (exit 2), not a crash.
    func testCompactMemoryBudgetOverflowIsAUsageError() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        c.close()
        for budget in ["1e30G", "1e19B", "infG"] {
            let r = try runStrata(["compact", dir, "--dry-run", "--memory-budget", budget], scratch: tmp)
            XCTAssertFalse(r.crashed, "\(budget): \(r.stderr)")
            XCTAssertEqual(r.status, 2, "\(budget): \(r.stderr)")
        }
    }

    /// `k` is only checked to be >= 1; on an indexed segment with deleted rows the over-fetch
    /// `k x rows / live + k/2 + 2` trapped converting to Int (or overflowed) for a huge k.
    func testHugeKOnAnIndexedSegmentWithDeletesDoesNotTrap() throws {
        let dir = tmpPath("c")
        var ix = IndexOptions()
        ix.minimumRows = 100
        ix.graph.maxDegree = 8
        ix.graph.buildListSize = 16
        ix.pqTrainingSample = 100
        ix.pqIterations = 2
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options(index: ix))
        defer { c.close() }
        try c.insert(rows(0..<200))
        try c.flush()
        try c.delete(ids: [5, 6])
        try c.flush()
        let snap = try c.snapshot()
        XCTAssertTrue(snap.manifest.segments[0].indexed)
        for k in [Int.max, Int.max / 2, 1 << 40] {
            let hits = try snap.search(query: vector(3, 0), options: SearchOptions(k: k))
            XCTAssertEqual(hits.count, 198)
            XCTAssertEqual(hits.first?.id, 3)
        }
    }
}
