// A collection: a directory of immutable segments, per-segment delete bitmaps, a write-ahead log and
// a manifest that names the live set (docs/COLLECTION-FORMAT.md).
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
import StrataFormat
import StrataIndex
import Synchronization
import CStrataKernels
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
public final class StrataCollection: @unchecked Sendable {
    /// The directory.
    public let path: String
    /// Vector shape, metric and payload columns.
    public let schema: SegmentSchema
    /// How it was opened.
    public let access: CollectionAccess
    /// Options.
    public let options: CollectionOptions

    private let stateLock = Mutex(())
    private let writeLock = Mutex(())
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
        if FileSystem.isDirectory(path) { try refuseCollectionFiles(in: path, except: []) }
        try FileSystem.makeDirectory(path)
        guard FileSystem.isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
        guard let lock = try FileLock.acquire(CollectionFiles.writerLock(path), wait: false) else {
            throw StrataError(.busy, "another process has the collection open for writing", path: path)
        }
        // Again under LOCK: another create may have run between the check and the lock.
        try refuseCollectionFiles(in: path, except: ["LOCK"])
        try WALReader.create(directory: path, sequence: 1)
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
    package func validate(_ rows: [SegmentRow], rowLabel: ((_ n: Int, _ id: UInt64) -> String)? = nil) throws(StrataError) -> [BufferedInput] {
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
            let now = WallClock.milliseconds()
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
