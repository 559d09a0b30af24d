// The state behind a collection: the versions it has open (a manifest plus its mapped segments and
// bitmaps), the process-wide file reference counts that keep obsolete files alive while a version
// holds them, and the in-memory buffer (MemTable) that WAL records are applied to.
import StrataFormat
import StrataIndex
import CStrataKernels
import Synchronization

/// Process-wide reference counts of collection files held by open versions, so that an obsolete
/// file is never removed while a reader of this process may use it.
final class FileReferences: Sendable {
    static let shared = FileReferences()
    private let counts = Mutex<[String: Int]>([:])

    func retain(_ paths: [String]) { counts.withLock { c in for p in paths { c[p, default: 0] += 1 } } }
    func release(_ paths: [String]) {
        counts.withLock { c in
            for p in paths {
                let n = (c[p] ?? 1) - 1
                c[p] = n > 0 ? n : nil
            }
        }
    }
    func isReferenced(_ path: String) -> Bool { counts.withLock { $0[path] != nil } }
}

/// A segment of a version, opened, with its delete bitmap.
struct OpenSegment: @unchecked Sendable {
    var entry: ManifestSegment
    var segment: Segment
    var bitmap: DeleteBitmap?

    @inline(__always) func isDeleted(row: Int) -> Bool { bitmap?.contains(row) ?? false }
}

/// One manifest version, opened. Holds references on its files while alive.
package final class Version: @unchecked Sendable {
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
package struct MemTable: @unchecked Sendable {
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
    package func isLive(_ id: UInt64, in version: Version) -> Bool {
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
