// Garbage collection of a remote collection: a pinned generation's objects survive until its pin's
// lease is revoked and the grace period has passed; orphans go once older than the grace period;
// flushed WAL objects go; a dry run deletes nothing; the committed manifest drops the obsolete
// entries whose objects are gone, and the collection still opens with every row.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataRemote

final class RemoteGarbageCollectorTests: RemoteMaintenanceTestCase {
    func collector(grace: Double, dryRun: Bool = false) -> RemoteGarbageCollector {
        var g = RemoteGarbageCollector(layout: layout, store: store, metadata: metadata)
        g.graceSeconds = grace
        g.dryRun = dryRun
        return g
    }

    func compact() async throws {
        var k = RemoteCompactor(layout: layout, store: store, metadata: metadata, options: remoteOptions(cache: "compactor"), policy: mergeEverything())
        k.leaseSeconds = 30
        let r = try await k.run()
        XCTAssertEqual(r.done.count, 1)
    }

    func testPinnedGenerationSurvivesUntilItsLeaseIsRevoked() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 2, perBatch: 20, model: &model)
        try await c.delete(ids: [1])
        model[1] = nil
        try await c.flush()
        let old = try await headManifest()
        let oldFiles = Set(old.segments.flatMap { [layout.segmentObject($0.name)] + ($0.deleteFile.map { [layout.bitmapObject($0)] } ?? []) })
        // A reader pins the generation; then a compaction retires its segments.
        let reader = try await openReader(cache: "reader")
        try await compact()
        let pinnedSummary = try await collector(grace: 0).run()
        XCTAssertTrue(pinnedSummary.pinnedGenerations.contains(old.generation))
        let whilePinned = try await objectKeys()
        XCTAssertTrue(whilePinned.isSuperset(of: oldFiles), "the pinned generation's objects are kept")
        XCTAssertTrue(pinnedSummary.deletedKeys.allSatisfy { !oldFiles.contains($0) })
        // The reader, still on its generation, reads every row.
        try await assertContent(reader.snapshot().snapshot, model)

        await reader.close()
        // The writer pins what it reads too: its next read moves its pin to the compacted head.
        _ = try await c.snapshot()
        let summary = try await collector(grace: 0).run()
        let afterPin = try await objectKeys()
        XCTAssertTrue(afterPin.isDisjoint(with: oldFiles), "removed once the pin is gone")
        XCTAssertEqual(summary.deletedBy[.obsolete]?.objects ?? 0 >= oldFiles.count, true)
        XCTAssertNotNil(summary.committedGeneration)
        let head = try await headManifest()
        XCTAssertTrue(head.obsolete.allSatisfy { !$0.name.hasPrefix("seg-") && !$0.name.hasPrefix("del-") }, "\(head.obsolete)")

        // The writer and a fresh reader still see every row.
        try await c.insert(rows(500..<505))
        for id in UInt64(500)..<505 { model[id] = 0 }
        try await c.flush()
        try await assertContent(c.snapshot().snapshot, model)
        await c.close()
        let fresh = try await openReader(cache: "fresh")
        try await assertContent(fresh.snapshot().snapshot, model)
        await fresh.close()
    }

    func testObsoleteObjectsWaitForTheGracePeriod() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 2, perBatch: 10, model: &model)
        try await compact()
        let before = try await objectKeys()
        let summary = try await collector(grace: 3600).run()
        XCTAssertEqual(summary.deletedKeys, [])
        XCTAssertNil(summary.committedGeneration)
        let after = try await objectKeys()
        XCTAssertEqual(after, before)
        await c.close()
    }

    func testOrphansAreRemovedOnceOlderThanTheGracePeriod() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 1, perBatch: 10, model: &model)
        // What crashes and lost races leave: a segment and a bitmap no manifest names, and a
        // manifest of a generation that never became the head.
        let orphanSegment = layout.segmentObject("seg-w00000000deadbeef.seg")
        let orphanBitmap = layout.bitmapObject("del-c00000000deadbeef.del")
        let head = try await headManifest()
        let orphanManifest = layout.manifestObject(generation: head.generation + 1, writer: "crashed")
        let foreign = layout.root + "notes/readme.txt"
        for key in [orphanSegment, orphanBitmap, orphanManifest, foreign] { _ = try await store.put(key, body: [1, 2, 3], condition: .ifAbsent) }

        let young = try await collector(grace: 3600).run()
        XCTAssertFalse(young.deletedKeys.contains(orphanSegment), "younger than the grace period")
        let dry = try await collector(grace: 0, dryRun: true).run()
        XCTAssertTrue(dry.dryRun)
        XCTAssertEqual(Set(dry.deletedKeys).isSuperset(of: [orphanSegment, orphanBitmap, orphanManifest]), true, "\(dry.deletedKeys)")
        let afterDryRun = try await objectKeys()
        XCTAssertTrue(afterDryRun.isSuperset(of: [orphanSegment, orphanBitmap, orphanManifest]), "a dry run deletes nothing")

        let summary = try await collector(grace: 0).run()
        let keys = try await objectKeys()
        XCTAssertTrue(keys.isDisjoint(with: [orphanSegment, orphanBitmap, orphanManifest]), "\(keys)")
        XCTAssertTrue(keys.contains(foreign), "objects not named like Strata's are never deleted")
        XCTAssertTrue(keys.contains(layout.collectionObject))
        XCTAssertGreaterThanOrEqual(summary.deletedBy[.orphan]?.objects ?? 0, 3)
        try await assertContent(c.snapshot().snapshot, model)
        await c.close()
        let reader = try await openReader(cache: "reader")
        try await assertContent(reader.snapshot().snapshot, model)
        await reader.close()
    }

    func testFlushedWALObjectsAreRemovedAndUnflushedOnesKept() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 2, perBatch: 10, model: &model)
        try await c.insert(rows(100..<103))
        for id in UInt64(100)..<103 { model[id] = 0 }
        let head = try await headManifest()
        let summary = try await collector(grace: 0).run()
        let wal = try await store.list(prefix: layout.walPrefix).compactMap { layout.walSequence(ofKey: $0.key) }
        XCTAssertFalse(wal.isEmpty)
        XCTAssertTrue(wal.allSatisfy { $0 >= head.walSequence }, "WAL objects below the head's sequence removed: \(wal), head \(head.walSequence)")
        XCTAssertGreaterThan(summary.deleted[.wal]?.objects ?? 0, 0)
        XCTAssertEqual(summary.minimumWALSequence, head.walSequence)
        // The WAL entries left the obsolete list.
        let headAfter = try await headManifest()
        XCTAssertTrue(headAfter.obsolete.allSatisfy { !$0.name.hasPrefix("wal-") })
        await c.close()
        // Reopened, the writer replays the unflushed rows.
        let again = try await RemoteCollection.open(layout: layout, store: store, metadata: metadata, options: remoteOptions(cache: "again"))
        try await assertContent(again.snapshot().snapshot, model)
        await again.close()
    }

    func testDryRunDeletesAndCommitsNothing() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 2, perBatch: 10, model: &model)
        try await compact()
        let keys = try await objectKeys()
        let head = try await metadata.get(layout.headKey)
        let dry = try await collector(grace: 0, dryRun: true).run()
        XCTAssertGreaterThan(dry.deletedTotal.objects, 0)
        XCTAssertGreaterThan(dry.obsoleteEntriesRemoved, 0)
        XCTAssertNil(dry.committedGeneration)
        let after = try await objectKeys()
        XCTAssertEqual(after, keys)
        let headAfter = try await metadata.get(layout.headKey)
        XCTAssertEqual(headAfter, head)
        await c.close()
    }

    func testStaleMultipartUploadsAreAborted() async throws {
        let c = try await createRemote()
        let key = layout.segmentObject("seg-w00000000feedface.seg")
        let id = try await s3.createUpload(key)
        let young = try await collector(grace: 3600).run()
        XCTAssertEqual(young.uploadsAborted, 0)
        let dry = try await collector(grace: 0, dryRun: true).run()
        XCTAssertEqual(dry.uploadsAborted, 1)
        let pendingAfterDryRun = try await store.pendingUploads(prefix: layout.root)
        XCTAssertEqual(pendingAfterDryRun.map(\.uploadId), [id])
        let summary = try await collector(grace: 0).run()
        XCTAssertEqual(summary.uploadsAborted, 1)
        let pending = try await store.pendingUploads(prefix: layout.root)
        XCTAssertEqual(pending, [])
        await c.close()
    }

    func testWALObjectsAPinnedGenerationReplaysAreKept() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 1, perBatch: 10, model: &model)
        // A reader pins this generation and replays the WAL objects written after it.
        try await c.insert(rows(100..<105))
        for id in UInt64(100)..<105 { model[id] = 0 }
        let reader = try await openReader(cache: "reader")
        let pinnedWAL = try await headManifest().walSequence
        try await c.flush()
        try await c.insert(rows(200..<203))
        for id in UInt64(200)..<203 { model[id] = 0 }
        let summary = try await collector(grace: 0).run()
        XCTAssertEqual(summary.minimumWALSequence, pinnedWAL)
        let wal = try await store.list(prefix: layout.walPrefix).compactMap { layout.walSequence(ofKey: $0.key) }
        XCTAssertEqual(wal.min(), pinnedWAL, "WAL objects from the pinned generation's sequence on are kept: \(wal)")
        // A fresh reader on the pinned generation could still replay: the reader itself moves on.
        try await assertContent(reader.snapshot().snapshot, model)
        await reader.close()
        _ = try await c.snapshot()
        _ = try await collector(grace: 0).run()
        let head = try await headManifest()
        let after = try await store.list(prefix: layout.walPrefix).compactMap { layout.walSequence(ofKey: $0.key) }
        XCTAssertTrue(after.allSatisfy { $0 >= head.walSequence }, "\(after), head \(head.walSequence)")
        await c.close()
    }

    func testADamagedPinnedManifestStopsGCBeforeItDeletesAnything() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 2, perBatch: 10, model: &model)
        try await compact()
        // A pin names a manifest object whose bytes are not a manifest: what it references is unknown.
        let bad = layout.manifestObject(generation: 2, writer: "damaged")
        _ = try await store.put(bad, body: Array(repeating: 0x5A, count: 300), condition: .ifAbsent)
        let lease = try await metadata.grantLease(ttlSeconds: 30)
        try await metadata.put(layout.pinKey("damaged"), value: Array(bad.utf8), lease: lease)
        let before = try await objectKeys()
        await assertThrowsStrataError(.badMagic, "gc went on past a damaged pinned manifest") {
            try await collector(grace: 0).run()
        }
        let after = try await objectKeys()
        XCTAssertEqual(after, before)
        try await metadata.revoke(lease: lease)
        await c.close()
    }
}
