// A collection whose data lives in an object store and whose commit point is a key in etcd
// (docs/REMOTE-FORMAT.md). The engine's pieces do the work: a Version over the node-local cache
// directory holds the sealed segments and bitmaps, a MemTable holds the rows of WAL objects not yet
// flushed, and a CollectionSnapshot searches both, exactly as for a local collection.
//
// Writes (RemoteCollection+Write.swift) are acknowledged once their WAL object is in the store;
// flushes and every other change commit through RemoteCommit.swift. Loading a head, its manifest,
// its version and the WAL after it: RemoteCollection+Load.swift.
//
// One writer at a time: it holds an etcd lease on the `writer` key and fences out any writer
// before it by writing the next WAL object first. Any number of readers: each pins the manifest
// it reads under a leased key, so that `strata gc` keeps its objects.
import Strata
import StrataFormat
import Synchronization

/// A remote collection's view at one moment: a snapshot like a local one, plus where it came from.
public struct RemoteSnapshot: Sendable {
    /// The rows: sealed segments of one manifest generation and the WAL objects after it.
    public let snapshot: CollectionSnapshot
    /// Why this view may be behind the collection (etcd or the store could not be reached when it
    /// was refreshed; it is the last one loaded), or nil when it is current.
    public let stale: String?

    /// The manifest generation.
    public var generation: UInt64 { snapshot.generation }
}

/// A collection in an object store (S3, MinIO, SeaweedFS, R2) with its head in etcd.
///
/// ```swift
/// let c = try await RemoteCollection.create(layout: layout, schema: SegmentSchema(dimension: 384),
///                                           store: s3, metadata: etcd, options: options)
/// try await c.insert([SegmentRow(id: 1, vector: v)])   // acknowledged: its WAL object is stored
/// let hits = try await c.search(query: q, options: SearchOptions(k: 10))
/// try await c.flush()
/// await c.close()
/// ```
public final class RemoteCollection: Sendable {
    /// Where the collection lives.
    public let layout: RemoteLayout
    /// Vector shape, metric and payload columns: those of the manifest loaded last (columns may be
    /// added, ``addColumns(_:)``; a reader sees them after a refresh).
    public var schema: SegmentSchema { state.withLock { $0.version.manifest.schema } }
    /// Writer or reader.
    public let access: CollectionAccess
    /// Options.
    public let options: RemoteOptions
    let store: any ObjectStore
    let metadata: any MetadataStore
    let cache: SegmentCache
    /// This process's token: the writer key's value, the pin key's name.
    let token: String
    /// The writer's lease (read-write) or the pin lease (read-only).
    let lease: LeaseKeeper

    /// What this process has loaded.
    struct State {
        /// The head `version` came from, and the etcd mod_revision it was read at.
        var head: RemoteHead
        var headRevision: Int64
        var version: Version
        /// Rows of the WAL objects from `head.walSequence` to `nextSequence - 1`.
        var mem: MemTable
        /// The sequence of the next WAL object (the next to write, or to read).
        var nextSequence: UInt64
        /// A write whose WAL object may or may not be in the store (the PUT failed without an
        /// answer): its sequence and bytes, resolved before the next write.
        var uncertain: (sequence: UInt64, bytes: [UInt8])?
        /// Set when this writer can no longer write (fenced out, lease lost, closed).
        var failed: StrataError?
        /// Why the last refresh could not reach etcd or the store.
        var stale: String?
        /// When the last refresh ended (monotonic seconds).
        var refreshedAt = monotonicSeconds()
        /// The last refresh could not reach etcd or the store: the next ones run in the background
        /// (`refreshing`), so that reads do not each wait for a timeout during an outage.
        var unreachable = false
        var refreshing: Task<Void, Never>?
    }
    let state: Mutex<State>
    /// Writes and flushes waiting for the committer (RemoteCollection+Write.swift).
    let queue = Mutex(WriteQueue())

    init(layout: RemoteLayout, access: CollectionAccess, options: RemoteOptions,
         store: any ObjectStore, metadata: any MetadataStore, cache: SegmentCache, token: String, lease: LeaseKeeper, state: State) {
        self.layout = layout
        self.access = access
        self.options = options
        self.store = store
        self.metadata = metadata
        self.cache = cache
        self.token = token
        self.lease = lease
        self.state = Mutex(state)
    }

    // MARK: create and open

    /// Creates an empty collection at `layout` and opens it for writing. Throws `.alreadyExists`
    /// when the collection has a head already, `.invalidArgument` for a bad schema, `.io` when the
    /// store or etcd cannot be reached.
    public static func create(layout: RemoteLayout, schema: SegmentSchema, store: any ObjectStore, metadata: any MetadataStore,
                              options: RemoteOptions) async throws(StrataError) -> RemoteCollection {
        try schema.validate()
        if try await metadata.get(layout.headKey) != nil {
            throw StrataError(.alreadyExists, "a collection already exists here (its head is in etcd at \(metadata.endpoint))", path: layout.address)
        }
        // WAL objects without a head are another collection's (its etcd keys lost): replaying them
        // into a new one would bring its rows back.
        if let stray = try await store.list(prefix: layout.walPrefix).first {
            throw StrataError(.alreadyExists, "the prefix holds WAL objects but no head (a collection whose etcd keys were lost?): "
                              + "\(store.address(of: stray.key)); create refuses to reuse it", path: layout.address)
        }
        // collection.json says what the prefix holds; one left by a create of the same schema that
        // died before its commit is reused, any other is refused.
        let description = RemoteCollectionDescription(schema: schema).encoded()
        do throws(StrataError) {
            _ = try await store.put(layout.collectionObject, body: description, condition: .ifAbsent)
        } catch where error.code == .alreadyExists {
            guard try await store.get(layout.collectionObject) == description else {
                throw StrataError(.alreadyExists, "the prefix holds another collection's collection.json and no head; create refuses to reuse it",
                                  path: store.address(of: layout.collectionObject))
            }
        }
        let manifest = Manifest(generation: 1, walSequence: 1, createdMilliseconds: WallClock.milliseconds(),
                                schema: schema, segments: [], obsolete: [])
        let commit = RemoteCommit(store: store, metadata: metadata, layout: layout, nodeName: options.nodeName)
        let outcome = try await commit.publish(manifest, replacing: nil, writerToken: nil)
        guard case .committed = outcome else {
            throw StrataError(.alreadyExists, "another process created the collection at the same time", path: layout.address)
        }
        return try await open(layout: layout, access: .readWrite, store: store, metadata: metadata, options: options)
    }

    /// Opens the collection at `layout`. Read-write: takes the writer lease (`.busy` while another
    /// writer's lease lives), replays the WAL objects after the head and fences out any earlier
    /// writer. Read-only: loads the head and pins its manifest. Throws `.notFound` when there is no
    /// collection, `.io` when the store or etcd cannot be reached, `.corrupt` /
    /// `.checksumMismatch` naming the object for damage.
    public static func open(layout: RemoteLayout, access: CollectionAccess = .readWrite, store: any ObjectStore,
                            metadata: any MetadataStore, options: RemoteOptions) async throws(StrataError) -> RemoteCollection {
        let token = options.nodeName + "-" + RemoteLayout.randomHex()
        let ttl = access == .readWrite ? options.writerLeaseSeconds : options.pinLeaseSeconds
        let lease = try await LeaseKeeper.start(store: metadata, ttlSeconds: ttl)
        do throws(StrataError) {
            if access == .readWrite {
                let claim = try await metadata.txn(compare: [.createRevision(layout.writerKey, equals: 0)],
                                                   success: [.put(layout.writerKey, Array(token.utf8), lease: lease.lease)],
                                                   failure: [.get(layout.writerKey)])
                guard claim.succeeded else {
                    let holder = (claim.reads.first ?? nil).map { String(decoding: $0.value, as: UTF8.self) } ?? "?"
                    throw StrataError(.busy, "another writer (\(holder)) holds the collection's writer lease; it is taken over "
                                      + "once that lease expires", path: layout.address)
                }
            }
            let cache = try SegmentCache(options: options.cache, store: store, layout: layout)
            let loader = RemoteLoader(store: store, metadata: metadata, layout: layout, cache: cache, options: options)
            let loaded = try await loader.loadHead(reusing: nil)
            var mem = MemTable()
            var next = loaded.head.walSequence
            try await loader.replay(from: &next, into: &mem, version: loaded.version, schema: loaded.version.manifest.schema)
            if access == .readWrite {
                // Fence: the next WAL object, empty. A writer before us that still believes it holds the
                // lease finds its next sequence taken and stops; one that wrote first is replayed.
                var attempts = 0
                while true {
                    let fence = WALFormat.encodeLog([], sequence: next, schema: loaded.version.manifest.schema)
                    do {
                        _ = try await store.put(layout.walObject(next), body: fence, condition: .ifAbsent)
                        next += 1
                        break
                    } catch where error.code == .alreadyExists && attempts < 20 {
                        attempts += 1
                        try await loader.replay(from: &next, into: &mem, version: loaded.version, schema: loaded.version.manifest.schema)
                    }
                }
            }
            try await metadata.put(layout.pinKey(token), value: Array(loaded.head.manifest.utf8), lease: lease.lease)
            let state = State(head: loaded.head, headRevision: loaded.revision, version: loaded.version, mem: mem,
                              nextSequence: next, uncertain: nil, failed: nil, stale: nil)
            return RemoteCollection(layout: layout, access: access, options: options, store: store,
                                    metadata: metadata, cache: cache, token: token, lease: lease, state: state)
        } catch {
            try? await lease.revoke()
            throw error
        }
    }

    /// Stops writing, waits for the committer to finish what it started (an automatic flush may
    /// be uploading), then revokes the lease (which frees the writer key and the pin). Later writes
    /// throw; reads still answer, from the state the handle last loaded.
    public func close() async {
        state.withLock { s in
            if s.failed == nil { s.failed = StrataError(.invalidArgument, "collection is closed", path: layout.address) }
        }
        while queue.withLock({ $0.running }) { try? await Task.sleep(nanoseconds: 10_000_000) }
        try? await lease.revoke()
    }

    // MARK: reads

    /// How long a read waits for a refresh while etcd or the store was unreachable at the last one.
    static let outageRefreshWaitSeconds = 0.5

    /// The current view. A writer returns its own state (every acknowledged write is in it). A
    /// reader first picks up a newer head and WAL objects written since its last refresh (at most
    /// every ``RemoteOptions/refreshIntervalSeconds``); when etcd or the store cannot be reached it
    /// returns the last view it loaded and says so in ``RemoteSnapshot/stale``. While the last
    /// refresh found them unreachable (or a writer's lease lapsed), refreshes run in the background
    /// and reads do not wait.
    public func snapshot() async throws(StrataError) -> RemoteSnapshot {
        let (age, unreachable) = state.withLock { (monotonicSeconds() - $0.refreshedAt, $0.unreachable) }
        if age >= options.refreshIntervalSeconds {
            let lapsedWriter = access == .readWrite && !lease.isAlive
            if unreachable || lapsedWriter {
                // During an outage a read waits for a refresh at most `outageRefreshWaitSeconds`
                // (one that succeeds in time is used: the outage is over), a writer whose lease
                // lapsed not at all: a refresh would only pick up a compactor's commit.
                let refreshing = state.withLock { s -> Task<Void, Never> in
                    if let t = s.refreshing { return t }
                    let t = Task { [self] in
                        try? await refresh()
                        state.withLock { $0.refreshedAt = monotonicSeconds(); $0.refreshing = nil }
                    }
                    s.refreshing = t
                    return t
                }
                if !lapsedWriter {
                    await withTaskGroup(of: Void.self) { group in
                        group.addTask { await refreshing.value }
                        group.addTask { try? await Task.sleep(nanoseconds: UInt64(Self.outageRefreshWaitSeconds * 1e9)) }
                        await group.next()
                        group.cancelAll()
                    }
                }
            } else {
                try await refresh()
                state.withLock { $0.refreshedAt = monotonicSeconds() }
            }
        }
        return state.withLock { s in
            RemoteSnapshot(snapshot: CollectionSnapshot(version: s.version, mem: s.mem, schema: s.version.manifest.schema), stale: s.stale)
        }
    }

    /// The k nearest live rows to `query` that pass `filter` (see `CollectionSnapshot`).
    public func search(query: [Float], filter: Filter? = nil, options: SearchOptions = SearchOptions()) async throws(StrataError) -> [CollectionHit] {
        let snap = try await snapshot().snapshot
        let observer = self.options.collection.observer
        return try observer.timeSearch { () throws(StrataError) in
            var reads = GraphRecordReads()
            defer { observer.searched(reads) }
            return try snap.search(query: query, filter: filter, options: options, reads: &reads)
        }
    }

    /// A page of live rows in id order after `after` (see `CollectionSnapshot.scroll(after:limit:filter:)`).
    public func scroll(after: UInt64? = nil, limit: Int, filter: Filter? = nil) async throws(StrataError) -> ScrollPage {
        try await snapshot().snapshot.scroll(after: after, limit: limit, filter: filter)
    }

    /// The `k` live rows whose sparse vectors have the highest dot product with `query` that pass
    /// `filter`: highest score first, ties by id, `distance` the negated score (see
    /// `CollectionSnapshot.sparseSearch(query:k:filter:)`).
    public func sparseSearch(query: SparseVector, k: Int, filter: Filter? = nil) async throws(StrataError) -> [CollectionHit] {
        try await snapshot().snapshot.sparseSearch(query: query, k: k, filter: filter)
    }

    /// The live row with `id`, or nil.
    public func get(id: UInt64) async throws(StrataError) -> CollectionRecord? { try await snapshot().snapshot.get(id: id) }

    /// Number of live rows.
    public func count() async throws(StrataError) -> Int { try await snapshot().snapshot.count }

    /// Why this handle can no longer write (fenced out by another writer, its lease lost or lapsed,
    /// closed), or nil while it can. A writer with a failure may also miss writes made by the
    /// writer that replaced it: reopen rather than read from it.
    public var writeFailure: StrataError? {
        if let failed = state.withLock({ $0.failed }) { return failed }
        // A writer whose lease lapsed may already be replaced: its state no longer has every write.
        if access == .readWrite, !lease.isAlive { return Self.fenced(layout, "its writer lease in etcd expired") }
        return nil
    }

    /// Objects fetched into the cache by this handle, and their bytes.
    public var cacheFetches: (objects: Int, bytes: UInt64) { let f = cache.fetched; return (f.fetches, f.bytes) }

    /// Segments and bitmaps this handle's loads found already in the cache (no fetch).
    public var cacheHits: Int { cache.fetched.hits }

    /// Picks up a head committed by another process (a compactor; for a reader also the writer) and,
    /// for a reader, WAL objects written since the last refresh.
    func refresh() async throws(StrataError) {
        let loader = RemoteLoader(store: store, metadata: metadata, layout: layout, cache: cache, options: options)
        let current = state.withLock { s in (s.head, s.version, s.mem, s.nextSequence) }
        do throws(StrataError) {
            guard let (head, revision) = try await loader.readHead() else {
                throw StrataError(.notFound, "the collection's head is gone (the collection was deleted)", path: layout.address)
            }
            // etcd answered; a store that does not answers below sets it again.
            state.withLock { $0.unreachable = false }
            if head.generation != current.0.generation {
                if access == .readWrite, head.walSequence != current.0.walSequence {
                    // Only a writer moves the WAL sequence: this writer's own flush, committed and
                    // about to install its state, or another writer, which this one's next WAL PUT
                    // or commit finds out (fenced) without help from here.
                    return
                }
                // Pin before loading, so that gc keeps what this load reads. A pin that cannot be
                // written (the pin lease expired during an etcd outage) does not stop reads; the
                // view says so.
                var unpinned: String? = nil
                do throws(StrataError) {
                    try await metadata.put(layout.pinKey(token), value: Array(head.manifest.utf8), lease: lease.lease)
                } catch where error.code != .io {
                    unpinned = "not pinned (\(error.message)): gc may remove its objects; reopen to pin again"
                }
                let loaded: RemoteLoader.Loaded
                do throws(StrataError) {
                    loaded = try await loader.load(head, revision: revision, reusing: current.1)
                } catch where error.code == .notFound {
                    // The manifest or a file went away between reading the head and fetching it (gc
                    // removed a generation nobody pinned): the next refresh reads the head again.
                    state.withLock { $0.stale = "serving generation \(current.0.generation): generation \(head.generation) vanished while loading" }
                    return
                }
                if access == .readWrite {
                    state.withLock { s in
                        // A flush of ours may have committed meanwhile (it installs a newer head itself).
                        if s.head.generation < head.generation, s.head.walSequence == head.walSequence {
                            s.head = head; s.headRevision = revision; s.version = loaded.version
                        }
                        s.stale = unpinned
                    }
                    return
                }
                // The WAL objects after a head are encoded against its manifest's schema (it may have grown).
                var mem = MemTable()
                var next = head.walSequence
                try await loader.replay(from: &next, into: &mem, version: loaded.version, schema: loaded.version.manifest.schema)
                state.withLock { s in
                    // Two refreshes may race: never move back to an older generation.
                    guard s.head.generation < head.generation else { return }
                    s.head = head; s.headRevision = revision; s.version = loaded.version; s.mem = mem; s.nextSequence = next; s.stale = unpinned
                }
                return
            }
            guard access == .readOnly else {
                state.withLock { $0.stale = nil }
                return
            }
            var mem = current.2
            var next = current.3
            try await loader.replay(from: &next, into: &mem, version: current.1, schema: current.1.manifest.schema)
            state.withLock { s in
                if s.head.generation == current.0.generation, s.nextSequence == current.3 { s.mem = mem; s.nextSequence = next }
                s.stale = nil
            }
        } catch where error.code == .io {
            // etcd or the store is unreachable: serve the last view, and say so.
            state.withLock {
                $0.stale = "serving generation \(current.0.generation) as last loaded: \(error.message)"
                $0.unreachable = true
            }
        }
    }

    static func fenced(_ layout: RemoteLayout, _ why: String) -> StrataError {
        StrataError(.busy, "this writer was fenced out: \(why); reopen the collection", path: layout.address)
    }
}

/// What `collection.json` says: the object that marks a prefix as a Strata collection.
struct RemoteCollectionDescription: Codable {
    var format = "strata-remote-collection"
    var version = 1
    var dimension: Int
    var metric: String
    var elementType: String
    var columns: [String]

    init(schema: SegmentSchema) {
        dimension = schema.dimension
        metric = "\(schema.metric)"
        elementType = "\(schema.elementType)"
        columns = schema.columns.map(\.description)
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array((try? encoder.encode(self)) ?? Data())
    }
}

import Foundation
