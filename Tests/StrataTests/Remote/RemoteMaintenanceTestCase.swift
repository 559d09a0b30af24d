// Shared set-up of the remote maintenance tests (compaction, gc, push and pull): the stores, a
// fresh collection prefix per test, a cache directory, and content checks against a model.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataRemote

class RemoteMaintenanceTestCase: CollectionTestCase {
    var s3: S3Client!
    var etcd: EtcdClient!
    var store: (any ObjectStore)!
    var metadata: (any MetadataStore)!
    var layout: RemoteLayout!

    /// The real SeaweedFS and etcd (tools/services.sh); skips when they are not configured.
    override func setUp() async throws {
        try await super.setUp()
        let env = try RemoteTestEnvironment.current()
        s3 = S3Client(configuration: try S3Configuration(endpoint: env.s3Endpoint, bucket: env.bucket, region: env.region,
                                                         accessKey: env.accessKey, secretKey: env.secretKey))
        etcd = try EtcdClient(endpoint: env.etcdEndpoint)
        store = s3
        metadata = etcd
        layout = RemoteLayout(bucket: env.bucket, prefix: env.uniquePrefix(name))
    }

    override func tearDown() async throws {
        try? await s3?.shutdown()
        try? await etcd?.shutdown()
        try await super.tearDown()
    }

    /// Options with a cache of its own (`name`) in the test's temp directory.
    func remoteOptions(cache name: String = "cache", flushRows: Int = 1_000_000) -> RemoteOptions {
        var o = RemoteOptions(cache: SegmentCacheOptions(directory: tmpPath(name)))
        o.collection = options(flushRows: flushRows)
        o.writerLeaseSeconds = 30
        o.pinLeaseSeconds = 30
        o.refreshIntervalSeconds = 0
        return o
    }

    /// A policy that merges any two segments, without indexes.
    func mergeEverything() -> CompactionPolicy {
        var p = CompactionPolicy()
        p.index = nil
        p.tierBaseRows = 1_000_000
        p.mergeFactor = 2
        return p
    }

    func createRemote(cache: String = "cache") async throws -> RemoteCollection {
        try await RemoteCollection.create(layout: layout, schema: Self.schema, store: store, metadata: metadata, options: remoteOptions(cache: cache))
    }

    /// A reader with a cache of its own (nothing cached: every file is fetched from the store).
    func openReader(cache: String) async throws -> RemoteCollection {
        try await RemoteCollection.open(layout: layout, access: .readOnly, store: store, metadata: metadata, options: remoteOptions(cache: cache))
    }

    /// The head's manifest.
    func headManifest() async throws -> Manifest {
        try await RemoteLoader.current(store: store, metadata: metadata, layout: layout).manifest
    }

    /// Every key under the collection's prefix.
    func objectKeys() async throws -> Set<String> {
        Set(try await store.list(prefix: layout.root).map(\.key))
    }

    /// Asserts that `body` throws a `StrataError` with `code`; returns the error.
    @discardableResult
    func assertThrowsStrataError<T>(_ code: StrataError.Code, _ message: String = "", file: StaticString = #filePath, line: UInt = #line,
                                    _ body: () async throws -> T) async -> StrataError? {
        do {
            let value = try await body()
            XCTFail("expected StrataError.\(code), got a result: \(value) \(message)", file: file, line: line)
        } catch {
            guard let e = error as? StrataError else {
                XCTFail("expected StrataError.\(code), got \(error) \(message)", file: file, line: line)
                return nil
            }
            XCTAssertEqual(e.code, code, "\(e) \(message)", file: file, line: line)
            return e
        }
        return nil
    }

    /// Checks a snapshot against the model: every id once, with its version's vector and payload.
    func assertContent(_ snap: CollectionSnapshot, _ model: Model, file: StaticString = #filePath, line: UInt = #line) throws {
        var seen: Model = [:]
        var duplicates: [UInt64] = []
        try snap.forEachRow { r in
            guard case .int64(let v) = r.payload[0] else { XCTFail("bad payload \(r.payload)", file: file, line: line); return }
            if seen.updateValue(v, forKey: r.id) != nil { duplicates.append(r.id) }
            XCTAssertEqual(r.vector, self.vector(r.id, v), "vector of \(r.id)", file: file, line: line)
            let tag: PayloadValue = r.id % 3 == 0 ? .null : .string("t\(r.id)")
            XCTAssertEqual(r.payload[1], tag, "tag of \(r.id)", file: file, line: line)
        }
        XCTAssertEqual(duplicates, [], "ids live twice", file: file, line: line)
        XCTAssertEqual(seen.count, model.count, "row count", file: file, line: line)
        let wrong = model.filter { seen[$0.key] != $0.value }.prefix(5)
        XCTAssertTrue(wrong.isEmpty, "mismatching ids (id: want) \(Array(wrong)), got \(wrong.map { seen[$0.key] as Any })", file: file, line: line)
        XCTAssertEqual(snap.count, model.count, "count", file: file, line: line)
    }

    /// Writes `batches` segments of `perBatch` rows each (ids from `first`), each flushed, into `c`.
    func fillSegments(_ c: RemoteCollection, batches: Int, perBatch: Int, first: UInt64 = 0, model: inout Model) async throws {
        for b in 0..<batches {
            let lo = first + UInt64(b * perBatch)
            try await c.insert(rows(lo..<(lo + UInt64(perBatch))))
            for id in lo..<(lo + UInt64(perBatch)) { model[id] = 0 }
            try await c.flush()
        }
    }
}

/// Lets `parties` tasks wait until all of them have arrived.
actor Barrier {
    private let parties: Int
    private var arrived = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(parties: Int) { self.parties = parties }

    func arrive() async {
        arrived += 1
        if arrived >= parties {
            for w in waiting { w.resume() }
            waiting = []
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }
}
