// Sparse vectors in a remote collection (real SeaweedFS and etcd; skipped without them): written
// through WAL objects (format 3.0 only for an object that holds a sparse vector), searched in the
// buffer, after a flush, by a reader with an empty cache, after the writer reopens (WAL objects
// replayed) and after the remote compactor merged the segments, always equal to a brute force over
// the live rows, ties by id.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataRemote

final class RemoteSparseTests: RemoteMaintenanceTestCase {
    func assertAllQueries(_ c: RemoteCollection, _ model: SparseModel, _ stage: String,
                          file: StaticString = #filePath, line: UInt = #line) async throws {
        let filter = Filter(must: [.match(key: "ver", value: .int(1))])
        for n in UInt64(0)..<16 {
            let q = Self.sparseQuery(n)
            for k in [1, 9, 10_000] {
                let hits = try await c.sparseSearch(query: q, k: k)
                assertSparseMatches(hits, sparseReference(model, query: q, k: k), "\(stage): query \(n), k \(k)", file: file, line: line)
            }
            let filtered = try await c.sparseSearch(query: q, k: 10, filter: filter)
            assertSparseMatches(filtered, sparseReference(model, query: q, k: 10) { $1 == 1 }, "\(stage): query \(n), filtered",
                                file: file, line: line)
        }
    }

    /// The major of every WAL object, by sequence.
    func walObjectMajors() async throws -> [UInt64: Int] {
        var majors: [UInt64: Int] = [:]
        for info in try await store.list(prefix: layout.walPrefix) {
            let b = try await store.get(info.key)
            let name = info.key.split(separator: "/").last.map(String.init) ?? ""
            guard let sequence = UInt64(name.replacingOccurrences(of: ".log", with: "")) else { continue }
            majors[sequence] = Int(b[8]) | Int(b[9]) << 8
        }
        return majors
    }

    func testSparseSearchThroughWALObjectsFlushReadersReopenAndCompaction() async throws {
        var c = try await createRemote()
        var model: SparseModel = [:]
        try await c.insert(sparseRows(0..<20, withSparse: false))
        for id in UInt64(0)..<20 { model[id] = (0, false) }
        let dense = try await walObjectMajors()
        XCTAssertEqual(Set(dense.values), [2], "objects without sparse vectors stay 2.0: \(dense)")
        try await c.insert(sparseRows(20..<150))
        for id in UInt64(20)..<150 { model[id] = (0, true) }
        let majors = try await walObjectMajors()
        XCTAssertEqual(majors[try XCTUnwrap(majors.keys.max())], 3, "the object holding sparse vectors is 3.0")
        try await assertAllQueries(c, model, "buffer")

        try await c.upsert(sparseRows(Array(0..<10) + Array(20..<30), version: 1))
        for id in Array(UInt64(0)..<10) + Array(20..<30) { model[id] = (1, true) }
        try await c.upsert(sparseRows(30..<40, version: 1, withSparse: false))
        for id in UInt64(30)..<40 { model[id] = (1, false) }
        try await c.delete(ids: Array(40..<50))
        for id in UInt64(40)..<50 { model[id] = nil }
        try await c.flush()
        try await assertAllQueries(c, model, "one segment")

        try await c.upsert(sparseRows(60..<80, version: 1))
        for id in UInt64(60)..<80 { model[id] = (1, true) }
        try await c.delete(ids: [80, 81])
        for id: UInt64 in [80, 81] { model[id] = nil }
        try await c.insert(sparseRows(150..<190))
        for id in UInt64(150)..<190 { model[id] = (0, true) }
        try await assertAllQueries(c, model, "segment + WAL objects")
        let reader = try await openReader(cache: "reader")
        try await assertAllQueries(reader, model, "reader with an empty cache")
        await reader.close()

        // The writer reopens: the WAL objects after the head are replayed with their sparse vectors.
        await c.close()
        c = try await RemoteCollection.open(layout: layout, access: .readWrite, store: store, metadata: metadata, options: remoteOptions())
        try await assertAllQueries(c, model, "reopened")
        try await c.flush()
        try await c.upsert(sparseRows(0..<5, version: 2))
        for id in UInt64(0)..<5 { model[id] = (2, true) }
        try await c.flush()
        let segments = try await headManifest().segments.count
        XCTAssertEqual(segments, 3)

        let result = try await RemoteCompactor(layout: layout, store: store, metadata: metadata, options: remoteOptions(cache: "compactor"),
                                               policy: mergeEverything()).run()
        XCTAssertEqual(result.done.count, 1)
        let compacted = try await headManifest().segments.count
        XCTAssertEqual(compacted, 1)
        try await assertAllQueries(c, model, "compacted (writer)")
        let after = try await openReader(cache: "after")
        try await assertAllQueries(after, model, "compacted (reader)")
        await after.close()
        await c.close()
    }

    func testBadSparseInputIsRefusedBeforeAnyWALObject() async throws {
        let c = try await createRemote()
        try await c.insert(sparseRows(0..<3))
        let before = try await objectKeys()
        var bad = rows([10])
        bad[0].sparse = SparseVector(indices: [1, 2], values: [.nan, 1])
        await assertThrowsStrataError(.nonFiniteValue) { try await c.upsert(bad) }
        bad[0].sparse = SparseVector(indices: [1, 2, 3], values: [1, 2])
        await assertThrowsStrataError(.invalidArgument) { try await c.insert(bad) }
        bad[0].sparse = SparseVector(indices: (0..<70_000).map { UInt32($0) }, values: [Float](repeating: 0.5, count: 70_000))
        await assertThrowsStrataError(.invalidArgument) { try await c.insert(bad) }
        let after = try await objectKeys()
        XCTAssertEqual(after, before, "nothing was written")
        let count = try await c.count()
        XCTAssertEqual(count, 3)
        await c.close()
    }
}
