// A collection: a directory of immutable segments, per-segment delete bitmaps, a write-ahead log and
// a manifest that names the live set (docs/COLLECTION-FORMAT.md).
//
// Writes go to the WAL (fsynced before they return) and then to an in-memory buffer that search
// scans exactly. `flush()` seals the buffer into a segment, turns pending deletes of sealed rows
// into new delete bitmaps, starts a new WAL and publishes a manifest in one atomic rename. Reads
// take a snapshot: one manifest version (its segments, bitmaps) plus one state of the buffer,
// immutable for as long as the caller holds it.
//
// This file: the collection's options and result types, create, open, snapshots and refresh. Writes:
// Collection+Write.swift; flush: Collection+Flush.swift; the state behind a snapshot: Version.swift
// and MemTable.swift; reads over it: CollectionSnapshot.swift and LiveRows.swift.
//
// Concurrency: one writer process (LOCK), any number of read-only processes, one compactor
// (COMPACT.lock). Manifest read-modify-publish is serialised by MANIFEST.lock. Within a process,
// a Collection is safe to share between threads: writes are serialised, snapshots are values.
import CoreMetrics
import Logging
import StrataFormat
import StrataIndex
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Knobs of a ``StrataCollection``.
public struct CollectionOptions: Sendable {
    /// Flush automatically once the buffer holds this many rows. Default 20,000.
    public var flushThresholdRows: Int = 20_000
    /// Flush automatically once the buffer holds about this many bytes. Default 64 MiB.
    public var flushThresholdBytes: Int = 64 << 20
    /// Index options for flushed segments (segments below `minimumRows` get none); nil: never index.
    public var index: IndexOptions? = IndexOptions()
    /// Files dropped from the manifest are removed only after this many seconds (other processes
    /// may still be about to open them). Default 60.
    public var obsoleteFileGraceSeconds: Double = 60
    /// Rows per payload block of flushed segments.
    public var rowsPerBlock: Int = 1024
    /// Payload indexes and BM25 columns built into flushed segments (the compactor keeps those its
    /// input segments have).
    public var search = SearchSectionOptions()
    /// Open segments with ``SegmentOpenOptions/verify``: searches and reads check the checksums of
    /// the sections they touch (once per open segment) and throw `.checksumMismatch` on damage.
    /// Default false (search trusts section bytes; `strata scrub` checks them in the background).
    public var verifyReads = false
    /// Build ANN indexes in the background (Collection+BackgroundIndex.swift): a flush writes an
    /// unindexed segment (exact search) and returns; a builder thread of the writer then replaces
    /// each unindexed segment of at least `index.minimumRows` rows with an indexed copy. False: the
    /// flush builds the index itself before the write that triggered it returns. Default true;
    /// ignored when `index` is nil, when the collection is open read-only, and by remote collections
    /// (their flush indexes as before).
    public var backgroundIndex = true
    /// Back-pressure of background indexing: once the unindexed segments waiting for the builder
    /// hold more than this many rows, a write that flushes waits until the builder brings them
    /// back under it (so neither unindexed segments nor exact-scan cost grow without bound).
    /// Segments the builder failed on (damage) are not counted. Default 200,000.
    public var maxUnindexedRows = 200_000
    /// Where the collection logs (flushes at debug level); a no-op logger by default. The library
    /// prints nothing of its own.
    public var logger: Logger = .strataNoOp
    /// The factory of the collection's counters and timers (names in ``CollectionMetricNames``);
    /// nil: the process's `MetricsSystem.factory`, a no-op until the application bootstraps it.
    public var metricsFactory: (any MetricsFactory)? = nil
    /// The logger and metrics made from these options.
    package var observer: CollectionObserver { CollectionObserver(logger: logger, factory: metricsFactory) }

    /// The node cache of each indexed segment, in bytes (tests make it small to see misses).
    package var nodeCacheBudgetBytes = SegmentOpenOptions.defaultCacheBudgetBytes

    /// How this collection opens its segments.
    package var segmentOpenOptions: SegmentOpenOptions { SegmentOpenOptions(cacheBudgetBytes: nodeCacheBudgetBytes, verify: verifyReads) }

    /// Defaults.
    public init() {}
}

/// How a collection is opened.
public enum CollectionAccess: Sendable {
    /// The one writer: takes LOCK, replays and truncates the WAL, cleans its leftovers.
    case readWrite
    /// A reader: no lock; sees the manifest and the WAL as they are, refreshed on every snapshot.
    case readOnly
}

/// One search result of a collection.
public struct CollectionHit: Sendable, Equatable, Comparable, CustomStringConvertible {
    /// External id.
    public var id: UInt64
    /// Distance under the collection's metric (smaller is closer).
    public var distance: Float

    /// Creates a hit.
    public init(id: UInt64, distance: Float) {
        self.id = id
        self.distance = distance
    }

    /// Orders by distance, then id.
    public static func < (a: CollectionHit, b: CollectionHit) -> Bool {
        a.distance != b.distance ? a.distance < b.distance : a.id < b.id
    }

    /// `id@distance`.
    public var description: String { "\(id)@\(distance)" }
}

/// A live row: id, stored vector (normalised for cosine) and payload in schema column order.
public struct CollectionRecord: Sendable {
    /// External id.
    public var id: UInt64
    /// The vector as stored.
    public var vector: [Float]
    /// Payload values in schema column order.
    public var payload: [PayloadValue]
}

// MARK: - Collection

/// A collection directory opened for reading or writing.
///
/// ```swift
/// let c = try StrataCollection.create(path: "docs.coll", schema: SegmentSchema(dimension: 384))
/// try c.insert([SegmentRow(id: 1, vector: v)])
/// let hits = try c.search(query: q, options: SearchOptions(k: 10))
/// try c.flush()
/// ```
///
/// Unchecked `Sendable`: its mutable state (`version`, `mem`, `wal`, `failed`) is read and written only
/// under `stateLock` or `writeLock`.
public final class StrataCollection: @unchecked Sendable {
    /// The directory.
    public let path: String
    /// Vector shape, metric and payload columns: the current manifest's (columns may be added,
    /// ``addColumns(_:)``; a read-only handle sees them after a refresh).
    public var schema: SegmentSchema { stateLock.locked { version.manifest.schema } }
    /// How it was opened.
    public let access: CollectionAccess
    /// Options.
    public let options: CollectionOptions

    // State shared with the write path (Collection+Write.swift) and the flush (Collection+Flush.swift).
    /// Guards `version`, `mem` and `wal`; held briefly (a snapshot copies them out).
    let stateLock = Mutex(())
    /// Serialises writes and flushes.
    let writeLock = Mutex(())
    /// The manifest version writes and snapshots see.
    var version: Version
    /// The write buffer over `version`.
    var mem: MemTable
    /// The WAL records are appended to (nil read-only or once closed).
    var wal: WALWriter?
    private var writerLock: FileLock?
    /// The background index builder (nil: none; read-only, disabled or no index).
    var indexer: BackgroundIndexer?
    /// Set by a failure that leaves the state on disk unknown (a WAL append, a manifest publish):
    /// later writes throw it.
    var failed: StrataError?
    /// What replay found at open: records applied, a torn tail and where the writer kept it.
    public private(set) var recovery = WALReplaySummary()

    private init(path: String, access: CollectionAccess, options: CollectionOptions,
                 version: Version, mem: MemTable, wal: WALWriter?, writerLock: FileLock?) {
        self.path = path
        self.access = access
        self.options = options
        self.version = version
        self.mem = mem
        self.wal = wal
        self.writerLock = writerLock
    }

    /// Creates an empty collection at `path` (the directory may exist but must hold no collection
    /// file: `MANIFEST*`, `seg-*`, `wal-*`, `del-*`, `LOCK`, `COMPACT.lock` or their temporaries).
    /// Returns it opened read-write. Throws `.invalidArgument` for a bad schema, `.alreadyExists`
    /// naming the collection files found (nothing in the directory is changed), `.io` when `path`
    /// is not a directory, `.busy` when another process holds the writer lock.
    public static func create(path: String, schema: SegmentSchema, options: CollectionOptions = CollectionOptions()) throws(StrataError) -> StrataCollection {
        try schema.validate()
        // Checked before anything is created: a directory whose MANIFEST was moved aside still holds
        // acknowledged data, and a new manifest would make every file in it an unreferenced leftover
        // that the open below deletes.
        if FileSystem.isDirectory(path) { try refuseCollectionFiles(in: path, except: []) }
        try FileSystem.makeDirectory(path)
        guard FileSystem.isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
        guard let lock = try FileLock.acquire(CollectionFiles.writerLock(path), wait: false) else {
            throw StrataError(.busy, "another process has the collection open for writing", path: path)
        }
        // Again under LOCK: another create may have run between the check and the lock.
        try refuseCollectionFiles(in: path, except: ["LOCK"])
        try WALReader.create(directory: path, sequence: 1, version: WALVersion.forNewLog(after: nil))
        let manifest = Manifest(generation: 1, walSequence: 1, createdMilliseconds: WallClock.milliseconds(),
                                schema: schema, segments: [], obsolete: [])
        try manifest.publish(directory: path)
        lock.unlock()
        return try open(path: path, access: .readWrite, options: options)
    }

    /// Throws `.alreadyExists` naming the collection files in `path` (other than `except`).
    private static func refuseCollectionFiles(in path: String, except: Set<String>) throws(StrataError) {
        let found = try FileSystem.list(path).filter { CollectionFiles.isCollectionFile($0) && !except.contains($0) }.sorted()
        guard !found.isEmpty else { return }
        let shown = found.prefix(20).joined(separator: ", ") + (found.count > 20 ? ", ... (\(found.count) in all)" : "")
        let what = found.contains("MANIFEST") ? "a collection already exists here"
            : "the directory holds collection files without a MANIFEST (moved or lost?)"
        throw StrataError(.alreadyExists, "\(what): \(shown); create refuses to overwrite them and changed nothing", path: path)
    }

    /// Opens the collection at `path`. Read-write: takes the writer lock (`.busy` when
    /// another process holds it), replays the WAL, then removes the writer's leftovers from a crash
    /// and moves a torn WAL tail into a side file (`wal-<seq>.log.torn-<offset>`). A damaged WAL
    /// record throws `.checksumMismatch` / `.corrupt` (file, section "wal", offset) before anything
    /// on disk changes; `strata recover` cuts it. Read-only: replays without changing anything. A
    /// directory without a readable MANIFEST is refused before anything is locked or removed:
    /// `.corrupt` when it holds segments, bitmaps or WALs, `.io` when it is not a collection.
    public static func open(path: String, access: CollectionAccess = .readWrite, options: CollectionOptions = CollectionOptions()) throws(StrataError) -> StrataCollection {
        guard FileSystem.isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
        var lock: FileLock? = nil
        if access == .readWrite {
            // Cleanup below removes files the manifest does not reference: never without one.
            _ = try Manifest.read(directory: path)
            guard let l = try FileLock.acquire(CollectionFiles.writerLock(path), wait: false) else {
                throw StrataError(.busy, "another process has the collection open for writing", path: path)
            }
            lock = l
        }
        var attempt = 0
        while true {
            do {
                let manifest = try Manifest.read(directory: path)
                let version = try Version.open(directory: path, manifest: manifest, reusing: nil, options: options.segmentOpenOptions)
                let walPath = "\(path)/\(CollectionFiles.walName(manifest.walSequence))"
                // Read (and refuse damage) before the writer changes anything on disk.
                let read = try WALReader.read(path: walPath, sequence: manifest.walSequence, schema: manifest.schema)
                let mem = MemTable(replaying: read, version: version, schema: manifest.schema)
                var wal: WALWriter? = nil
                var summary = WALReplaySummary(records: read.records.count, droppedBytes: read.droppedBytes, walFormat: read.version.description)
                if access == .readWrite {
                    try Maintenance.cleanUp(directory: path, owner: .writer, graceSeconds: options.obsoleteFileGraceSeconds)
                    if read.isTorn { summary.tornTailFile = try WALTornTail.cut(path: walPath, at: read.validLength) }
                    wal = try WALWriter(path: walPath, sequence: manifest.walSequence, version: read.version,
                                        validLength: read.validLength, nextRecordNumber: read.nextRecordNumber)
                }
                let c = StrataCollection(path: path, access: access, options: options,
                                   version: version, mem: mem, wal: wal, writerLock: lock)
                c.recovery = summary
                c.startBackgroundIndexing()
                return c
            } catch {
                // A publish by another process can remove obsolete files this open was about to use.
                attempt += 1
                if error.code == .io, error.errno == ENOENT, attempt < 20 { continue }
                throw error
            }
        }
    }

    /// Stops the background index builder (a build in flight is abandoned and its file removed),
    /// releases the writer lock and the WAL. Later writes throw.
    public func close() {
        indexer?.stop()
        writeLock.locked {
            stateLock.locked {
                wal?.close()
                wal = nil
                writerLock?.unlock()
                writerLock = nil
                if failed == nil { failed = StrataError(.invalidArgument, "collection is closed", path: path) }
            }
        }
    }

    // MARK: snapshots

    /// The current state as an immutable snapshot (after picking up a manifest published by
    /// another process, and, read-only, WAL records appended since the last call).
    public func snapshot() throws(StrataError) -> CollectionSnapshot {
        try refresh()
        return stateLock.locked { CollectionSnapshot(version: version, mem: mem, schema: version.manifest.schema) }
    }

    /// Picks up a newer manifest (from a compactor or, read-only, from the writer) and new WAL records.
    public func refresh() throws(StrataError) {
        var attempt = 0
        while true {
            do {
                try refreshOnce()
                return
            } catch {
                attempt += 1
                if error.code == .io, error.errno == ENOENT, attempt < 20 { continue }
                throw error
            }
        }
    }

    private func refreshOnce() throws(StrataError) {
        let manifest = try Manifest.read(directory: path)
        let (current, currentMem) = stateLock.locked { (version, mem) }
        if manifest.generation > current.manifest.generation {
            // Only the writer process rotates the WAL (it holds LOCK): in the writer, a newer WAL means
            // our own flush has published and is about to install its version, which includes this one.
            if access == .readWrite, manifest.walSequence != current.manifest.walSequence { return }
            let next = try Version.open(directory: path, manifest: manifest, reusing: current, options: options.segmentOpenOptions)
            if access == .readWrite {
                stateLock.locked { if manifest.generation > version.manifest.generation { version = next } }
            } else {
                // The new manifest's WAL is encoded against the new manifest's schema (it may have grown).
                let walPath = "\(path)/\(CollectionFiles.walName(manifest.walSequence))"
                let read = try WALReader.read(path: walPath, sequence: manifest.walSequence, schema: manifest.schema)
                let m = MemTable(replaying: read, version: next, schema: manifest.schema)
                stateLock.locked {
                    if manifest.generation > version.manifest.generation {
                        version = next
                        mem = m
                    }
                }
            }
        } else if access == .readOnly {
            let walPath = "\(path)/\(CollectionFiles.walName(current.manifest.walSequence))"
            let read = try WALReader.read(path: walPath, sequence: current.manifest.walSequence, schema: current.manifest.schema,
                                          from: currentMem.walOffset, nextRecord: currentMem.walNextRecord)
            guard !read.records.isEmpty else { return }
            var m = currentMem
            m.apply(read, version: current, schema: current.manifest.schema)
            stateLock.locked {
                if version === current, mem.walOffset == currentMem.walOffset { mem = m }
            }
        }
    }

    /// Searches the current snapshot. See ``CollectionSnapshot/search(query:options:)``.
    public func search(query: [Float], options: SearchOptions = SearchOptions()) throws(StrataError) -> [CollectionHit] {
        try observedSearch(query: query, filter: nil, options: options)
    }

    /// The k nearest live rows that pass `filter` (see ``CollectionSnapshot/search(query:filter:options:)``).
    public func search(query: [Float], filter: Filter, options: SearchOptions = SearchOptions()) throws(StrataError) -> [CollectionHit] {
        try observedSearch(query: query, filter: filter, options: options)
    }

    /// Runs a search of the current snapshot under the search metrics (its time, its node-cache
    /// hits and misses).
    private func observedSearch(query: [Float], filter: Filter?, options: SearchOptions) throws(StrataError) -> [CollectionHit] {
        let observer = self.options.observer
        return try observer.timeSearch { () throws(StrataError) in
            var reads = GraphRecordReads()
            defer { observer.searched(reads) }
            return try snapshot().search(query: query, filter: filter, options: options, reads: &reads)
        }
    }

    /// The live row with `id`, or nil.
    public func get(id: UInt64) throws(StrataError) -> CollectionRecord? { try snapshot().get(id: id) }

    /// Number of live rows.
    public func count() throws(StrataError) -> Int { try snapshot().count }
}
