// The shard host against real SeaweedFS and etcd: a shard writer that can no longer write is
// replaced by a new writer on the same node, whatever made it fail.
import Foundation
import Logging
@testable import Strata
@testable import StrataRemote
@testable import StrataServer
import StrataFormat
import StrataTestSupport
import XCTest

final class ShardHostTests: StrataTestCase {
    /// A writer fenced out by another writer's WAL object keeps a live lease (etcd never stopped
    /// answering). The host keeps the handle for reads but releases its lease, so the writer it
    /// opens next gets the writer key at once instead of waiting on its own node's lease forever
    /// (the lapsed handle used to keep it alive until a read-only handle happened to open).
    func testAWriterFencedWithItsLeaseAliveIsReplacedOnTheSameNode() async throws {
        let env = try RemoteTestEnvironment.current()
        let store = S3Client(configuration: try S3Configuration(endpoint: env.s3Endpoint, bucket: env.bucket, region: env.region,
                                                                accessKey: env.accessKey, secretKey: env.secretKey))
        let etcd = try EtcdClient(endpoint: env.etcdEndpoint)
        defer { Task { try? await store.shutdown(); try? await etcd.shutdown() } }
        let keys = ServeKeys(bucket: env.bucket, prefix: env.uniquePrefix("shard-host"))
        let logger = Logger(label: "shard-host-test")
        let view = try await ClusterView.start(metadata: etcd, keys: keys, me: NodeInfo(id: "n0", url: "http://127.0.0.1:9"),
                                               ttlSeconds: 4, logger: logger)
        var options = RemoteOptions(cache: SegmentCacheOptions(directory: tmp.appendingPathComponent("cache").path))
        options.collection.index = nil
        options.writerLeaseSeconds = 4
        options.nodeName = "n0"
        let host = ShardHost(view: view, store: store, options: options, logger: logger)
        let c = ServedCollection(name: "c", uid: RemoteLayout.randomHex(), dimension: 4, metric: "cosine", shards: 1, columns: [],
                                 payloadIndexes: [:], createdMilliseconds: WallClock.milliseconds())
        try await host.createShards(c)
        let created = try await CollectionCatalog(metadata: etcd, keys: keys).createIfAbsent(c)
        view.noteStored(c, revision: try XCTUnwrap(created))
        host.start()

        let first = try await host.writer(c, shard: 0)
        try await first.upsert([SegmentRow(id: 1, vector: [1, 0, 0, 0])])
        // Another writer's empty fences at every sequence the first could write next.
        let layout = host.layout(ShardID(collection: c.name, uid: c.uid, shard: 0), of: c)
        for sequence in UInt64(1)...40 {
            _ = try? await store.put(layout.walObject(sequence), body: WALFormat.encodeLog([], sequence: sequence, schema: first.schema),
                                     condition: .ifAbsent)
        }
        do {
            try await first.upsert([SegmentRow(id: 2, vector: [0, 1, 0, 0])])
            XCTFail("a write past another writer's WAL object was acknowledged")
        } catch {
            XCTAssertEqual(error.code, .busy, "\(error)")
        }
        XCTAssertNotNil(first.writeFailure)

        // The lease is 4 s and kept alive: without the release this waits out the whole 20 s.
        let began = monotonicSeconds()
        let second = try await host.writer(c, shard: 0, waitSeconds: 20)
        XCTAssertFalse(second === first)
        XCTAssertNil(second.writeFailure)
        XCTAssertLessThan(monotonicSeconds() - began, 10)
        try await second.upsert([SegmentRow(id: 3, vector: [0, 0, 1, 0])])
        let live = try await second.count()
        XCTAssertEqual(live, 2, "the acknowledged rows 1 and 3")

        await host.stop()
        await view.stop()
    }
}

