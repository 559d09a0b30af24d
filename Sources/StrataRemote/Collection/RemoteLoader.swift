// Loading a remote collection's state: the head from etcd, its manifest from the store (checked
// against the head), its segments and bitmaps into the cache (a Version over the cache
// directory), and the WAL objects after it into a MemTable. Used by open and refresh, the
// compactor, gc, pull and verify.
import Strata
import StrataFormat

struct RemoteLoader: Sendable {
    let store: any ObjectStore
    let metadata: any MetadataStore
    let layout: RemoteLayout
    let cache: SegmentCache
    let options: RemoteOptions

    /// A head, opened.
    struct Loaded {
        var head: RemoteHead
        var revision: Int64
        var version: Version
    }

    /// The head and its etcd mod_revision, or nil when the collection has none.
    func readHead() async throws(StrataError) -> (RemoteHead, Int64)? {
        try await Self.readHead(metadata: metadata, layout: layout)
    }

    static func readHead(metadata: any MetadataStore, layout: RemoteLayout) async throws(StrataError) -> (RemoteHead, Int64)? {
        guard let kv = try await metadata.get(layout.headKey) else { return nil }
        return (try RemoteHead.decode(kv.value, key: layout.headKey), kv.modRevision)
    }

    /// The manifest a head names, checked against it.
    static func manifest(of head: RemoteHead, store: any ObjectStore) async throws(StrataError) -> Manifest {
        let bytes = try await store.get(head.manifest)
        return try head.checkedManifest(bytes, address: store.address(of: head.manifest))
    }

    /// The current head, opened. Throws `.notFound` when there is no collection. A manifest that
    /// vanished between reading the head and fetching it (gc removed an old one) is retried from a
    /// fresh head.
    func loadHead(reusing previous: Version?) async throws(StrataError) -> Loaded {
        var attempt = 0
        while true {
            guard let (head, revision) = try await readHead() else {
                throw StrataError(.notFound, "no collection here (no head in etcd at \(metadata.endpoint))", path: layout.address)
            }
            do {
                return try await load(head, revision: revision, reusing: previous)
            } catch where error.code == .notFound && attempt < 5 {
                attempt += 1
            }
        }
    }

    /// Opens `head`: its manifest, and its files through the cache.
    func load(_ head: RemoteHead, revision: Int64, reusing previous: Version?) async throws(StrataError) -> Loaded {
        let manifest = try await Self.manifest(of: head, store: store)
        return Loaded(head: head, revision: revision, version: try await open(manifest, reusing: previous))
    }

    /// A Version of `manifest` over the cache, fetching what is missing. A cached file that turns out
    /// damaged when opened is fetched again once.
    func open(_ manifest: Manifest, reusing previous: Version?) async throws(StrataError) -> Version {
        // Held from the fetch to the open: the eviction that ends a fetch must not remove files of
        // this manifest (a cache smaller than them) before the Version that holds them exists.
        let held = manifest.segments.flatMap { [cache.path($0.name)] + ($0.deleteFile.map { [cache.path($0)] } ?? []) }
        FileReferences.shared.retain(held)
        defer { FileReferences.shared.release(held) }
        var attempt = 0
        while true {
            try await cache.ensure(manifest)
            do {
                return try Version.open(directory: cache.directory, manifest: manifest, reusing: previous,
                                        options: options.collection.segmentOpenOptions)
            } catch where attempt == 0 && error.code != .io {
                attempt += 1
                for s in manifest.segments {
                    cache.discard(s.name)
                    if let d = s.deleteFile { cache.discard(d) }
                }
            }
        }
    }

    /// Applies the WAL objects from sequence `next` on to `mem`, in order, and moves `next` past
    /// them. Objects are fetched in parallel (8 at a time) and must be contiguous.
    func replay(from next: inout UInt64, into mem: inout MemTable, version: Version, schema: SegmentSchema) async throws(StrataError) {
        let (batches, end) = try await Self.walRecords(store: store, layout: layout, from: next, schema: schema)
        for records in batches {
            for r in records { mem.apply(r, version: version, schema: schema) }
        }
        next = end
    }

    /// The records of the WAL objects from sequence `next` on (one array per object, in order) and
    /// the sequence after the last one. Objects are fetched in parallel (8 at a time) and must be
    /// contiguous: a gap throws `.corrupt` naming the missing object.
    static func walRecords(store: any ObjectStore, layout: RemoteLayout, from next: UInt64,
                           schema: SegmentSchema) async throws(StrataError) -> (batches: [[WALRecord]], next: UInt64) {
        let found = try await store.list(prefix: layout.walPrefix, startAfter: layout.walObject(next - 1))
        var sequences: [UInt64] = []
        var expected = next
        for info in found {
            guard let s = layout.walSequence(ofKey: info.key) else { continue }
            guard s == expected else {
                throw StrataError(.corrupt, "WAL object \(expected) is missing (the next one is \(s)): acknowledged writes may be lost",
                                  path: store.address(of: layout.walObject(expected)), section: "wal")
            }
            sequences.append(s)
            expected += 1
        }
        guard !sequences.isEmpty else { return ([], next) }
        let bodies = try await fetchAll(sequences.map { layout.walObject($0) }, store: store, layout: layout)
        var batches: [[WALRecord]] = []
        for (s, bytes) in zip(sequences, bodies) {
            batches.append(try WALFormat.decodeLog(bytes, sequence: s, schema: schema, path: store.address(of: layout.walObject(s))))
        }
        return (batches, expected)
    }

    /// The objects' bytes, in the order given, fetched 8 at a time.
    static func fetchAll(_ keys: [String], store: any ObjectStore, layout: RemoteLayout) async throws(StrataError) -> [[UInt8]] {
        var out = [[UInt8]](repeating: [], count: keys.count)
        do {
            try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                var next = 0
                func add() {
                    let i = next
                    next += 1
                    group.addTask { (i, try await store.get(keys[i])) }
                }
                for _ in 0..<min(8, keys.count) { add() }
                while let (i, bytes) = try await group.next() {
                    out[i] = bytes
                    if next < keys.count { add() }
                }
            }
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError(.io, "fetching WAL objects failed: \(error)", path: layout.address)
        }
        return out
    }
}
