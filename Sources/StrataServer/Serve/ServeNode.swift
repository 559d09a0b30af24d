// One `strata serve` process: its view of the cluster, the shards it holds, and the coordinator
// role every node plays for the requests it receives (any node accepts any request). Collection
// management is here; writes in ServeNode+Write.swift, reads in ServeNode+Read.swift, the
// per-shard dispatch (local, owner, or fallback) in ServeNode+Dispatch.swift.
import Logging
import Strata
import StrataFormat
import StrataRemote

/// The coordinator of one node.
package final class ServeNode: Sendable {
    package let view: ClusterView
    package let host: ShardHost
    package let peers: PeerClient
    package let catalog: CollectionCatalog
    package let limits: ServerLimits
    package let ops: ShardOperations
    package let metrics: ServeMetrics
    let logger: Logger
    /// How long a write keeps trying to reach a shard's writer (a dead owner's lease must expire
    /// and the next owner replay the shard) before it fails with 503.
    package let writeDeadlineSeconds: Double

    package init(view: ClusterView, host: ShardHost, peers: PeerClient, limits: ServerLimits, metrics: ServeMetrics,
                 logger: Logger, writeDeadlineSeconds: Double) {
        self.view = view
        self.host = host
        self.peers = peers
        self.catalog = CollectionCatalog(metadata: view.metadata, keys: view.keys)
        self.limits = limits
        self.ops = ShardOperations(limits: limits)
        self.metrics = metrics
        self.logger = logger
        self.writeDeadlineSeconds = writeDeadlineSeconds
    }

    /// The collection called `name`, or 404.
    package func collection(_ name: String) throws(QdrantError) -> ServedCollection {
        guard let c = view.collection(name) else { throw .collectionNotFound(name) }
        return c
    }

    /// Every collection's name.
    package var collectionNames: [String] { view.collections.map(\.name) }

    /// Creates a collection: its shards' remote collections first, then its definition in etcd
    /// (so that no node opens a shard that does not exist). 409 when the name is taken.
    package func createCollection(_ name: String, _ request: CreateCollectionRequest) async throws(QdrantError) {
        guard ServedCollection.isValidName(name) else {
            throw .wrongInput("collection name '\(name.prefix(200))' must be 1-128 characters of A-Z a-z 0-9 _ - .")
        }
        if view.collection(name) != nil { throw .collectionExists(name) }
        let c = ServedCollection(name: name, uid: RemoteLayout.randomHex(), dimension: request.dimension,
                                 metric: request.distance.metric.description,
                                 shards: request.shardNumber ?? max(1, view.nodeIDs.count), columns: [], payloadIndexes: [:],
                                 createdMilliseconds: WallClock.milliseconds(), vectorName: request.vectorName, sparseName: request.sparseName)
        let created: Int64?
        do throws(StrataError) {
            try await host.createShards(c)
            created = try await catalog.createIfAbsent(c)
        } catch { throw QdrantError(error) }
        guard let revision = created else {
            await host.dropShards(c)
            throw .collectionExists(name)
        }
        view.noteStored(c, revision: revision)
        logger.info("created collection", metadata: ["collection": "\(name)", "shards": "\(c.shards)", "uid": "\(c.uid)"])
    }

    /// Deletes a collection's definition, then (best effort) its objects and keys. False when
    /// there was no such collection (Qdrant answers 200 with `false`).
    package func deleteCollection(_ name: String) async throws(QdrantError) -> Bool {
        guard let c = view.collection(name) else { return false }
        let deleted: Int64?
        do throws(StrataError) { deleted = try await catalog.delete(name, uid: c.uid) } catch { throw QdrantError(error) }
        guard let revision = deleted else { return false }
        view.noteDeleted(name, revision: revision)
        await host.reconcile()
        await host.dropShards(c)
        logger.info("deleted collection", metadata: ["collection": "\(name)"])
        return true
    }

    /// Records a payload index (and the column, when no point has the key yet). Shards build it
    /// into the segments they write from then on.
    package func createIndex(_ name: String, _ request: CreateIndexRequest) async throws(QdrantError) {
        _ = try collection(name)
        let stored: (ServedCollection, Int64)?
        let maxColumns = limits.maxPayloadKeys
        do throws(StrataError) {
            stored = try await catalog.update(name) { (c: ServedCollection) throws(StrataError) -> ServedCollection? in
                var next = c
                if let col = c.columnSpecs.first(where: { $0.name == request.field }) {
                    guard request.type.fits(col.type) else {
                        throw StrataError(.typeMismatch, "field '\(request.field)' holds \(col.type) values; a \(request.type.rawValue) index does not fit them")
                    }
                } else {
                    guard request.field.utf8.count <= 255, !request.field.isEmpty else {
                        throw StrataError(.invalidArgument, "a payload key is 1-255 bytes")
                    }
                    guard c.columns.count < maxColumns else {
                        throw StrataError(.invalidArgument, "the collection has \(c.columns.count) payload keys, the most this server allows")
                    }
                    next.columns.append(.init(name: request.field, type: request.type.columnType.description))
                }
                guard next.payloadIndexes[request.field] != request.type.rawValue || next.columns != c.columns else { return nil }
                next.payloadIndexes[request.field] = request.type.rawValue
                return next
            }
        } catch { throw QdrantError(error) }
        guard let (c, revision) = stored else { throw .collectionNotFound(name) }
        view.noteStored(c, revision: revision)
    }

    /// Points, segments and payload-index counts of a collection, from every shard.
    package func collectionSummary(_ name: String, allowPartial: Bool) async throws(QdrantError) -> (CollectionSummary, ShardReport) {
        let c = try collection(name)
        let (results, report) = try await fanOut(c, shards: Array(0..<c.shards), allowPartial: allowPartial) { _ in .count(filter: nil) }
        let points = results.reduce(0) { $0 + $1.count }
        let segments = results.reduce(0) { $0 + $1.segments }
        let indexes = c.payloadIndexes.sorted { $0.key < $1.key }.compactMap { (k, v) -> (field: String, type: PayloadIndexType, points: Int)? in
            guard let t = PayloadIndexType(rawValue: v) else { return nil }
            return (k, t, points)
        }
        var summary = CollectionSummary(dimension: c.dimension, distance: QdrantDistance(c.distanceMetric), shardNumber: c.shards,
                                        pointsCount: points, segmentsCount: segments, payloadIndexes: indexes)
        summary.vectorName = c.vectorName
        summary.sparseName = c.sparseName
        return (summary, report)
    }

    /// Stops serving: closes the shards (releasing their writer leases) and leaves the cluster.
    package func shutdown() async {
        await host.stop()
        await view.stop()
        await peers.shutdown()
    }
}
