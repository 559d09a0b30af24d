// The remote collection against the real SeaweedFS and etcd (tools/services.sh): writes
// acknowledged through WAL objects, flush through the head transaction, one writer with fencing,
// readers, and the failures of the store and etcd (through the fault-injection wrappers around the
// real clients).
import Foundation
import XCTest
@testable import Strata
@testable import StrataRemote
import StrataFormat
import StrataTestSupport

/// Clients, a fresh collection prefix and a cache directory for one test.
struct RemoteFixture {
    let s3: S3Client
    let etcd: EtcdClient
    let store: FaultyObjectStore
    let metadata: FaultyMetadataStore
    let layout: RemoteLayout
    let cacheRoot: String

    init(_ name: String) throws {
        let env = try RemoteTestEnvironment.current()
        s3 = S3Client(configuration: try S3Configuration(endpoint: env.s3Endpoint, bucket: env.bucket, region: env.region,
                                                         accessKey: env.accessKey, secretKey: env.secretKey))
        etcd = try EtcdClient(endpoint: env.etcdEndpoint)
        store = FaultyObjectStore(s3)
        metadata = FaultyMetadataStore(etcd)
        layout = RemoteLayout(bucket: env.bucket, prefix: env.uniquePrefix(name))
        cacheRoot = NSTemporaryDirectory() + "strata-cache-" + UUID().uuidString
    }

    /// Options with a cache of its own (`cache` names a subdirectory, so that two handles in one
    /// test can act as two machines).
    func options(cache: String = "a", flushRows: Int = 100_000, leaseSeconds: Int = 10) -> RemoteOptions {
        var o = RemoteOptions(cache: SegmentCacheOptions(directory: cacheRoot + "/" + cache))
        o.collection.index = nil
        o.collection.flushThresholdRows = flushRows
        o.writerLeaseSeconds = leaseSeconds
        o.refreshIntervalSeconds = 0
        return o
    }

    func create(_ schema: SegmentSchema = RemoteFixture.schema, options: RemoteOptions? = nil) async throws -> RemoteCollection {
        try await RemoteCollection.create(layout: layout, schema: schema, store: store, metadata: metadata, options: options ?? self.options())
    }

    func open(_ access: CollectionAccess = .readWrite, cache: String = "a") async throws -> RemoteCollection {
        try await RemoteCollection.open(layout: layout, access: access, store: store, metadata: metadata, options: options(cache: cache))
    }

    func shutdown() async {
        try? await s3.shutdown()
        try? await etcd.shutdown()
        try? FileManager.default.removeItem(atPath: cacheRoot)
    }

    static let schema = SegmentSchema(dimension: 8, metric: .l2, columns: [ColumnSpec(name: "tag", type: .string, nullable: true)])

    static func row(_ id: UInt64) -> SegmentRow {
        var g = SplitMix64(seed: id)
        return SegmentRow(id: id, vector: (0..<8).map { _ in Float(g.next() % 10_000) / 10_000 }, payload: ["tag": .string("t\(id % 7)")])
    }
}

final class RemoteCollectionTests: XCTestCase {
    /// The ids a collection holds, by scanning a snapshot.
    private func ids(_ c: RemoteCollection) async throws -> Set<UInt64> {
        var out = Set<UInt64>()
        try await c.snapshot().snapshot.forEachRow { out.insert($0.id) }
        return out
    }

    func testWritesAreAcknowledgedInTheStoreAndSurviveReopenOnAnotherMachine() async throws {
        let f = try RemoteFixture("write")
        defer { Task { await f.shutdown() } }
        let c = try await f.create()
        try await c.insert((1...50).map(RemoteFixture.row))
        try await c.upsert([RemoteFixture.row(3)])
        let deleted = try await c.delete(ids: [4, 5, 999])
        XCTAssertEqual(deleted, 2)
        let walObjects = try await f.s3.list(prefix: f.layout.walPrefix)
        XCTAssertGreaterThanOrEqual(walObjects.count, 3, "every acknowledged batch is a WAL object in the store")
        let v2 = try await c.count()
        XCTAssertEqual(v2, 48)
        // Exact search over the buffer finds a row's own vector first.
        let hits = try await c.search(query: RemoteFixture.row(17).vector, options: SearchOptions(k: 3))
        XCTAssertEqual(hits.first?.id, 17)
        await c.close()
        // Another machine (empty cache) replays the WAL objects.
        let d = try await f.open(cache: "b")
        let v3 = try await ids(d)
        XCTAssertEqual(v3, Set(1...50).subtracting([4, 5]))
        await XCTAssertThrowsErrorAsync(try await d.insert([RemoteFixture.row(1)])) { XCTAssertEqual(($0 as? StrataError)?.code, .duplicateId) }
        let summary = try await d.flush()
        XCTAssertEqual(summary?.rows, 48)
        try await d.delete(ids: [6])
        try await d.flush()
        await d.close()
        // A third machine loads the segment and its delete bitmap from the store.
        let e = try await f.open(.readOnly, cache: "c")
        let v4 = try await ids(e)
        XCTAssertEqual(v4, Set(1...50).subtracting([4, 5, 6]))
        let v5 = try await e.get(id: 3)?.payload
        XCTAssertEqual(v5, [.string("t3")])
        await e.close()
    }

    func testConcurrentWritesShareWALObjects() async throws {
        let f = try RemoteFixture("group")
        defer { Task { await f.shutdown() } }
        let c = try await f.create()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<64 { group.addTask { try await c.insert([RemoteFixture.row(UInt64(1000 + i))]) } }
            try await group.waitForAll()
        }
        let walObjects = try await f.s3.list(prefix: f.layout.walPrefix)
        // One fence object from open plus the groups: fewer objects than writes.
        XCTAssertLessThan(walObjects.count, 64 + 1)
        let v6 = try await c.count()
        XCTAssertEqual(v6, 64)
        await c.close()
        let d = try await f.open(.readOnly, cache: "b")
        let v7 = try await ids(d)
        XCTAssertEqual(v7, Set((0..<64).map { UInt64(1000 + $0) }))
        await d.close()
    }

    func testOneWriterAtATimeAndAFencedWriterLosesNoAcknowledgedWrite() async throws {
        let f = try RemoteFixture("fence")
        defer { Task { await f.shutdown() } }
        let a = try await f.create()
        try await a.insert((1...10).map(RemoteFixture.row))
        // A second writer is refused while the first one's lease lives.
        await XCTAssertThrowsErrorAsync(try await f.open(cache: "b")) { error in

            guard let e = error as? StrataError else { return XCTFail("\(error)") }

            XCTAssertEqual(e.code, .busy)

        }
        // The first writer's lease ends without it knowing (as when it hangs past its TTL).
        try await f.etcd.revoke(lease: a.lease.lease)
        let b = try await f.open(cache: "b")
        let v8 = try await ids(b)
        XCTAssertEqual(v8, Set(1...10))
        // The old writer is fenced out by the new one's fence object or by its lost lease.
        await XCTAssertThrowsErrorAsync(try await a.insert([RemoteFixture.row(11)])) { error in

            guard let e = error as? StrataError else { return XCTFail("\(error)") }

            XCTAssertEqual(e.code, .busy, "\(e)")

        }
        try await b.insert([RemoteFixture.row(12)])
        try await b.flush()
        await b.close()
        let r = try await f.open(.readOnly, cache: "c")
        let v9 = try await ids(r)
        XCTAssertEqual(v9, Set(1...10).union([12]))
        await r.close()
    }

    func testStoreOutageFailsWritesWithoutLosingAcknowledgedOnesAndResolvesLostAnswers() async throws {
        let f = try RemoteFixture("storedown")
        defer { Task { await f.shutdown() } }
        let c = try await f.create()
        try await c.insert((1...20).map(RemoteFixture.row))
        try await c.flush()
        try await c.insert((21...30).map(RemoteFixture.row))
        // The store goes away: writes fail, searches keep answering from the cache and the buffer.
        f.store.inject(.down)
        await XCTAssertThrowsErrorAsync(try await c.insert([RemoteFixture.row(31)])) { error in

            guard let e = error as? StrataError else { return XCTFail("\(error)") }

            XCTAssertEqual(e.code, .io)

        }
        let nearest = try await c.search(query: RemoteFixture.row(25).vector, options: SearchOptions(k: 1))
        XCTAssertEqual(nearest.first?.id, 25)
        // A PUT that lands but whose answer is lost: reported failed, applied by the next write.
        f.store.inject(.loseWriteAnswers)
        await XCTAssertThrowsErrorAsync(try await c.insert([RemoteFixture.row(32)])) { XCTAssertEqual(($0 as? StrataError)?.code, .io) }
        f.store.inject(.none)
        try await c.insert([RemoteFixture.row(33)])
        let v11 = try await c.get(id: 32)
        XCTAssertNotNil(v11, "a write whose WAL object landed is durable")
        let v12 = try await c.get(id: 31)
        XCTAssertNil(v12, "a write whose WAL object never landed is not")
        await c.close()
        let r = try await f.open(.readOnly, cache: "b")
        let v13 = try await ids(r)
        XCTAssertEqual(v13, Set(1...30).union([32, 33]))
        await r.close()
    }

    func testEtcdOutageLeavesReadersOnTheLastHeadAndCommitsResumeAfter() async throws {
        let f = try RemoteFixture("etcddown")
        defer { Task { await f.shutdown() } }
        let c = try await f.create()
        try await c.insert((1...20).map(RemoteFixture.row))
        try await c.flush()
        let reader = try await f.open(.readOnly, cache: "b")
        let v14 = try await reader.snapshot().stale
        XCTAssertNil(v14)
        f.metadata.inject(.down)
        let stale = try await reader.snapshot()
        XCTAssertNotNil(stale.stale, "a reader that cannot reach etcd says so")
        XCTAssertEqual(stale.snapshot.count, 20)
        // Writes need only the store; the flush's commit needs etcd.
        try await c.insert((21...25).map(RemoteFixture.row))
        await XCTAssertThrowsErrorAsync(try await c.flush()) { XCTAssertEqual(($0 as? StrataError)?.code, .io) }
        f.metadata.inject(.none)
        try await c.flush()
        let fresh = try await reader.snapshot()
        XCTAssertNil(fresh.stale)
        XCTAssertEqual(fresh.snapshot.count, 25)
        await reader.close()
        await c.close()
    }

    func testACorruptSegmentObjectIsRejectedByTheCache() async throws {
        let f = try RemoteFixture("corrupt")
        defer { Task { await f.shutdown() } }
        let c = try await f.create()
        try await c.insert((1...40).map(RemoteFixture.row))
        let flushed = try await c.flush()
        await c.close()
        let key = f.layout.segmentObject(try XCTUnwrap(flushed?.segment))
        var bytes = try await f.s3.get(key)
        bytes[bytes.count / 2] ^= 0x40
        _ = try await f.s3.put(key, body: bytes, condition: .none)
        await XCTAssertThrowsErrorAsync(try await f.open(.readOnly, cache: "fresh")) { error in

            guard let e = error as? StrataError else { return XCTFail("\(error)") }

            XCTAssertTrue([.checksumMismatch, .corrupt].contains(e.code), "\(e)")

            XCTAssertEqual(e.path, f.s3.address(of: key))

        }
    }
}

/// `XCTAssertThrowsError` for async expressions.
func XCTAssertThrowsErrorAsync<T>(_ expression: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line,
                                  _ handler: (any Error) -> Void = { _ in }) async {
    do {
        _ = try await expression()
        XCTFail("no error thrown", file: file, line: line)
    } catch {
        handler(error)
    }
}

final class SegmentCacheCapacityTests: XCTestCase {
    /// Segment files under a cache directory, by collection subdirectory.
    private func cachedSegments(_ root: String) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for sub in try FileManager.default.contentsOfDirectory(atPath: root) {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + sub)) ?? []
            out[sub] = files.filter { $0.hasPrefix("seg-") }.sorted()
        }
        return out
    }

    /// The capacity is the whole directory's: a collection's fetch evicts another collection's
    /// unreferenced files (a serving node keeps every shard's handle in one directory).
    func testTheCapacityCoversEveryCollectionInTheDirectory() async throws {
        let a = try RemoteFixture("cache-a")
        let b = try RemoteFixture("cache-b")
        defer { Task { await a.shutdown(); await b.shutdown() } }
        for f in [a, b] {
            let c = try await f.create()
            try await c.insert((1...200).map(RemoteFixture.row))
            try await c.flush()
            await c.close()
        }
        let shared = a.cacheRoot + "-shared"
        defer { try? FileManager.default.removeItem(atPath: shared) }
        // Opens a reader, counts its rows and closes it: the handle (and the files its snapshot
        // references) is gone when this returns.
        func rows(_ f: RemoteFixture, capacity: UInt64, whileOpen: () throws -> Void = {}) async throws -> Int {
            var o = f.options()
            o.cache = SegmentCacheOptions(directory: shared, capacityBytes: capacity)
            let r = try await RemoteCollection.open(layout: f.layout, access: .readOnly, store: f.store, metadata: f.metadata, options: o)
            let n = try await r.count()
            try whileOpen()
            await r.close()
            return n
        }
        let countA = try await rows(a, capacity: 1 << 30)
        XCTAssertEqual(countA, 200)
        let before = try cachedSegments(shared)
        XCTAssertEqual(before.count, 1)
        XCTAssertEqual(before.values.first?.count, 1, "\(before)")

        // B's reader fetches one segment into a 1-byte cache: A's file, unreferenced now, goes; B's,
        // which B's snapshot holds, stays.
        let countB = try await rows(b, capacity: 1) {
            let after = try cachedSegments(shared)
            XCTAssertEqual(after.count, 2)
            XCTAssertEqual(after.values.map(\.count).sorted(), [0, 1], "A's segment evicted, B's kept: \(after)")
            XCTAssertEqual(after.first { !$0.value.isEmpty }?.key.contains("cache-b"), true, "\(after)")
        }
        XCTAssertEqual(countB, 200)

        // A reads again: its cache fetches the evicted file again.
        let countAgain = try await rows(a, capacity: 1 << 30)
        XCTAssertEqual(countAgain, 200)
    }
}
