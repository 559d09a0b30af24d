// Schema growth of a remote collection (against the real SeaweedFS and etcd): the writer appends
// nullable columns with rows sealed and in WAL objects; a reader picks the new schema up on refresh;
// rows written before and after read right (the model and checks of SchemaGrowthTests); a reopened
// writer replays WAL objects written after the change; compaction merges segments of both widths;
// verify accepts collection.json's creation schema as a prefix of the manifest's.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataRemote

final class RemoteSchemaGrowthTests: RemoteMaintenanceTestCase {
    func testWriterGrowsTheSchemaAndReadersFollow() async throws {
        let c = try await createRemote()
        var model: Growth.Rows = [:]
        try await c.insert((0..<120).map { Growth.oldRow($0) })
        try await c.flush()                                           // a segment of 2 columns
        try await c.insert((120..<160).map { Growth.oldRow($0) })      // in WAL objects
        for id in UInt64(0)..<160 { model[id] = Growth.record(Growth.oldRow(id), version: 0) }
        let deleted = try await c.delete(ids: [3, 130])
        XCTAssertEqual(deleted, 2)
        model[3] = nil; model[130] = nil
        let reader = try await openReader(cache: "reader")
        try checkGrown(try await reader.snapshot().snapshot, model)
        let headBefore = try await headManifest()

        try await c.addColumns(Growth.added)
        XCTAssertEqual(c.schema.columns, Self.schema.columns + Growth.added)
        let grown = try await headManifest()
        XCTAssertEqual(grown.generation, headBefore.generation + 1)
        XCTAssertEqual(grown.schema, c.schema)
        XCTAssertEqual(grown.segments.map { $0.columns(of: grown.schema) }, [2, 2])
        XCTAssertGreaterThan(grown.walSequence, headBefore.walSequence)
        try checkGrown(try await c.snapshot().snapshot, model)

        // Rows using the new columns: upserts of sealed ids, new ids; WAL objects after the new head.
        try await c.upsert([10, 125].map { Growth.newRow($0) })
        try await c.insert((160..<240).map { Growth.newRow($0) })
        try await c.insert([Growth.oldRow(240)])
        for id: UInt64 in [10, 125] + Array(160..<240) { model[id] = Growth.record(Growth.newRow(id), version: 5) }
        model[240] = Growth.record(Growth.oldRow(240), version: 0)
        try checkGrown(try await c.snapshot().snapshot, model)
        XCTAssertEqual(reader.schema.columns.count, 2, "a reader keeps its view until it refreshes")
        let seen = try await reader.snapshot().snapshot
        XCTAssertEqual(reader.schema.columns.count, 5)
        try checkGrown(seen, model)

        // Sealed at the new width, then more WAL objects.
        try await c.flush()
        try await c.insert((250..<270).map { Growth.newRow($0) })
        for id in UInt64(250)..<270 { model[id] = Growth.record(Growth.newRow(id), version: 5) }
        try checkGrown(try await reader.snapshot().snapshot, model)

        // Adding again commits nothing; bad requests fail before anything is committed.
        let g = try await headManifest().generation
        try await c.addColumns(Growth.added)
        await assertThrowsStrataError(.invalidArgument) { try await c.addColumns([ColumnSpec(name: "x", type: .int64)]) }
        await assertThrowsStrataError(.typeMismatch) { try await c.addColumns([ColumnSpec(name: "score", type: .int64, nullable: true)]) }
        await assertThrowsStrataError(.invalidArgument) { try await reader.addColumns([ColumnSpec(name: "y", type: .bool, nullable: true)]) }
        let unchanged = try await headManifest().generation
        XCTAssertEqual(unchanged, g)

        // A reopened writer replays the WAL objects after the head with the grown schema.
        await c.close()
        let w = try await RemoteCollection.open(layout: layout, store: store, metadata: metadata, options: remoteOptions(cache: "cache2"))
        XCTAssertEqual(w.schema.columns.count, 5)
        try checkGrown(try await w.snapshot().snapshot, model)

        // collection.json keeps the creation schema; verify accepts it as a prefix of the manifest's.
        let verified = try await RemoteCollection.verify(layout: layout, store: store, metadata: metadata, options: remoteOptions(cache: "verify"))
        XCTAssertTrue(verified.report.isSound, "\(verified.report.problems)")

        // Compaction merges the segments of both widths into one of the manifest's width.
        let result = try await RemoteCompactor(layout: layout, store: store, metadata: metadata, options: remoteOptions(cache: "compactor"),
                                               policy: mergeEverything()).run()
        XCTAssertEqual(result.done.count, 1, "\(result)")
        let compacted = try await headManifest()
        XCTAssertEqual(compacted.segments.count, 1)
        XCTAssertFalse(compacted.hasNarrowSegments)
        try checkGrown(try await w.snapshot().snapshot, model)
        try checkGrown(try await reader.snapshot().snapshot, model)
        try await w.insert([Growth.newRow(300)])
        model[300] = Growth.record(Growth.newRow(300), version: 5)
        try await w.flush()
        try checkGrown(try await reader.snapshot().snapshot, model)
        await w.close()
        await reader.close()
    }

    /// Writes queued around a schema change: one checked against the old schema and committed after
    /// the change gets nulls in the new columns; every acknowledged row is there once.
    func testWritesRacingTheChangeAreKept() async throws {
        let c = try await createRemote()
        var model: Growth.Rows = [:]
        try await c.insert((0..<20).map { Growth.oldRow($0) })
        for id in UInt64(0)..<20 { model[id] = Growth.record(Growth.oldRow(id), version: 0) }
        async let a: Void = c.insert((20..<40).map { Growth.oldRow($0) })
        async let b: Void = c.addColumns([Growth.added[0]])
        async let d: Void = c.insert((40..<60).map { Growth.oldRow($0) })
        _ = try await (a, b, d)
        for id in UInt64(20)..<60 { model[id] = Growth.record(Growth.oldRow(id), version: 0) }
        try await c.addColumns(Growth.added)
        try await c.insert((60..<70).map { Growth.newRow($0) })
        for id in UInt64(60)..<70 { model[id] = Growth.record(Growth.newRow(id), version: 5) }
        try checkGrown(try await c.snapshot().snapshot, model)
        await c.close()
        let w = try await RemoteCollection.open(layout: layout, store: store, metadata: metadata, options: remoteOptions(cache: "cache2"))
        try checkGrown(try await w.snapshot().snapshot, model)
        await w.close()
    }
}
