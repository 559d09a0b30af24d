// Push and pull: a local collection pushed to the store and pulled back holds every row and
// payload (sealed rows, bitmaps, upserts and the rows still in its WAL); push refuses an existing
// collection and a damaged file; pull refuses a non-empty directory and pins what it copies.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataRemote

final class RemoteTransferTests: RemoteMaintenanceTestCase {
    func transfer() -> RemoteTransfer { RemoteTransfer(store: store, metadata: metadata, options: remoteOptions(cache: "transfer")) }

    /// A local collection with two segments, a bitmap, an upsert and unflushed writes.
    func makeLocal(_ path: String, model: inout Model) throws {
        let c = try StrataCollection.create(path: path, schema: Self.schema, options: options())
        try c.insert(rows(0..<60))
        try c.flush()
        try c.insert(rows(60..<100))
        try c.delete(ids: [5, 61])
        try c.flush()
        try c.upsert(rows([7, 70], version: 2))
        try c.insert(rows(100..<110))
        try c.delete(ids: [8, 105])
        for id in UInt64(0)..<110 { model[id] = 0 }
        for id: UInt64 in [5, 61, 8, 105] { model[id] = nil }
        model[7] = 2
        model[70] = 2
        c.close()
    }

    func testPushThenPullRoundTripsEveryRowAndPayload() async throws {
        var model: Model = [:]
        let local = tmpPath("local")
        try makeLocal(local, model: &model)
        let localManifest = try Manifest.read(directory: local)
        let pushed = try await transfer().push(localDirectory: local, to: layout)
        XCTAssertEqual(pushed.segments, 2)
        XCTAssertEqual(pushed.bitmaps, localManifest.segments.filter { $0.deleteFile != nil }.count)
        XCTAssertEqual(pushed.walRecords, 3, "the upsert, the insert and the delete")
        XCTAssertEqual(pushed.walObjects, 1)
        XCTAssertGreaterThan(pushed.bytes, 0)

        // The remote collection: a reader and a writer see every row.
        let reader = try await openReader(cache: "reader")
        try await assertContent(reader.snapshot().snapshot, model)
        await reader.close()

        let target = tmpPath("pulled")
        let pulled = try await transfer().pull(from: layout, to: target)
        XCTAssertEqual(pulled.segments, 2)
        XCTAssertEqual(pulled.walRecords, 3)
        XCTAssertEqual(pulled.generation, localManifest.generation)
        let pins = try await metadata.range(prefix: layout.pinPrefix)
        XCTAssertEqual(pins, [], "the pull's pin is gone")
        let copy = try StrataCollection.open(path: target, access: .readOnly)
        try assertContent(copy, model)
        let original = try StrataCollection.open(path: local, access: .readOnly)
        for id in model.keys.sorted() {
            let a = try XCTUnwrap(try original.get(id: id)), b = try XCTUnwrap(try copy.get(id: id))
            XCTAssertEqual(a.vector, b.vector)
            XCTAssertEqual(a.payload, b.payload)
        }
        // The copy is a collection like any other: writable, flushable.
        let writable = try StrataCollection.open(path: target, options: options())
        try writable.insert(rows(1000..<1005))
        model.merge((1000..<1005).map { ($0, Int64(0)) }) { $1 }
        try writable.flush()
        try assertContent(writable, model)
        writable.close()
    }

    func testPushAfterRemoteWritesAndPullSeesThem() async throws {
        var model: Model = [:]
        let local = tmpPath("local")
        try makeLocal(local, model: &model)
        _ = try await transfer().push(localDirectory: local, to: layout)
        // A remote writer replays the pushed WAL object, writes more, flushes part of it.
        let c = try await RemoteCollection.open(layout: layout, store: store, metadata: metadata, options: remoteOptions(cache: "writer"))
        try await c.insert(rows(200..<220))
        try await c.flush()
        try await c.delete(ids: [201, 0])
        try await c.insert(rows(300..<303))
        for id in UInt64(200)..<220 { model[id] = 0 }
        for id in UInt64(300)..<303 { model[id] = 0 }
        model[201] = nil
        model[0] = nil
        let target = tmpPath("pulled")
        let pulled = try await transfer().pull(from: layout, to: target)
        XCTAssertGreaterThan(pulled.walObjects, 0)
        try assertContent(try StrataCollection.open(path: target, access: .readOnly), model)
        await c.close()
    }

    func testPushRefusesAnExistingCollection() async throws {
        var model: Model = [:]
        let local = tmpPath("local")
        try makeLocal(local, model: &model)
        _ = try await transfer().push(localDirectory: local, to: layout)
        await assertThrowsStrataError(.alreadyExists, "pushed over an existing collection") {
            try await transfer().push(localDirectory: local, to: layout)
        }
    }

    func testPushRefusesADamagedSegment() async throws {
        var model: Model = [:]
        let local = tmpPath("local")
        try makeLocal(local, model: &model)
        let manifest = try Manifest.read(directory: local)
        let path = "\(local)/\(manifest.segments[0].name)"
        // Flip one byte of its vectors, keeping its size.
        let vectors = try XCTUnwrap(try Segment.open(path: path).sections.first { $0.kind == .vectors })
        var bytes = try FileSystem.readAll(path)
        bytes[Int(vectors.offset) + 13] ^= 0x40
        try publishAtomically(bytes, to: path)
        let e = await assertThrowsStrataError(.checksumMismatch, "pushed a damaged segment") {
            try await transfer().push(localDirectory: local, to: layout)
        }
        XCTAssertTrue(e?.message.contains("refusing to push") ?? false, "\(String(describing: e))")
        XCTAssertEqual(e?.path, path)
        let head = try await metadata.get(layout.headKey)
        XCTAssertNil(head, "nothing committed")
        let keys = try await objectKeys()
        XCTAssertFalse(keys.contains(layout.segmentObject(manifest.segments[0].name)))
    }

    func testPullRefusesANonEmptyDirectory() async throws {
        var model: Model = [:]
        let local = tmpPath("local")
        try makeLocal(local, model: &model)
        _ = try await transfer().push(localDirectory: local, to: layout)
        let target = tmpPath("target")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: target + "/notes.txt", contents: Data("keep".utf8)))
        await assertThrowsStrataError(.alreadyExists, "pulled into a non-empty directory") {
            try await transfer().pull(from: layout, to: target)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target), ["notes.txt"])
    }

    func testPullOfAMissingCollectionIsNotFoundAndLeavesNothing() async throws {
        let target = tmpPath("target")
        await assertThrowsStrataError(.notFound, "pulled a collection that does not exist") {
            try await transfer().pull(from: layout, to: target)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target), [])
    }
}
