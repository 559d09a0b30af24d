// Compaction of a remote collection: merges keep every live row and every delete (those of
// bitmaps, those still in WAL objects, those that land while a task runs); two compactors racing
// with the lease bypassed commit each task once; the lease makes a second run busy.
import Foundation
import Synchronization
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataRemote

final class RemoteCompactorTests: RemoteMaintenanceTestCase {
    func compactor(cache: String = "compactor-cache") -> RemoteCompactor {
        RemoteCompactor(layout: layout, store: store, metadata: metadata, options: remoteOptions(cache: cache), policy: mergeEverything())
    }

    func testCompactionMergesAndKeepsEveryLiveRowAndDelete() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 3, perBatch: 50, model: &model)
        // Deletes in bitmaps (flushed), an upsert, and deletes still in WAL objects.
        try await c.delete(ids: [1, 2, 60, 149])
        for id: UInt64 in [1, 2, 60, 149] { model[id] = nil }
        try await c.upsert(rows([70], version: 1))
        model[70] = 1
        try await c.flush()
        try await c.delete(ids: [3, 100])
        for id: UInt64 in [3, 100] { model[id] = nil }
        let before = try await headManifest()
        XCTAssertEqual(before.segments.count, 4)

        let result = try await compactor().run()
        XCTAssertFalse(result.busy)
        XCTAssertEqual(result.done.count, 1)
        XCTAssertEqual(result.done[0].task.inputs.count, 4)
        XCTAssertEqual(result.retries, 0)
        let after = try await headManifest()
        XCTAssertEqual(after.segments.count, 1)
        XCTAssertEqual(after.walSequence, before.walSequence, "compaction never moves the WAL sequence")
        XCTAssertEqual(Set(after.obsolete.map(\.name)).isSuperset(of: before.segments.map(\.name)), true)
        XCTAssertTrue(after.segments[0].name.hasPrefix("seg-c"))

        // The writer picks the new head up and keeps writing and flushing on top of it.
        try await assertContent(c.snapshot().snapshot, model)
        try await c.insert(rows(200..<210))
        for id in UInt64(200)..<210 { model[id] = 0 }
        try await c.delete(ids: [4])
        model[4] = nil
        try await c.flush()
        try await assertContent(c.snapshot().snapshot, model)
        await c.close()
        // A reader with an empty cache sees the same rows.
        let reader = try await openReader(cache: "reader")
        try await assertContent(reader.snapshot().snapshot, model)
        await reader.close()
    }

    func testDeletesThatLandDuringTheTaskAreCarriedIntoTheOutput() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 2, perBatch: 40, model: &model)
        var k = compactor()
        let once = Mutex(false)
        // After the output is built, the writer deletes rows of both inputs and flushes: the
        // compactor's commit loses, and the retry carries the new bitmaps' rows.
        k.beforeCommit = { _ in
            guard once.withLock({ let first = !$0; $0 = true; return first }) else { return }
            _ = try? await c.delete(ids: [5, 45, 46])
            _ = try? await c.flush()
        }
        for id: UInt64 in [5, 45, 46] { model[id] = nil }
        let result = try await k.run()
        XCTAssertEqual(result.retries, 1)
        XCTAssertEqual(result.done.count, 1)
        XCTAssertEqual(result.done[0].deletesCarriedOver, 3)
        let after = try await headManifest()
        XCTAssertEqual(after.segments.count, 1)
        XCTAssertEqual(after.segments[0].deletedCount, 3)
        XCTAssertNotNil(after.segments[0].deleteFile)
        try await assertContent(c.snapshot().snapshot, model)
        await c.close()
        let reader = try await openReader(cache: "reader")
        try await assertContent(reader.snapshot().snapshot, model)
        await reader.close()
    }

    func testTwoCompactorsRacingCommitEachTaskOnce() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 4, perBatch: 30, model: &model)
        try await c.delete(ids: [7, 95])
        for id: UInt64 in [7, 95] { model[id] = nil }
        try await c.flush()
        // Both plan against the same head and build the same task before either commits.
        let barrier = Barrier(parties: 2)
        var a = compactor(cache: "a"), b = compactor(cache: "b")
        a.takesLease = false
        b.takesLease = false
        a.beforeCommit = { _ in await barrier.arrive() }
        b.beforeCommit = { _ in await barrier.arrive() }
        async let ra = a.run()
        async let rb = b.run()
        let (x, y) = try await (ra, rb)
        XCTAssertEqual(x.plan?.tasks.count, 1)
        XCTAssertEqual(y.plan?.tasks.count, 1)
        XCTAssertEqual(x.done.count + y.done.count, 1, "exactly one commit of the task")
        XCTAssertEqual(x.dropped.count + y.dropped.count, 1, "the loser drops it")
        XCTAssertEqual(x.retries + y.retries, 1)
        let after = try await headManifest()
        XCTAssertEqual(after.segments.count, 1)
        let winner = x.done.first ?? y.done.first
        XCTAssertEqual(after.segments[0].name, winner?.output)
        // The loser removed its output from the store.
        let segs = try await store.list(prefix: layout.segmentPrefix).map(\.key).filter { $0.contains("/seg-c") }
        XCTAssertEqual(segs, [layout.segmentObject(after.segments[0].name)])
        try await assertContent(c.snapshot().snapshot, model)
        await c.close()
        let reader = try await openReader(cache: "reader")
        try await assertContent(reader.snapshot().snapshot, model)
        await reader.close()
    }

    func testASecondRunFindsTheLeaseBusy() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 2, perBatch: 10, model: &model)
        let lease = try await metadata.grantLease(ttlSeconds: 30)
        try await metadata.put(layout.compactorKey, value: Array("other-compactor".utf8), lease: lease)
        let busy = try await compactor().run()
        XCTAssertTrue(busy.busy)
        XCTAssertEqual(busy.holder, "other-compactor")
        let unchanged = try await headManifest()
        XCTAssertEqual(unchanged.segments.count, 2, "nothing done")
        try await metadata.revoke(lease: lease)
        let done = try await compactor().run()
        XCTAssertFalse(done.busy)
        XCTAssertEqual(done.done.count, 1)
        let leaseKey = try await metadata.get(layout.compactorKey)
        XCTAssertNil(leaseKey, "the run gave its lease back")
        try await assertContent(c.snapshot().snapshot, model)
        await c.close()
    }

    func testPlanChangesNothing() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 2, perBatch: 10, model: &model)
        let before = try await objectKeys()
        let plan = try await compactor().plan()
        XCTAssertEqual(plan.tasks.count, 1)
        XCTAssertEqual(plan.tasks[0].kind, .merge)
        let after = try await objectKeys()
        XCTAssertEqual(after, before)
        await c.close()
    }

    func testACacheSmallerThanTheInputsStillCompacts() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 3, perBatch: 30, model: &model)
        // One byte of cache: every fetch ends in an eviction, which must spare what the task holds.
        var options = remoteOptions(cache: "tiny")
        options.cache.capacityBytes = 1
        let result = try await RemoteCompactor(layout: layout, store: store, metadata: metadata, options: options, policy: mergeEverything()).run()
        XCTAssertEqual(result.done.count, 1)
        XCTAssertGreaterThan(result.bytesFetched, 0)
        XCTAssertGreaterThan(result.bytesUploaded, 0)
        try await assertContent(c.snapshot().snapshot, model)
        await c.close()
    }
}
