// What one node knows of the cluster: the live nodes and the collections, kept current by etcd
// watches (not polling). The node's own registration is a key attached to its lease; when the
// lease is lost (etcd unreachable for longer than its TTL) the node registers again.
//
// Each watch starts from a revision read before its range: replaying the events after that
// revision onto a later state gives the same final state (each key ends as its last event says).
import Foundation
import Logging
import StrataFormat
import StrataRemote
import Synchronization

/// A node of the cluster as registered in etcd.
package struct NodeInfo: Codable, Sendable, Equatable {
    /// The node id (`--node-id`).
    package var id: String
    /// Where its HTTP API listens (`http://host:port`).
    package var url: String
}

/// The live nodes and the collections, as this node last saw them.
package final class ClusterView: Sendable {
    package let metadata: any MetadataStore
    package let keys: ServeKeys
    /// This node.
    package let me: NodeInfo
    private let ttlSeconds: Int
    private let logger: Logger

    private struct State {
        var nodes: [String: NodeInfo] = [:]
        var collections: [String: ServedCollection] = [:]
        /// The etcd revision each name's definition (or deletion) was seen at: older news is ignored.
        var revisions: [String: Int64] = [:]
        var lease: LeaseKeeper?
        var tasks: [Task<Void, Never>] = []
        var stopped = false
    }
    private let state = Mutex(State())
    private let continuation: AsyncStream<Void>.Continuation
    /// Yields after every change of the nodes or the collections (one consumer: the shard host).
    package let changes: AsyncStream<Void>

    private init(metadata: any MetadataStore, keys: ServeKeys, me: NodeInfo, ttlSeconds: Int, logger: Logger) {
        self.metadata = metadata
        self.keys = keys
        self.me = me
        self.ttlSeconds = ttlSeconds
        self.logger = logger
        (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Registers `me` (under a lease of `ttlSeconds`), loads the nodes and collections and starts
    /// the watches. Throws `.io` when etcd cannot be reached, `.alreadyExists` when a live node
    /// already uses the id.
    package static func start(metadata: any MetadataStore, keys: ServeKeys, me: NodeInfo, ttlSeconds: Int,
                              logger: Logger) async throws(StrataError) -> ClusterView {
        let view = ClusterView(metadata: metadata, keys: keys, me: me, ttlSeconds: ttlSeconds, logger: logger)
        try await view.register()
        try await view.resync(prefix: keys.nodesPrefix)
        try await view.resync(prefix: keys.collectionsPrefix)
        view.state.withLock { s in
            s.tasks = [
                Task { await view.keepRegistered() },
                Task { await view.watchLoop(prefix: keys.nodesPrefix) },
                Task { await view.watchLoop(prefix: keys.collectionsPrefix) },
            ]
        }
        return view
    }

    /// Live node ids, sorted.
    package var nodeIDs: [String] { state.withLock { $0.nodes.keys.sorted() } }
    /// The node called `id`, if live.
    package func node(_ id: String) -> NodeInfo? { state.withLock { $0.nodes[id] } }
    /// Every collection.
    package var collections: [ServedCollection] { state.withLock { $0.collections.values.sorted { $0.name < $1.name } } }
    /// The collection called `name`, if known.
    package func collection(_ name: String) -> ServedCollection? { state.withLock { $0.collections[name] } }

    /// Records a definition this node has just stored or read at `revision` (its own watch event
    /// may come later); ignored when the view has seen a later revision of the name.
    package func noteStored(_ c: ServedCollection, revision: Int64) {
        let changed = state.withLock { s -> Bool in
            guard revision > s.revisions[c.name, default: 0] else { return false }
            s.revisions[c.name] = revision
            s.collections[c.name] = c
            return true
        }
        if changed { continuation.yield() }
    }

    /// Records that this node has just deleted a collection (at `revision`).
    package func noteDeleted(_ name: String, revision: Int64) {
        state.withLock { s in
            guard revision > s.revisions[name, default: 0] else { return }
            s.revisions[name] = revision
            s.collections.removeValue(forKey: name)
        }
        continuation.yield()
    }

    /// The owner of a shard among the live nodes.
    package func owner(of c: ServedCollection, shard: Int) -> String? {
        ShardPlacement.owner(collectionUID: c.uid, shard: shard, nodes: nodeIDs)
    }

    /// Stops the watches and revokes the lease (the node's key disappears at once).
    package func stop() async {
        let (tasks, lease) = state.withLock { s in
            s.stopped = true
            return (s.tasks, s.lease)
        }
        for t in tasks { t.cancel() }
        try? await lease?.revoke()
        continuation.finish()
    }

    // MARK: registration

    private func register() async throws(StrataError) {
        let key = keys.nodeKey(me.id)
        let lease = try await LeaseKeeper.start(store: metadata, ttlSeconds: ttlSeconds)
        let value = Array((try? JSONEncoder().encode(me)) ?? Data())
        // A key held by another live lease is another process with this id.
        do throws(StrataError) {
            let r = try await metadata.txn(compare: [.createRevision(key, equals: 0)],
                                           success: [.put(key, value, lease: lease.lease)], failure: [.get(key)])
            if !r.succeeded {
                if let held = r.reads.first ?? nil, held.lease != 0, held.value != value {
                    throw StrataError(.alreadyExists, "another live node is registered with id \(me.id)", path: key)
                }
                try await metadata.put(key, value: value, lease: lease.lease)
            }
        } catch {
            try? await lease.revoke()
            throw error
        }
        let old = state.withLock { s in
            let o = s.lease
            s.lease = lease
            s.nodes[me.id] = me
            return o
        }
        if let old, old.lease != lease.lease { try? await old.revoke() }
        continuation.yield()
    }

    private func keepRegistered() async {
        while !Task.isCancelled {
            guard let lease = state.withLock({ $0.lease }) else { return }
            let reason = await lease.waitUntilLost()
            if Task.isCancelled || state.withLock({ $0.stopped }) { return }
            logger.warning("node lease lost; registering again", metadata: ["reason": "\(reason?.message ?? "?")"])
            while !Task.isCancelled {
                do {
                    try await register()
                    break
                } catch {
                    logger.warning("registration failed", metadata: ["error": "\(error.message)"])
                    try? await Task.sleep(nanoseconds: 500_000_000)
                }
            }
        }
    }

    // MARK: watches

    /// The store's current revision (from an empty transaction's header).
    private func currentRevision() async throws(StrataError) -> Int64 {
        try await metadata.txn(compare: [], success: [], failure: []).revision
    }

    /// Replaces what is known under `prefix` by a fresh range; returns the revision to watch from.
    @discardableResult
    private func resync(prefix: String) async throws(StrataError) -> Int64 {
        let revision = try await currentRevision()
        let all = try await metadata.range(prefix: prefix)
        state.withLock { s in
            if prefix == keys.nodesPrefix {
                s.nodes = [:]
                for kv in all { apply(kv, deleted: false, to: &s, prefix: prefix) }
            } else {
                // A name absent from the range was deleted at or before `revision`.
                for name in s.collections.keys where !all.contains(where: { $0.key == keys.collectionKey(name) }) {
                    s.collections.removeValue(forKey: name)
                    s.revisions[name] = max(s.revisions[name, default: 0], revision)
                }
                for kv in all { apply(kv, deleted: false, to: &s, prefix: prefix) }
            }
        }
        continuation.yield()
        return revision
    }

    private func watchLoop(prefix: String) async {
        var revision: Int64 = 0
        while !Task.isCancelled {
            do {
                if revision == 0 { revision = try await resync(prefix: prefix) }
                for try await event in metadata.watch(prefix: prefix, afterRevision: revision) {
                    revision = max(revision, event.keyValue.modRevision)
                    state.withLock { s in apply(event.keyValue, deleted: event.kind == .delete, to: &s, prefix: prefix) }
                    continuation.yield()
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("watch ended; resyncing", metadata: ["prefix": "\(prefix)", "error": "\(error)"])
            }
            revision = 0
            try? await Task.sleep(nanoseconds: 300_000_000)
        }
    }

    private func apply(_ kv: KeyValue, deleted: Bool, to s: inout State, prefix: String) {
        let name = String(kv.key.dropFirst(prefix.count))
        if prefix == keys.nodesPrefix {
            if deleted { s.nodes.removeValue(forKey: name); return }
            if let n = try? JSONDecoder().decode(NodeInfo.self, from: Data(kv.value)), n.id == name { s.nodes[name] = n }
        } else {
            guard kv.modRevision >= s.revisions[name, default: 0] else { return }
            s.revisions[name] = kv.modRevision
            if deleted { s.collections.removeValue(forKey: name); return }
            if let c = try? ServedCollection.decode(kv.value, key: kv.key), c.name == name { s.collections[name] = c }
        }
    }
}
