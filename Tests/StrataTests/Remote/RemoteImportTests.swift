// Bulk import into a remote collection (StrataRemote/Collection/RemoteCollection+Import.swift), on
// the real SeaweedFS and etcd (skipped without them): the buffer is flushed first, the imported
// segments are appended by one commit, readers with an empty cache and a reopened writer see every
// row once; repeated ids, a failing fill and a lost writer lease commit nothing and leave no cache
// files; an import that lost its commit to a compactor appends on top of the compaction.
import Foundation
import Synchronization
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataRemote

final class RemoteImportTests: RemoteMaintenanceTestCase {
    /// Fills segment k with the ids of `segments[k]` (version `version`), as `rows` makes them.
    func filler(_ segments: [[UInt64]], version: Int64 = 0, failAt: (segment: Int, row: Int)? = nil)
        -> @Sendable (Int, SegmentWriter) throws(StrataError) -> Void {
        let schema = Self.schema
        return { (k, writer) throws(StrataError) in
            for (r, row) in Self.rows(segments[k], version: version).enumerated() {
                if let failAt, failAt.segment == k, failAt.row == r { throw StrataError(.io, "injected failure") }
                let values = schema.columns.map { row.payload[$0.name] ?? .null }
                try row.vector.withUnsafeBufferPointer { (p) throws(StrataError) in try writer.append(id: row.id, vector: p, values: values) }
            }
        }
    }

    func importSegments(_ c: RemoteCollection, _ segments: [[UInt64]], threads: Int = 2,
                        failAt: (segment: Int, row: Int)? = nil) async throws -> StrataCollection.ImportSummary {
        try await c.importSegments(count: segments.count, threads: threads, writerOptions: c.options.collection.segmentWriterOptions,
                                   describe: { k, r in "row \(r) of segment \(k)" }, fill: filler(segments, failAt: failAt))
    }

    /// The `seg-*` files in a cache directory.
    func cachedSegments(_ cache: String) -> Set<String> {
        let dirs = (try? FileManager.default.subpathsOfDirectory(atPath: tmpPath(cache))) ?? []
        return Set(dirs.filter { $0.split(separator: "/").last?.hasPrefix("seg-") == true })
    }

    func testImportFlushesTheBufferAndAppendsEverySegmentInOneCommit() async throws {
        var c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 1, perBatch: 40, model: &model)
        try await c.insert(rows(40..<60))                    // buffered: flushed before the import
        for id in UInt64(40)..<60 { model[id] = 0 }
        let before = try await headManifest()
        let parts: [[UInt64]] = [Array(1_000..<1_300), Array(2_000..<2_250), Array(3_000..<3_001)]
        let summary = try await importSegments(c, parts)
        for id in parts.joined() { model[id] = 0 }
        XCTAssertEqual(summary.rows, 551)
        XCTAssertEqual(summary.segments.count, 3)
        let after = try await headManifest()
        XCTAssertEqual(after.generation, before.generation + 2, "one commit for the flush, one for all three segments")
        XCTAssertEqual(after.generation, summary.generation)
        XCTAssertEqual(after.segments.map(\.name).suffix(3), summary.segments[...], "the imported segments come last, in input order")
        XCTAssertEqual(after.segments.count, 5)
        XCTAssertEqual(after.walSequence, before.walSequence + 1, "the WAL object of the buffered rows is behind the head")
        for name in summary.segments {
            let exists = try await store.head(layout.segmentObject(name)) != nil
            XCTAssertTrue(exists, "\(name) is in the store")
        }
        try await assertContent(c.snapshot().snapshot, model)
        let hits = try await c.search(query: vector(2_100, 0), options: SearchOptions(k: 1))
        XCTAssertEqual(hits.first?.id, 2_100)

        let reader = try await openReader(cache: "reader")
        try await assertContent(reader.snapshot().snapshot, model)
        await reader.close()
        // Writes after the import, then a reopen that replays them: nothing twice, nothing lost.
        try await c.insert(rows(60..<70))
        for id in UInt64(60)..<70 { model[id] = 0 }
        await c.close()
        c = try await RemoteCollection.open(layout: layout, access: .readWrite, store: store, metadata: metadata, options: remoteOptions())
        try await assertContent(c.snapshot().snapshot, model)
        await c.close()
    }

    func testRepeatedIdsAFailingFillAndAnEmptyImportCommitNothing() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 1, perBatch: 50, model: &model)
        let before = try await headManifest()
        let cachedBefore = cachedSegments("cache")
        // An id that is live in the collection, one given twice by the import, a fill that fails.
        let live = await assertThrowsStrataError(.duplicateId) { try await self.importSegments(c, [Array(100..<120), [130, 7]]) }
        XCTAssertTrue(live?.message.contains("row 1 of segment 1") == true, live?.message ?? "")
        let twice = await assertThrowsStrataError(.duplicateId) { try await self.importSegments(c, [Array(100..<120), Array(110..<111)]) }
        XCTAssertTrue(twice?.message.contains("id 110") == true, twice?.message ?? "")
        await assertThrowsStrataError(.io) { try await self.importSegments(c, [Array(100..<120), Array(200..<220)], failAt: (1, 10)) }
        let empty = try await importSegments(c, [])
        XCTAssertEqual(empty.rows, 0)
        XCTAssertEqual(empty.generation, before.generation)
        let after = try await headManifest()
        XCTAssertEqual(after, before, "nothing was committed")
        XCTAssertEqual(cachedSegments("cache"), cachedBefore, "the failed imports' files are gone from the cache")
        try await assertContent(c.snapshot().snapshot, model)
        // The writer still works after the refused imports.
        _ = try await importSegments(c, [Array(100..<120)])
        for id in UInt64(100)..<120 { model[id] = 0 }
        try await assertContent(c.snapshot().snapshot, model)
        await c.close()
    }

    func testAReadOnlyHandleRefusesAndAFencedWriterCommitsNothing() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 1, perBatch: 30, model: &model)
        let reader = try await openReader(cache: "reader")
        await assertThrowsStrataError(.invalidArgument) { try await self.importSegments(reader, [Array(100..<110)]) }
        await reader.close()
        // Another process takes the writer key (as after this writer's lease lapsed): the import
        // must not commit.
        _ = try await metadata.put(layout.writerKey, value: Array("someone-else".utf8), lease: 0)
        let before = try await headManifest()
        let e = await assertThrowsStrataError(.busy) { try await self.importSegments(c, [Array(100..<110)]) }
        XCTAssertNotNil(e)
        let after = try await headManifest()
        XCTAssertEqual(after, before)
        await c.close()
    }

    func testAnImportWhoseCommitMayHaveLandedRefusesFurtherWrites() async throws {
        // etcd carries the commit out, its answer is lost and the read-back fails too.
        let faulty = FaultyMetadataStore(metadata)
        var c = try await RemoteCollection.create(layout: layout, schema: Self.schema, store: store, metadata: faulty, options: remoteOptions())
        var model: Model = [:]
        try await fillSegments(c, batches: 1, perBatch: 20, model: &model)
        let parts: [[UInt64]] = [Array(100..<150)]
        let fill = filler(parts)
        let e = await assertThrowsStrataError(.io) {
            try await c.importSegments(count: 1, writerOptions: c.options.collection.segmentWriterOptions,
                                       describe: { k, r in "row \(r) of segment \(k)" }) { (k, writer) throws(StrataError) in
                faulty.inject(.loseWriteAnswerThenDown)     // the WAL and the flush are done: the next etcd write is the commit
                try fill(k, writer)
            }
        }
        XCTAssertTrue(e?.message.contains("may or may not have landed") == true, e?.message ?? "")
        faulty.inject(.none)
        // The writer refuses what could commit the same ids twice: the same import, an insert.
        await assertThrowsStrataError(.io) { try await self.importSegments(c, parts) }
        await assertThrowsStrataError(.io) { try await c.insert(self.rows(100..<101)) }
        await c.close()
        // The commit did land: a reopened writer sees every row once, and a second import of
        // the same ids is refused.
        for id in UInt64(100)..<150 { model[id] = 0 }
        c = try await RemoteCollection.open(layout: layout, access: .readWrite, store: store, metadata: metadata, options: remoteOptions())
        try await assertContent(c.snapshot().snapshot, model)
        await assertThrowsStrataError(.duplicateId) { try await self.importSegments(c, parts) }
        await c.close()
    }

    func testAnImportAppendsOnTopOfACompactionThatCommittedFirst() async throws {
        let c = try await createRemote()
        var model: Model = [:]
        try await fillSegments(c, batches: 2, perBatch: 40, model: &model)
        // The compactor commits while the import builds its segments (the fill waits for it).
        let compacted = CompactedFlag()
        let layout = self.layout!, store = self.store!, metadata = self.metadata!
        let compactorOptions = remoteOptions(cache: "compactor")
        let policy = mergeEverything()
        let fill = filler([Array(500..<700)])
        let summary = try await c.importSegments(count: 1, writerOptions: c.options.collection.segmentWriterOptions,
                                                 describe: { k, r in "row \(r) of segment \(k)" }) { (k, writer) throws(StrataError) in
            let done = DispatchSemaphore(value: 0)
            Task {
                let r = try? await RemoteCompactor(layout: layout, store: store, metadata: metadata, options: compactorOptions, policy: policy).run()
                compacted.value.withLock { $0 = r?.done.count == 1 }
                done.signal()
            }
            done.wait()
            try fill(k, writer)
        }
        for id in UInt64(500)..<700 { model[id] = 0 }
        XCTAssertTrue(compacted.value.withLock { $0 }, "the compactor committed during the import")
        let head = try await headManifest()
        XCTAssertEqual(head.segments.count, 2, "the merged segment and the imported one")
        XCTAssertEqual(head.segments.last?.name, summary.segments.first)
        try await assertContent(c.snapshot().snapshot, model)
        let reader = try await openReader(cache: "reader")
        try await assertContent(reader.snapshot().snapshot, model)
        await reader.close()
        await c.close()
    }
}

/// Whether the compactor of a test committed (set from the task that ran it).
private final class CompactedFlag: Sendable {
    let value = Mutex(false)
}
