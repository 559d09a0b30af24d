// The shards this node has open: the writer of every shard it owns (by rendezvous over the live
// nodes) and, on demand, a read-only handle on any other shard, for queries when the owner
// cannot be reached. Ownership follows the cluster view: when the view changes, shards this node
// no longer owns are closed (their writer lease released at once) and shards it now owns are
// opened, waiting for the old owner's lease to expire if it died. Opening replays the shard's
// WAL objects, so no acknowledged write is lost and no data moves.
import Logging
import Strata
import StrataFormat
import StrataRemote
import Synchronization

/// One shard of one collection (its uid distinguishes a collection created again under a name).
package struct ShardID: Hashable, Sendable, CustomStringConvertible {
    package var collection: String
    package var uid: String
    package var shard: Int
    package var description: String { "\(collection)/\(shard)" }
}

/// The shards open on this node.
package final class ShardHost: Sendable {
    package let view: ClusterView
    package let store: any ObjectStore
    /// Options every shard is opened with (cache, lease TTL, node name, flush thresholds).
    package let options: RemoteOptions
    private let logger: Logger

    private struct Slot {
        var writer: RemoteCollection?
        var opening: Task<Void, Never>?
        /// Which opening task is current: one started later, or a cancellation, makes an older
        /// task's result unwanted.
        var openingToken: UInt64 = 0
        var reader: RemoteCollection?
        /// The writer this node held until it could write no more (lease lapsed, fenced), kept
        /// only to answer reads while no fresh handle can be opened (etcd or the store down); its
        /// lease is released at once, the handle dropped once a reader or a new writer is open.
        /// See ``ShardHost/reader(_:shard:)``.
        var lapsed: RemoteCollection?
        /// The task opening `reader`, while one runs.
        var readerOpening: Task<Result<RemoteCollection, StrataError>, Never>?
        /// Why the last attempt to open the writer failed.
        var lastError: String?
    }
    private struct State {
        var slots: [ShardID: Slot] = [:]
        var nextToken: UInt64 = 1
        var stopped = false
        var loop: Task<Void, Never>?
        /// Lapsed writers being closed (their leases revoked), by token; ``stop()`` waits for them.
        var releasing: [UInt64: Task<Void, Never>] = [:]
    }
    private let state = Mutex(State())

    package init(view: ClusterView, store: any ObjectStore, options: RemoteOptions, logger: Logger) {
        self.view = view
        self.store = store
        self.options = options
        self.logger = logger
    }

    package var metadata: any MetadataStore { view.metadata }

    /// Starts following the cluster view.
    package func start() {
        let task = Task { [self] in
            await reconcile()
            for await _ in view.changes {
                if Task.isCancelled { return }
                await reconcile()
            }
        }
        state.withLock { $0.loop = task }
    }

    /// Closes every shard (writers release their leases, so the next owners take over at once).
    package func stop() async {
        let (loop, slots, releasing) = state.withLock { s in
            s.stopped = true
            let slots = s.slots
            s.slots = [:]
            defer { s.releasing = [:] }
            return (s.loop, slots, Array(s.releasing.values))
        }
        loop?.cancel()
        for t in releasing { await t.value }
        for (_, slot) in slots {
            slot.opening?.cancel()
            await slot.writer?.close()
            await slot.reader?.close()
            await slot.lapsed?.close()
        }
    }

    /// The remote collection of a shard.
    package func layout(_ id: ShardID, of c: ServedCollection) -> RemoteLayout { view.keys.shardLayout(c, shard: id.shard) }

    /// The options a shard of `c` is opened and compacted with: the payload indexes the collection
    /// asks for, on the columns it has.
    package func options(for c: ServedCollection) -> RemoteOptions {
        var o = options
        o.collection.search.indexedColumns = c.payloadIndexes.keys.filter { k in c.columns.contains { $0.name == k } }.sorted()
        o.collection.search.bm25Columns = c.payloadIndexes.filter { $0.value == "text" }.map(\.key)
            .filter { k in c.columns.contains { $0.name == k && $0.type == "string" } }.sorted()
        return o
    }

    // MARK: ownership

    /// Opens the writers of shards this node owns and closes the others.
    package func reconcile() async {
        let collections = view.collections
        var wanted = Set<ShardID>()
        for c in collections {
            for s in 0..<c.shards where view.owner(of: c, shard: s) == view.me.id {
                wanted.insert(ShardID(collection: c.name, uid: c.uid, shard: s))
            }
        }
        let known = Set(collections.map(\.uid))
        var toClose: [RemoteCollection] = []
        var reopenReasons: [String] = []
        state.withLock { s in
            guard !s.stopped else { return }
            for (id, slot) in s.slots {
                if !wanted.contains(id) {
                    if let w = slot.writer { toClose.append(w) }
                    if let w = slot.lapsed { toClose.append(w) }
                    s.slots[id]?.lapsed = nil
                    slot.opening?.cancel()
                    s.slots[id]?.writer = nil
                    s.slots[id]?.opening = nil
                    s.slots[id]?.openingToken = 0
                }
                if !known.contains(id.uid) {
                    if let r = slot.reader { toClose.append(r) }
                    s.slots.removeValue(forKey: id)
                }
            }
            for (id, slot) in s.slots {
                guard let w = slot.writer else { continue }
                // A writer fenced out or whose lease was lost can write no more, and one opened
                // before a payload index was asked for would not build it: open it again.
                let indexes = collections.first { $0.uid == id.uid }.map { options(for: $0).collection.search }
                if let why = w.writeFailure { reopenReasons.append("\(id): \(why.message)") }
                if w.writeFailure != nil {
                    // Kept for reads until a fresh handle opens, but its lease released: a writer
                    // fenced out or failed with its lease still alive would otherwise keep the
                    // writer key, and this node's next writer would wait on it forever.
                    if let older = s.slots[id]?.lapsed { toClose.append(older) }
                    s.slots[id]?.lapsed = w
                    s.slots[id]?.writer = nil
                    // close() revokes the lease (the writer key and pin go) and still lets the
                    // handle answer reads from the state it holds. In the background: it waits for
                    // a commit in flight, which may hang as long as the outage that failed it.
                    let token = s.nextToken
                    s.nextToken += 1
                    s.releasing[token] = Task { [self] in
                        await w.close()
                        state.withLock { _ = $0.releasing.removeValue(forKey: token) }
                    }
                } else if indexes.map({ $0.indexedColumns != w.options.collection.search.indexedColumns
                                        || $0.bm25Columns != w.options.collection.search.bm25Columns }) ?? false {
                    toClose.append(w)
                    s.slots[id]?.writer = nil
                }
            }
            // Started under the lock, so that two reconciles never open one shard twice.
            for id in wanted where s.slots[id]?.writer == nil && s.slots[id]?.opening == nil {
                if let c = collections.first(where: { $0.uid == id.uid }) {
                    if s.slots[id] == nil { s.slots[id] = Slot() }
                    let token = s.nextToken
                    s.nextToken += 1
                    s.slots[id]?.openingToken = token
                    s.slots[id]?.opening = openingTask(id, c, token: token)
                }
            }
        }
        for why in reopenReasons { logger.warning("reopening a shard writer that can no longer write", metadata: ["reason": "\(why)"]) }
        for w in toClose {
            logger.info("closing shard", metadata: ["shard": "\(w.layout.address)"])
            await w.close()
        }
    }

    /// The task that opens a shard's writer (retrying while the previous writer's lease lives).
    private func openingTask(_ id: ShardID, _ c: ServedCollection, token: UInt64) -> Task<Void, Never> {
        Task { [self] in
            var attempt = 0
            while !Task.isCancelled, state.withLock({ !$0.stopped && $0.slots[id]?.openingToken == token }) {
                let current = view.collection(c.name) ?? c
                guard current.uid == id.uid, view.owner(of: current, shard: id.shard) == view.me.id else { break }
                do throws(StrataError) {
                    let w = try await RemoteCollection.open(layout: layout(id, of: current), access: .readWrite, store: store,
                                                            metadata: metadata, options: options(for: current))
                    let (keep, lapsed) = state.withLock { s -> (Bool, RemoteCollection?) in
                        guard !s.stopped, !Task.isCancelled, s.slots[id]?.openingToken == token else { return (false, nil) }
                        s.slots[id]?.writer = w
                        s.slots[id]?.opening = nil
                        s.slots[id]?.openingToken = 0
                        s.slots[id]?.lastError = nil
                        defer { s.slots[id]?.lapsed = nil }
                        return (true, s.slots[id]?.lapsed)
                    }
                    await lapsed?.close()
                    if keep {
                        logger.info("opened shard writer", metadata: ["shard": "\(id)", "attempts": "\(attempt + 1)"])
                    } else {
                        await w.close()
                    }
                    return
                } catch {
                    attempt += 1
                    state.withLock { s in if s.slots[id]?.openingToken == token { s.slots[id]?.lastError = error.message } }
                    // .busy: the previous owner's lease still lives (it may have died); it expires
                    // within its TTL.
                    if error.code != .busy { logger.warning("opening shard writer failed", metadata: ["shard": "\(id)", "error": "\(error)"]) }
                    try? await Task.sleep(nanoseconds: error.code == .busy ? 250_000_000 : 1_000_000_000)
                }
            }
            state.withLock { s in
                if s.slots[id]?.openingToken == token {
                    s.slots[id]?.opening = nil
                    s.slots[id]?.openingToken = 0
                }
            }
        }
    }

    /// The writer of a shard this node owns, waiting up to `waitSeconds` while it is being opened.
    /// Throws `.busy` when it is not open in time (another node's lease has not expired yet) or this
    /// node does not own the shard.
    package func writer(_ c: ServedCollection, shard: Int, waitSeconds: Double = 30) async throws(StrataError) -> RemoteCollection {
        let id = ShardID(collection: c.name, uid: c.uid, shard: shard)
        let deadline = monotonicSeconds() + waitSeconds
        while true {
            if let w = state.withLock({ $0.slots[id]?.writer }) {
                if w.writeFailure == nil { return w }
                await reconcile()
                continue
            }
            let opening = state.withLock { $0.slots[id]?.opening != nil }
            if !opening, view.owner(of: c, shard: shard) == view.me.id { await reconcile() }
            if monotonicSeconds() >= deadline || (!opening && view.owner(of: c, shard: shard) != view.me.id) {
                let why = state.withLock { $0.slots[id]?.lastError }
                throw StrataError(.busy, "this node (\(view.me.id)) has no writer for shard \(shard) of \(c.name)"
                                  + (why.map { ": \($0)" } ?? (view.owner(of: c, shard: shard) == view.me.id ? " yet" : "; it is owned by \(view.owner(of: c, shard: shard) ?? "no live node")")),
                                  path: layout(id, of: c).address)
            }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    /// Whether `writer` is still the open writer of a shard (not closed by a change of owner).
    package func isCurrentWriter(_ writer: RemoteCollection, of c: ServedCollection, shard: Int) -> Bool {
        state.withLock { $0.slots[ShardID(collection: c.name, uid: c.uid, shard: shard)]?.writer === writer }
    }

    /// Whether `handle` is the shard's writer on this node and can still write (its state has every
    /// acknowledged write).
    package func isLiveWriter(_ handle: RemoteCollection, of c: ServedCollection, shard: Int) -> Bool {
        isCurrentWriter(handle, of: c, shard: shard) && handle.writeFailure == nil
    }

    /// A handle to read a shard: the writer when this node holds one that can still write, else a
    /// read-only handle (opened on first use, then kept and refreshed by its own reads). A writer
    /// whose lease lapsed may lack writes its successor acknowledged: it is reopened, not read.
    ///
    /// Except while no read-only handle can be opened in time (etcd or the store unreachable: a
    /// handle needs the head and a pin lease): when the open has not succeeded within
    /// ``staleReadAfterSeconds``, a writer this node held until its lease lapsed answers, and the
    /// open goes on in the background. Its state is stale but never phantom: it holds every write it
    /// acknowledged and nothing else (a write enters it only once its WAL object is stored), and a
    /// successor can have acknowledged more only where etcd answers. Without it, an etcd outage
    /// longer than a lease would leave this node's shards unreadable everywhere.
    package func reader(_ c: ServedCollection, shard: Int) async throws(StrataError) -> RemoteCollection {
        let id = ShardID(collection: c.name, uid: c.uid, shard: shard)
        let (writer, existing, lapsed) = state.withLock { ($0.slots[id]?.writer, $0.slots[id]?.reader, $0.slots[id]?.lapsed) }
        if let writer {
            if writer.writeFailure == nil { return writer }
            Task { await reconcile() }
        }
        if let existing { return existing }
        let opening = readerOpening(id, c)
        guard let stale = writer ?? lapsed else { return try await opening.value.get() }
        let opened = await withTaskGroup(of: Result<RemoteCollection, StrataError>?.self) { group in
            group.addTask { await opening.value }
            group.addTask {
                try? await Task.sleep(nanoseconds: UInt64(Self.staleReadAfterSeconds * 1e9))
                return nil
            }
            defer { group.cancelAll() }
            return await group.next() ?? nil
        }
        if case .success(let r)? = opened { return r }
        logger.warning("answering from a writer whose lease lapsed: no read-only handle could be opened yet",
                       metadata: ["shard": "\(id)", "error": "\(opened.map { "\($0)" } ?? "no answer within \(Self.staleReadAfterSeconds) s")"])
        return stale
    }

    /// How long a read waits for a read-only handle before a lapsed writer answers it.
    static let staleReadAfterSeconds = 1.0

    /// The task opening a read-only handle on a shard (one at a time per shard). On success it keeps
    /// the handle as the shard's reader and closes the lapsed writer, if any.
    private func readerOpening(_ id: ShardID, _ c: ServedCollection) -> Task<Result<RemoteCollection, StrataError>, Never> {
        state.withLock { s in
            if let t = s.slots[id]?.readerOpening { return t }
            if s.slots[id] == nil { s.slots[id] = Slot() }
            let t = Task { [self] () -> Result<RemoteCollection, StrataError> in
                let opened: Result<RemoteCollection, StrataError>
                do throws(StrataError) {
                    opened = .success(try await RemoteCollection.open(layout: layout(id, of: c), access: .readOnly, store: store,
                                                                      metadata: metadata, options: options(for: c)))
                } catch {
                    opened = .failure(error)
                }
                let (kept, toClose) = state.withLock { s -> (Result<RemoteCollection, StrataError>, [RemoteCollection]) in
                    s.slots[id]?.readerOpening = nil
                    guard case .success(let r) = opened else { return (opened, []) }
                    // The collection was dropped or the node stopped meanwhile: nothing keeps it.
                    guard !s.stopped, s.slots[id] != nil else { return (opened, [r]) }
                    if let existing = s.slots[id]?.reader { return (.success(existing), [r]) }
                    s.slots[id]?.reader = r
                    defer { s.slots[id]?.lapsed = nil }
                    return (opened, s.slots[id]?.lapsed.map { [$0] } ?? [])
                }
                for h in toClose { await h.close() }
                return kept
            }
            s.slots[id]?.readerOpening = t
            return t
        }
    }

    /// Shards this node holds the writer of.
    package var ownedShards: [ShardID] { state.withLock { s in s.slots.filter { $0.value.writer != nil }.map(\.key).sorted { $0.description < $1.description } } }

    // MARK: collections

    /// Creates the remote collection of every shard of a new collection (before its definition is
    /// published, so that no node tries to open a shard that does not exist).
    package func createShards(_ c: ServedCollection) async throws(StrataError) {
        let layouts = (0..<c.shards).map { layout(ShardID(collection: c.name, uid: c.uid, shard: $0), of: c) }
        _ = try await inParallel(count: c.shards, width: 8, what: view.keys.collectionRoot(c)) { [self] (s: Int) async throws(StrataError) in
            var o = options
            o.nodeName = view.me.id
            let created = try await RemoteCollection.create(layout: layouts[s], schema: c.schema, store: store, metadata: metadata, options: o)
            await created.close()
        }
    }

    /// Removes a deleted collection's objects and etcd keys (best effort: what is left is garbage
    /// under a prefix no definition names).
    package func dropShards(_ c: ServedCollection) async {
        for s in 0..<c.shards {
            let layout = layout(ShardID(collection: c.name, uid: c.uid, shard: s), of: c)
            if let keys = try? await metadata.range(prefix: layout.keyPrefix) {
                for kv in keys { try? await metadata.delete(kv.key) }
            }
        }
        if let objects = try? await store.list(prefix: view.keys.collectionRoot(c)) {
            _ = try? await inParallel(count: objects.count, width: 8, what: view.keys.collectionRoot(c)) { [store] (i: Int) async throws(StrataError) in
                try await store.delete(objects[i].key)
            }
        }
    }
}
