// A collection: a directory of immutable segments, per-segment delete bitmaps, a write-ahead log and
// a manifest that names the live set (docs/FORMAT.md, "Collections").
//
// Writes go to the WAL (fsynced before they return) and then to an in-memory buffer that search
// scans exactly. `flush()` seals the buffer into a segment, turns pending deletes of sealed rows
// into new delete bitmaps, starts a new WAL and publishes a manifest in one atomic rename. Reads
// take a snapshot: one manifest version (its segments, bitmaps) plus one state of the buffer,
// immutable for as long as the caller holds it.
//
// Concurrency: one writer process (LOCK), any number of read-only processes, one compactor
// (COMPACT.lock). Manifest read-modify-publish is serialised by MANIFEST.lock. Within a process,
// a Collection is safe to share between threads: writes are serialised, snapshots are values.
import CStrataKernels
#if canImport(Glibc)
import Glibc
#endif

/// Knobs of a ``Collection``.
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

    /// How this collection opens its segments.
    var segmentOpenOptions: SegmentOpenOptions { SegmentOpenOptions(verify: verifyReads) }

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

// MARK: - Internal state

/// Process-wide reference counts of collection files held by open versions, so that an obsolete
/// file is never removed while a reader of this process may use it.
final class FileReferences: @unchecked Sendable {
    static let shared = FileReferences()
    private let lock = PThreadLock()
    private var counts: [String: Int] = [:]

    func retain(_ paths: [String]) { lock.locked { for p in paths { counts[p, default: 0] += 1 } } }
    func release(_ paths: [String]) {
        lock.locked {
            for p in paths {
                let n = (counts[p] ?? 1) - 1
                counts[p] = n > 0 ? n : nil
            }
        }
    }
    func isReferenced(_ path: String) -> Bool { lock.locked { counts[path] != nil } }
}

/// A plain pthread mutex (no `sending` constraints on the closure).
final class PThreadLock: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    init() {
        m = .allocate(capacity: 1)
        pthread_mutex_init(m, nil)
    }
    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }
    @inline(__always)
    func locked<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }
}

/// A segment of a version, opened, with its delete bitmap.
struct OpenSegment: @unchecked Sendable {
    var entry: ManifestSegment
    var segment: Segment
    var bitmap: DeleteBitmap?

    @inline(__always) func isDeleted(row: Int) -> Bool { bitmap?.contains(row) ?? false }
}

/// One manifest version, opened. Holds references on its files while alive.
final class Version: @unchecked Sendable {
    let directory: String
    let manifest: Manifest
    let segments: [OpenSegment]
    private let paths: [String]

    init(directory: String, manifest: Manifest, segments: [OpenSegment]) {
        self.directory = directory
        self.manifest = manifest
        self.segments = segments
        paths = manifest.referencedFiles.map { "\(directory)/\($0)" }
        FileReferences.shared.retain(paths)
    }

    deinit { FileReferences.shared.release(paths) }

    /// Opens the segments and bitmaps of `manifest`, reusing those already open in `previous`.
    static func open(directory: String, manifest: Manifest, reusing previous: Version?,
                     options: SegmentOpenOptions = SegmentOpenOptions()) throws(StrataError) -> Version {
        var bySegment: [String: OpenSegment] = [:]
        for s in previous?.segments ?? [] { bySegment[s.entry.name] = s }
        var list: [OpenSegment] = []
        for entry in manifest.segments {
            let segment: Segment
            if let old = bySegment[entry.name] { segment = old.segment } else {
                segment = try Segment.open(path: "\(directory)/\(entry.name)", options: options)
                // Replay and writes look ids up in every segment and treat a failed look-up as "not
                // there": with verified reads, check those sections now so that damage throws.
                if options.verify { try segment.checkSectionChecksums([.schema, .ids, .idIndex]) }
            }
            guard UInt64(segment.rowCount) == entry.rowCount, segment.schema.dimension == manifest.schema.dimension,
                  segment.schema.metric == manifest.schema.metric, segment.schema.columns == manifest.schema.columns else {
                throw StrataError(.corrupt, "segment \(entry.name) does not match its manifest entry (rows, dimension, metric or columns)",
                                  path: CollectionFiles.manifest(directory), section: "manifest")
            }
            var bitmap: DeleteBitmap? = nil
            if let d = entry.deleteFile {
                if let old = bySegment[entry.name], old.entry.deleteFile == d { bitmap = old.bitmap } else {
                    bitmap = try DeleteBitmap.read(path: "\(directory)/\(d)")
                }
                guard bitmap!.rowCount == segment.rowCount, UInt64(bitmap!.deletedCount) == entry.deletedCount else {
                    throw StrataError(.corrupt, "delete bitmap \(d) does not match segment \(entry.name)", path: "\(directory)/\(d)", section: "delete_bitmap")
                }
            }
            list.append(OpenSegment(entry: entry, segment: segment, bitmap: bitmap))
        }
        return Version(directory: directory, manifest: manifest, segments: list)
    }

    /// Where `id` lives among the sealed segments, ignoring rows deleted by bitmaps (newest first).
    func locate(_ id: UInt64) -> (segment: Int, row: Int)? {
        for i in segments.indices.reversed() {
            if let row = try? segments[i].segment.row(forId: id), !segments[i].isDeleted(row: row) { return (i, row) }
        }
        return nil
    }
}

/// A sealed batch of buffered rows (immutable once built).
final class BufferChunk: @unchecked Sendable {
    let ids: [UInt64]
    /// Vectors as a segment would store them (normalised for cosine, rounded for float16), row-major.
    let vectors: [Float]
    let values: [[PayloadValue]]
    let dimension: Int

    init(rows: [BufferedInput], schema: SegmentSchema) {
        dimension = schema.dimension
        ids = rows.map(\.id)
        values = rows.map(\.values)
        var v: [Float] = []
        v.reserveCapacity(rows.count * schema.dimension)
        for row in rows { v += storedForm(row.vector, schema: schema) }
        vectors = v
    }

    var approximateBytes: Int { ids.count * (8 + 4 * dimension + 16 * max(1, values.first?.count ?? 1)) }

    func vector(_ row: Int) -> [Float] { Array(vectors[(row * dimension)..<((row + 1) * dimension)]) }
}

/// The vector a segment would store for `input` (the writer's normalisation, in Double).
func storedForm(_ input: [Float], schema: SegmentSchema) -> [Float] {
    var out = input
    if schema.metric == .cosine {
        var n: Double = 0
        for x in input { n += Double(x) * Double(x) }
        let norm = n.squareRoot()
        for d in out.indices { out[d] = Float(Double(input[d]) / norm) }
    }
    if schema.elementType == .float16 {
        for d in out.indices { out[d] = Float(Float16(out[d])) }
    }
    return out
}

/// Where a buffered row sits: chunk number and row in it.
struct BufferLocation: Hashable, Comparable {
    var chunk: Int32
    var row: Int32
    static func < (a: BufferLocation, b: BufferLocation) -> Bool { (a.chunk, a.row) < (b.chunk, b.row) }
}

/// The write buffer: rows written since the last flush and deletes of sealed rows not yet in a
/// bitmap. A value type: a snapshot copies it (copy-on-write, so the copy is O(1) until the writer
/// changes it).
struct MemTable: @unchecked Sendable {
    var chunks: [BufferChunk] = []
    /// Live buffered rows by id.
    var index: [UInt64: BufferLocation] = [:]
    /// Ids deleted (or replaced by an upsert) whose old row is in a sealed segment.
    var sealedDeletes: Set<UInt64> = []
    var bytes = 0
    /// Records applied (for read-only incremental WAL reading: how far the log was read, and the
    /// number the next record there must carry).
    var walOffset: UInt64 = UInt64(WALFormat.headerLength)
    var walNextRecord: UInt64 = 1
    var walVersion = WALVersion.current

    var isEmpty: Bool { index.isEmpty && sealedDeletes.isEmpty && chunks.isEmpty }

    /// Whether `id` is live in `version` after this buffer's deletes.
    func isLiveSealed(_ id: UInt64, in version: Version) -> Bool {
        !sealedDeletes.contains(id) && version.locate(id) != nil
    }

    /// Whether `id` is live anywhere.
    func isLive(_ id: UInt64, in version: Version) -> Bool {
        index[id] != nil || isLiveSealed(id, in: version)
    }

    /// Applies one record. Inserts are applied as upserts (an insert of a live id was refused before
    /// it reached the WAL, so both agree on every record that was written).
    mutating func apply(_ record: WALRecord, version: Version, schema: SegmentSchema) {
        switch record {
        case .put(let rows, _):
            guard !rows.isEmpty else { return }
            let chunk = BufferChunk(rows: rows, schema: schema)
            let c = Int32(chunks.count)
            chunks.append(chunk)
            bytes += chunk.approximateBytes
            for (r, row) in rows.enumerated() {
                if index[row.id] == nil, isLiveSealed(row.id, in: version) { sealedDeletes.insert(row.id) }
                index[row.id] = BufferLocation(chunk: c, row: Int32(r))
            }
        case .delete(let ids):
            for id in ids {
                index.removeValue(forKey: id)
                if isLiveSealed(id, in: version) { sealedDeletes.insert(id) }
            }
        }
    }

    /// Live buffered rows in insertion order.
    var liveLocations: [BufferLocation] { index.values.sorted() }
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
public final class StrataCollection: @unchecked Sendable {
    /// The directory.
    public let path: String
    /// Vector shape, metric and payload columns.
    public let schema: SegmentSchema
    /// How it was opened.
    public let access: CollectionAccess
    /// Options.
    public let options: CollectionOptions

    private let stateLock = PThreadLock()
    private let writeLock = PThreadLock()
    private var version: Version
    private var mem: MemTable
    private var wal: WALWriter?
    private var writerLock: FileLock?
    private var failed: StrataError?
    /// What replay found at open: records applied, a torn tail and where the writer kept it.
    public private(set) var recovery = WALReplaySummary()

    private init(path: String, schema: SegmentSchema, access: CollectionAccess, options: CollectionOptions,
                 version: Version, mem: MemTable, wal: WALWriter?, writerLock: FileLock?) {
        self.path = path
        self.schema = schema
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
        if CollectionFS.isDirectory(path) { try refuseCollectionFiles(in: path, except: []) }
        try CollectionFS.makeDirectory(path)
        guard CollectionFS.isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
        guard let lock = try FileLock.acquire(CollectionFiles.writerLock(path), wait: false) else {
            throw StrataError(.busy, "another process has the collection open for writing", path: path)
        }
        // Again under LOCK: another create may have run between the check and the lock.
        try refuseCollectionFiles(in: path, except: ["LOCK"])
        try WALReader.create(directory: path, sequence: 1)
        let manifest = Manifest(generation: 1, walSequence: 1, createdMilliseconds: CollectionFS.nowMilliseconds(),
                                schema: schema, segments: [], obsolete: [])
        try manifest.publish(directory: path)
        lock.unlock()
        return try open(path: path, access: .readWrite, options: options)
    }

    /// Throws `.alreadyExists` naming the collection files in `path` (other than `except`).
    private static func refuseCollectionFiles(in path: String, except: Set<String>) throws(StrataError) {
        let found = try CollectionFS.list(path).filter { CollectionFiles.isCollectionFile($0) && !except.contains($0) }.sorted()
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
        guard CollectionFS.isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
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
                var mem = MemTable()
                for r in read.records { mem.apply(r, version: version, schema: manifest.schema) }
                mem.walOffset = read.validLength
                mem.walNextRecord = read.nextRecordNumber
                mem.walVersion = read.version
                var wal: WALWriter? = nil
                var summary = WALReplaySummary(records: read.records.count, droppedBytes: read.droppedBytes, walFormat: read.version.description)
                if access == .readWrite {
                    try Maintenance.cleanUp(directory: path, owner: .writer, graceSeconds: options.obsoleteFileGraceSeconds)
                    if read.isTorn { summary.tornTailFile = try WALTornTail.cut(path: walPath, at: read.validLength) }
                    wal = try WALWriter(path: walPath, sequence: manifest.walSequence, version: read.version,
                                        validLength: read.validLength, nextRecordNumber: read.nextRecordNumber)
                }
                let c = StrataCollection(path: path, schema: manifest.schema, access: access, options: options,
                                   version: version, mem: mem, wal: wal, writerLock: lock)
                c.recovery = summary
                return c
            } catch {
                // A publish by another process can remove obsolete files this open was about to use.
                attempt += 1
                if error.code == .io, error.errno == ENOENT, attempt < 20 { continue }
                throw error
            }
        }
    }

    /// Releases the writer lock and the WAL. Later writes throw.
    public func close() {
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
        return stateLock.locked { CollectionSnapshot(version: version, mem: mem, schema: schema) }
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
                let walPath = "\(path)/\(CollectionFiles.walName(manifest.walSequence))"
                let read = try WALReader.read(path: walPath, sequence: manifest.walSequence, schema: schema)
                var m = MemTable()
                for r in read.records { m.apply(r, version: next, schema: schema) }
                m.walOffset = read.validLength
                m.walNextRecord = read.nextRecordNumber
                m.walVersion = read.version
                stateLock.locked {
                    if manifest.generation > version.manifest.generation {
                        version = next
                        mem = m
                    }
                }
            }
        } else if access == .readOnly {
            let walPath = "\(path)/\(CollectionFiles.walName(current.manifest.walSequence))"
            let read = try WALReader.read(path: walPath, sequence: current.manifest.walSequence, schema: schema,
                                          from: currentMem.walOffset, nextRecord: currentMem.walNextRecord)
            guard !read.records.isEmpty else { return }
            var m = currentMem
            for r in read.records { m.apply(r, version: current, schema: schema) }
            m.walOffset = read.validLength
            m.walNextRecord = read.nextRecordNumber
            stateLock.locked {
                if version === current, mem.walOffset == currentMem.walOffset { mem = m }
            }
        }
    }

    /// Searches the current snapshot. See ``CollectionSnapshot/search(query:options:)``.
    public func search(query: [Float], options: SearchOptions = SearchOptions()) throws(StrataError) -> [CollectionHit] {
        try snapshot().search(query: query, options: options)
    }

    /// The k nearest live rows that pass `filter` (see ``CollectionSnapshot/search(query:filter:options:)``).
    public func search(query: [Float], filter: Filter, options: SearchOptions = SearchOptions()) throws(StrataError) -> [CollectionHit] {
        try snapshot().search(query: query, filter: filter, options: options)
    }

    /// The live row with `id`, or nil.
    public func get(id: UInt64) throws(StrataError) -> CollectionRecord? { try snapshot().get(id: id) }

    /// Number of live rows.
    public func count() throws(StrataError) -> Int { try snapshot().count }

    // MARK: writes

    /// Inserts rows; durable when this returns. Throws `.duplicateId` when an id repeats in the
    /// batch or is already live (use ``upsert(_:)`` to replace), `.dimensionMismatch`,
    /// `.nonFiniteValue`, `.invalidValue` (see ``VectorLimits``), `.unknownColumn`, `.typeMismatch`,
    /// `.invalidArgument`. A rejected batch writes nothing. May flush when the buffer passes its threshold.
    public func insert(_ rows: [SegmentRow]) throws(StrataError) { try put(rows, upsert: false) }

    /// Inserts rows, replacing live rows with the same ids (delete old + insert new, atomically per
    /// batch); durable when this returns. Duplicate ids within the batch throw `.duplicateId`.
    public func upsert(_ rows: [SegmentRow]) throws(StrataError) { try put(rows, upsert: true) }

    /// Deletes rows by id; durable when this returns. Ids that are not live are ignored (as Qdrant
    /// does: deleting is idempotent); returns how many rows were deleted.
    @discardableResult
    public func delete(ids: [UInt64]) throws(StrataError) -> Int {
        try writeLock.locked { () throws(StrataError) -> Int in
            try checkWritable()
            let (v, m) = stateLock.locked { (version, mem) }
            var seen = Set<UInt64>()
            let live = ids.filter { seen.insert($0).inserted && m.isLive($0, in: v) }
            guard !live.isEmpty else { return 0 }
            try append(.delete(ids: live))
            return live.count
        }
    }

    private func checkWritable() throws(StrataError) {
        guard access == .readWrite else { throw StrataError(.invalidArgument, "collection is open read-only", path: path) }
        if let failed { throw StrataError(failed.code, "collection is unusable after an earlier failure: \(failed.message)", path: path) }
    }

    private func put(_ rows: [SegmentRow], upsert: Bool) throws(StrataError) {
        try writeLock.locked { () throws(StrataError) in
            try checkWritable()
            let inputs = try validate(rows)
            if !upsert {
                let (v, m) = stateLock.locked { (version, mem) }
                for r in inputs where m.isLive(r.id, in: v) {
                    throw StrataError(.duplicateId, "id \(r.id) already exists (use upsert to replace it)", path: path)
                }
            }
            guard !inputs.isEmpty else { return }
            try append(.put(rows: inputs, upsert: upsert))
            let (rowsBuffered, bytes) = stateLock.locked { (mem.index.count, mem.bytes) }
            if rowsBuffered >= options.flushThresholdRows || bytes >= options.flushThresholdBytes {
                _ = try flushLocked()
            }
        }
    }

    /// Appends a record durably, then applies it to the buffer. Call with writeLock held.
    private func append(_ record: WALRecord) throws(StrataError) {
        guard let wal else { throw StrataError(.invalidArgument, "collection is closed", path: path) }
        try WALFormat.checkSize(record, path: path)
        do {
            try wal.append(record, schema: schema)
        } catch {
            failed = error
            throw error
        }
        stateLock.locked {
            mem.apply(record, version: version, schema: schema)
            mem.walOffset = wal.length
            mem.walNextRecord = wal.nextRecordNumber
        }
    }

    /// Checks a batch against the schema before anything is written. `rowLabel` names row `n` (of
    /// id `id`) in errors; by default `row n (id X)`, the row within the batch.
    func validate(_ rows: [SegmentRow], rowLabel: ((_ n: Int, _ id: UInt64) -> String)? = nil) throws(StrataError) -> [BufferedInput] {
        var seen = Set<UInt64>()
        var out: [BufferedInput] = []
        out.reserveCapacity(rows.count)
        for (n, row) in rows.enumerated() {
            let label = rowLabel?(n, row.id) ?? "row \(n) (id \(row.id))"
            guard seen.insert(row.id).inserted else {
                throw StrataError(.duplicateId, "id \(row.id) appears twice in the batch", path: path)
            }
            guard row.vector.count == schema.dimension else {
                throw StrataError(.dimensionMismatch, "\(label): vector has \(row.vector.count) dimensions, collection has \(schema.dimension)", path: path)
            }
            var norm: Double = 0
            for (d, x) in row.vector.enumerated() {
                guard x.isFinite else { throw StrataError(.nonFiniteValue, "\(label): element \(d) is \(x)", path: path) }
                if schema.elementType == .float16, abs(x) > 65504 {
                    throw StrataError(.nonFiniteValue, "\(label): element \(d) = \(x) overflows float16", path: path)
                }
                norm += Double(x) * Double(x)
            }
            try VectorLimits.check(squaredNorm: norm, what: label, path: path)
            if schema.metric == .cosine, !(norm > 0) {
                throw StrataError(.invalidValue, "\(label): a zero vector has no cosine direction", path: path)
            }
            var values = [PayloadValue](repeating: .null, count: schema.columns.count)
            for (name, value) in row.payload {
                let i: Int
                do { i = try schema.columnIndex(named: name) } catch {
                    throw StrataError(.unknownColumn, "\(label): \(error.message)", path: path)
                }
                values[i] = value
            }
            for (value, spec) in zip(values, schema.columns) {
                guard value.fits(spec.type, nullable: spec.nullable) else {
                    if case .null = value { throw StrataError(.typeMismatch, "\(label): column '\(spec.name)' is not nullable", path: path) }
                    throw StrataError(.typeMismatch, "\(label): column '\(spec.name)' is \(spec.type), got \(value)", path: path)
                }
                var bytes = 0
                if case .string(let s) = value { bytes = s.utf8.count }
                if case .stringList(let l) = value { bytes = l.reduce(0) { $0 + $1.utf8.count } + 4 * l.count }
                guard bytes <= SegmentWriter.maximumValueBytes else {
                    throw StrataError(.invalidValue, "\(label): a payload value of \(bytes) bytes exceeds \(SegmentWriter.maximumValueBytes)", path: path)
                }
            }
            out.append(BufferedInput(id: row.id, vector: row.vector, values: values))
        }
        return out
    }

    // MARK: flush

    /// What a flush did.
    public struct FlushSummary: Sendable {
        /// The new segment (nil when only deletes were flushed).
        public var segment: String?
        /// Rows sealed into it.
        public var rows: Int
        /// Its size in bytes.
        public var bytes: UInt64
        /// Delete bitmaps written.
        public var bitmapsWritten: Int
        /// Pending deletes of sealed rows turned into bitmap bits.
        public var deletesApplied: Int
        /// Manifest generation published.
        public var generation: UInt64
        /// Wall time.
        public var seconds: Double
    }

    /// Seals the buffer into a new segment (with an index when it has enough rows), writes delete
    /// bitmaps for pending deletes of sealed rows, starts a new WAL and publishes a manifest.
    /// Returns nil when there was nothing to flush.
    @discardableResult
    public func flush() throws(StrataError) -> FlushSummary? {
        try writeLock.locked { () throws(StrataError) -> FlushSummary? in
            try checkWritable()
            return try flushLocked()
        }
    }

    private func flushLocked() throws(StrataError) -> FlushSummary? {
        let start = monotonicSeconds()
        let (m, oldVersion) = stateLock.locked { (mem, version) }
        guard !m.isEmpty, let oldWAL = wal else { return nil }
        var created: [String] = []
        do throws(StrataError) {
            // 1. The buffer's live rows into a new segment (durable, not yet referenced).
            var newEntry: ManifestSegment? = nil
            let live = m.liveLocations
            if !live.isEmpty {
                let name = CollectionFiles.newSegmentName(.writer)
                var wo = SegmentWriterOptions()
                wo.rowsPerBlock = options.rowsPerBlock
                wo.index = options.index
                wo.search = options.search
                let writer = try SegmentWriter(path: "\(path)/\(name)", schema: schema, options: wo)
                created.append(name)
                for loc in live {
                    let chunk = m.chunks[Int(loc.chunk)]
                    let r = Int(loc.row)
                    try chunk.vectors.withBytes { (raw) throws(StrataError) in
                        let v = UnsafeBufferPointer(rebasing: raw.bindMemory(to: Float.self)[(r * schema.dimension)..<((r + 1) * schema.dimension)])
                        try writer.appendAdmitted(id: chunk.ids[r], vector: v, values: chunk.values[r])
                    }
                }
                let summary = try writer.finish()
                newEntry = ManifestSegment(name: name, deleteFile: nil, rowCount: UInt64(summary.rowCount), deletedCount: 0,
                                           fileBytes: summary.fileBytes, indexed: summary.sections.contains { $0.kind == .graph })
            }
            // 2. The next WAL (durable, not yet referenced).
            let nextSequence = oldVersion.manifest.walSequence + 1
            let nextWALName = CollectionFiles.walName(nextSequence)
            // Creating it renames over any file of that name. Open removed an empty leftover; one that
            // is still here holds records no manifest of ours accounts for: refuse, never overwrite.
            guard !FileSystem.exists("\(path)/\(nextWALName)") else {
                throw StrataError(.alreadyExists, "\(nextWALName) already exists and holds records the manifest (WAL \(oldVersion.manifest.walSequence)) "
                                  + "does not account for (an older MANIFEST put back?); flush refuses to overwrite it: move it away",
                                  path: "\(path)/\(nextWALName)")
            }
            try WALReader.create(directory: path, sequence: nextSequence)
            created.append(nextWALName)
            // 3. Under MANIFEST.lock: the current manifest (a compactor may have published),
            //    bitmaps for pending deletes, the new manifest.
            guard let mlock = try FileLock.acquire(CollectionFiles.manifestLock(path), wait: true) else {
                throw StrataError(.io, "cannot lock the manifest", path: path)
            }
            defer { mlock.unlock() }
            let current = try Manifest.read(directory: path)
            guard current.walSequence == oldVersion.manifest.walSequence else {
                throw StrataError(.corrupt, "the manifest names WAL \(current.walSequence), this writer holds \(oldVersion.manifest.walSequence)",
                                  path: CollectionFiles.manifest(path), section: "manifest")
            }
            let fresh = current.generation == oldVersion.manifest.generation ? oldVersion
                : try Version.open(directory: path, manifest: current, reusing: oldVersion, options: options.segmentOpenOptions)
            // Pending deletes resolve to rows through every sealed segment's id_index and ids (newest
            // first), here and when the WAL's records were applied (an upsert or delete whose id the
            // look-up missed is no pending delete at all); the bitmaps written below carry the old
            // ones forward (checked when read). Check those sections before publishing a bitmap or
            // retiring a WAL that depends on them (once per open segment).
            for s in fresh.segments { try s.segment.checkSectionChecksums([.ids, .idIndex]) }
            var changed: [Int: DeleteBitmap] = [:]
            var applied = 0
            for id in m.sealedDeletes {
                guard let (s, row) = fresh.locate(id) else { continue }
                if changed[s] == nil { changed[s] = fresh.segments[s].bitmap ?? DeleteBitmap(rowCount: fresh.segments[s].segment.rowCount) }
                if changed[s]!.insert(row) { applied += 1 }
            }
            let now = CollectionFS.nowMilliseconds()
            var next = current
            next.generation = current.generation + 1
            next.walSequence = nextSequence
            next.createdMilliseconds = now
            var newSegments = fresh.segments
            for (s, bitmap) in changed {
                let name = CollectionFiles.newBitmapName(.writer)
                try bitmap.write(to: "\(path)/\(name)")
                created.append(name)
                if let old = next.segments[s].deleteFile { next.obsolete.append(ObsoleteFile(name: old, sinceMilliseconds: now)) }
                next.segments[s].deleteFile = name
                next.segments[s].deletedCount = UInt64(bitmap.deletedCount)
                newSegments[s].entry = next.segments[s]
                newSegments[s].bitmap = bitmap
            }
            if let newEntry {
                next.segments.append(newEntry)
                newSegments.append(OpenSegment(entry: newEntry, segment: try Segment.open(path: "\(path)/\(newEntry.name)", options: options.segmentOpenOptions),
                                               bitmap: nil))
            }
            next.obsolete.append(ObsoleteFile(name: CollectionFiles.walName(oldVersion.manifest.walSequence), sinceMilliseconds: now))
            Maintenance.collectGarbage(&next, directory: path, graceSeconds: options.obsoleteFileGraceSeconds, now: now)
            let nextWAL = try WALWriter(path: "\(path)/\(nextWALName)", sequence: nextSequence, version: .current,
                                        validLength: UInt64(WALFormat.headerLength), nextRecordNumber: 1)
            do {
                try next.publish(directory: path)
            } catch {
                // The rename may have happened (the directory fsync comes after it), so the MANIFEST
                // on disk may name the new segment, bitmaps and WAL: keep them (unreferenced, they are
                // leftovers the next open removes) and refuse further writes, since this handle
                // cannot know which WAL the disk names.
                created = []
                failed = error
                nextWAL.close()
                throw error
            }
            // Published: from here on nothing may fail.
            created = []
            let nextVersion = Version(directory: path, manifest: next, segments: newSegments)
            stateLock.locked {
                version = nextVersion
                mem = MemTable()
                wal = nextWAL
            }
            oldWAL.close()
            return FlushSummary(segment: newEntry?.name, rows: newEntry.map { Int($0.rowCount) } ?? 0, bytes: newEntry?.fileBytes ?? 0,
                                bitmapsWritten: changed.count, deletesApplied: applied, generation: next.generation,
                                seconds: monotonicSeconds() - start)
        } catch {
            for name in created { FileSystem.removeIfPresent("\(path)/\(name)") }
            throw error
        }
    }
}

/// Monotonic seconds.
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

// MARK: - Snapshot reads

/// One immutable view of a collection: a manifest version and a buffer state. Holding it keeps
/// its segment files in use (they are not removed by this process while it lives).
public struct CollectionSnapshot: @unchecked Sendable {
    let version: Version
    let mem: MemTable
    /// The schema.
    public let schema: SegmentSchema

    /// Manifest generation of this snapshot.
    public var generation: UInt64 { version.manifest.generation }

    /// Live rows.
    public var count: Int {
        var n = mem.index.count - mem.sealedDeletes.count
        for s in version.segments { n += s.segment.rowCount - (s.bitmap?.deletedCount ?? 0) }
        return n
    }

    /// The live row with `id`, or nil.
    public func get(id: UInt64) throws(StrataError) -> CollectionRecord? {
        if let loc = mem.index[id] {
            let chunk = mem.chunks[Int(loc.chunk)]
            return CollectionRecord(id: id, vector: chunk.vector(Int(loc.row)), payload: chunk.values[Int(loc.row)])
        }
        guard !mem.sealedDeletes.contains(id), let (s, row) = version.locate(id) else { return nil }
        let seg = version.segments[s].segment
        return CollectionRecord(id: id, vector: try seg.vector(row: row), payload: try seg.payload(row: row))
    }

    /// Calls `body` for every live row: sealed segments in manifest order (rows in file order, the
    /// payload decoded one block per column per 1,024 rows), then the buffer in insertion order.
    public func forEachRow(_ body: (CollectionRecord) throws -> Void) throws {
        for s in version.segments {
            try SegmentRowReader.forEachLiveRow(s.segment, isDeleted: { row in
                s.isDeleted(row: row) || (!mem.sealedDeletes.isEmpty && mem.sealedDeletes.contains(s.segment.unsafeId(ofRow: row)))
            }, body)
        }
        for loc in mem.liveLocations {
            let chunk = mem.chunks[Int(loc.chunk)]
            try body(CollectionRecord(id: chunk.ids[Int(loc.row)], vector: chunk.vector(Int(loc.row)), payload: chunk.values[Int(loc.row)]))
        }
    }

    /// The k nearest live rows to `query` across every segment and the buffer, closest first (ties
    /// by id). Indexed segments are searched through their graph, over-fetching to make up for
    /// deleted rows (and falling back to an exact scan when too few survive); others and the buffer
    /// exactly. `options.exact` forces exact search everywhere.
    /// Throws `.dimensionMismatch`, `.nonFiniteValue` / `.invalidValue` (see ``VectorLimits``), `.invalidArgument`.
    public func search(query: [Float], options: SearchOptions = SearchOptions()) throws(StrataError) -> [CollectionHit] {
        try search(query: query, filter: nil, options: options)
    }

    /// The k nearest live rows that pass `filter`, closest first. Segments with payload indexes run
    /// their planner (exact scan of the passing rows, or filtered graph search), over-fetching to make
    /// up for deleted rows and falling back to an exact scan of the passing rows; the buffer is
    /// filtered row by row. Throws `.unknownColumn` / `.typeMismatch` for a filter that does not fit
    /// the schema, and what the unfiltered search throws.
    public func search(query: [Float], filter: Filter?, options: SearchOptions = SearchOptions()) throws(StrataError) -> [CollectionHit] {
        if let filter { try filter.validate(against: schema) }
        guard options.k >= 1 else { throw StrataError(.invalidArgument, "k must be at least 1, got \(options.k)") }
        guard query.count == schema.dimension else {
            throw StrataError(.dimensionMismatch, "query has \(query.count) dimensions, collection has \(schema.dimension)")
        }
        try VectorLimits.checkQuery(query)
        let k = options.k
        var all: [CollectionHit] = []
        for s in version.segments {
            if let filter {
                all += try searchSegment(s, query: query, filter: filter, options: options)
            } else {
                all += try searchSegment(s, query: query, options: options)
            }
        }
        all += try searchBuffer(query: query, k: k, filter: filter)
        all.sort()
        return Array(all.prefix(k))
    }

    private func searchSegment(_ s: OpenSegment, query: [Float], options: SearchOptions) throws(StrataError) -> [CollectionHit] {
        let seg = s.segment
        let k = options.k
        let pending = mem.sealedDeletes
        let bitmapDeleted = s.bitmap?.deletedCount ?? 0
        let live = seg.rowCount - bitmapDeleted
        guard live > 0 else { return [] }
        let hasDeletes = bitmapDeleted > 0 || !pending.isEmpty
        @inline(__always) func isDeleted(_ row: Int) -> Bool {
            s.isDeleted(row: row) || (!pending.isEmpty && pending.contains(seg.unsafeId(ofRow: row)))
        }
        if seg.hasIndex, !options.exact {
            if !hasDeletes {
                return try seg.search(query: query, options: options).map { CollectionHit(id: $0.id, distance: $0.distance) }
            }
            // Over-fetch in proportion to the deleted fraction, widen up to twice, then scan.
            // In Double: a huge k must not overflow (or trap converting) before the clamp to rowCount.
            let wanted = (Double(k) * Double(seg.rowCount) / Double(live)).rounded(.up) + Double(k / 2) + 2
            var fetch = wanted >= Double(seg.rowCount) ? seg.rowCount : Int(wanted)
            for _ in 0..<3 {
                guard fetch <= max(1000, seg.rowCount / 8) else { break }
                let o = SearchOptions(k: fetch, listSize: max(options.listSize, fetch), beamWidth: options.beamWidth)
                let kept = try seg.search(query: query, options: o).filter { !isDeleted($0.row) }
                if kept.count >= k || fetch >= seg.rowCount {
                    return kept.prefix(k).map { CollectionHit(id: $0.id, distance: $0.distance) }
                }
                fetch = min(seg.rowCount, fetch * 4)
            }
        }
        try seg.checkBeforeRead(Segment.exactScanSections)
        let q = try seg.prepareQuery(query)
        var top = TopK(k: k)
        q.withUnsafeBufferPointer { qp in
            let qb = qp.baseAddress!
            for row in 0..<seg.rowCount {
                if hasDeletes, isDeleted(row) { continue }
                let d = seg.unsafeDistance(qb, row: row)
                if d <= top.threshold { top.offer(distance: d, id: seg.unsafeId(ofRow: row), row: row) }
            }
        }
        return top.sorted().map { CollectionHit(id: $0.id, distance: $0.distance) }
    }

    private func searchSegment(_ s: OpenSegment, query: [Float], filter: Filter, options: SearchOptions) throws(StrataError) -> [CollectionHit] {
        let seg = s.segment
        let k = options.k
        let pending = mem.sealedDeletes
        let hasDeletes = (s.bitmap?.deletedCount ?? 0) > 0 || !pending.isEmpty
        @inline(__always) func isDeleted(_ row: Int) -> Bool {
            s.isDeleted(row: row) || (!pending.isEmpty && pending.contains(seg.unsafeId(ofRow: row)))
        }
        guard seg.rowCount > 0 else { return [] }
        if seg.hasIndex, !options.exact {
            var fetch = hasDeletes ? k + k / 2 + 2 : k
            for _ in 0..<3 {
                guard fetch <= max(1000, seg.rowCount / 8) else { break }
                let found = try seg.search(query: query, filter: filter,
                                           options: FilteredSearchOptions(k: fetch, listSize: max(options.listSize, fetch))).hits
                let kept = hasDeletes ? found.filter { !isDeleted($0.row) } : found
                if kept.count >= k || (found.count < fetch && !hasDeletes) {
                    return kept.prefix(k).map { CollectionHit(id: $0.id, distance: $0.distance) }
                }
                fetch *= 4
            }
        }
        // Exact over the passing rows.
        let passing = try seg.rows(matching: filter)
        try seg.checkBeforeRead(Segment.exactScanSections)
        let q = try seg.prepareQuery(query)
        var top = TopK(k: k)
        q.withUnsafeBufferPointer { qp in
            let qb = qp.baseAddress!
            for row in passing {
                if hasDeletes, isDeleted(row) { continue }
                let d = seg.unsafeDistance(qb, row: row)
                if d <= top.threshold { top.offer(distance: d, id: seg.unsafeId(ofRow: row), row: row) }
            }
        }
        return top.sorted().map { CollectionHit(id: $0.id, distance: $0.distance) }
    }

    private func searchBuffer(query: [Float], k: Int, filter: Filter? = nil) throws(StrataError) -> [CollectionHit] {
        guard !mem.index.isEmpty else { return [] }
        var q = query
        if schema.metric == .cosine {
            let norm = q.withUnsafeBufferPointer { strata_dot_f32($0.baseAddress, $0.baseAddress, $0.count) }.squareRoot()
            guard norm > 0 else { throw StrataError(.invalidValue, "a zero query has no cosine direction") }
            q = q.map { $0 / norm }
        }
        let dim = schema.dimension
        let metric = schema.metric
        var top = TopK(k: k)
        q.withUnsafeBufferPointer { qp in
            for (c, chunk) in mem.chunks.enumerated() {
                chunk.vectors.withUnsafeBufferPointer { vp in
                    for r in 0..<chunk.ids.count {
                        let id = chunk.ids[r]
                        guard let loc = mem.index[id], loc.chunk == Int32(c), loc.row == Int32(r) else { continue }
                        if let filter, !filter.matches(chunk.values[r], schema: schema) { continue }
                        let v = vp.baseAddress! + r * dim
                        let d: Float
                        switch metric {
                        case .l2: d = strata_l2sq_f32(qp.baseAddress, v, dim)
                        case .innerProduct: d = -strata_dot_f32(qp.baseAddress, v, dim)
                        case .cosine: d = 1 - strata_dot_f32(qp.baseAddress, v, dim)
                        }
                        if d <= top.threshold { top.offer(distance: d, id: id, row: r) }
                    }
                }
            }
        }
        return top.sorted().map { CollectionHit(id: $0.id, distance: $0.distance) }
    }
}

/// Reads the live rows of a segment in chunks: payload decoded once per block, not once per row.
enum SegmentRowReader {
    static let chunkRows = 1024

    static func forEachLiveRow(_ seg: Segment, isDeleted: (Int) -> Bool, _ body: (CollectionRecord) throws -> Void) throws {
        var start = 0
        let columns = seg.schema.columns
        try seg.checkBeforeRead([.ids])
        while start < seg.rowCount {
            let end = min(seg.rowCount, start + chunkRows)
            if (start..<end).allSatisfy(isDeleted) { start = end; continue }
            var values = [[PayloadValue]](repeating: [], count: end - start)
            for c in columns {
                try seg.scan(column: c.name, rows: start..<end) { row, v in values[row - start].append(v) }
            }
            for row in start..<end where !isDeleted(row) {
                try body(CollectionRecord(id: seg.unsafeId(ofRow: row), vector: try seg.vector(row: row), payload: values[row - start]))
            }
            start = end
        }
    }
}
