// The write buffer: rows written since the last flush (as immutable chunks, one per WAL record) and
// deletes of sealed rows not yet in a bitmap. WAL records are applied to it at open, on every write
// and, read-only, on every refresh.
import StrataFormat
import StrataIndex

/// A sealed batch of buffered rows (immutable once built).
final class BufferChunk: Sendable {
    let ids: [UInt64]
    /// Vectors as a segment would store them (normalised for cosine, rounded for float16), row-major.
    let vectors: [Float]
    let values: [[PayloadValue]]
    /// Canonical sparse vectors by row; empty (no allocation) when no row of the chunk has one.
    let sparseVectors: [SparseVector?]
    let dimension: Int

    init(rows: [BufferedInput], schema: SegmentSchema) {
        dimension = schema.dimension
        ids = rows.map(\.id)
        values = rows.map(\.values)
        sparseVectors = rows.contains { $0.sparse != nil } ? rows.map(\.sparse) : []
        var v: [Float] = []
        v.reserveCapacity(rows.count * schema.dimension)
        for row in rows { v += storedForm(row.vector, schema: schema) }
        vectors = v
    }

    var approximateBytes: Int {
        ids.count * (8 + 4 * dimension + 16 * max(1, values.first?.count ?? 1))
            + sparseVectors.reduce(0) { $0 + 16 + 8 * ($1?.indices.count ?? 0) }
    }

    /// Whether some row of the chunk has a sparse vector.
    var hasSparse: Bool { !sparseVectors.isEmpty }

    /// Row `row`'s sparse vector (canonical), or nil.
    @inline(__always) func sparse(_ row: Int) -> SparseVector? { sparseVectors.isEmpty ? nil : sparseVectors[row] }

    func vector(_ row: Int) -> [Float] { Array(vectors[(row * dimension)..<((row + 1) * dimension)]) }

    /// Row `row` as a record (the vector as stored, the payload in column order).
    func record(_ row: Int) -> CollectionRecord { CollectionRecord(id: ids[row], vector: vector(row), payload: values[row]) }
}

/// The vector a segment would store for `input` (the writer's normalisation, in Double).
func storedForm(_ input: [Float], schema: SegmentSchema) -> [Float] {
    Distance(schema).storedForm(input)
}

/// Where a buffered row sits: chunk number and row in it.
package struct BufferLocation: Hashable {
    var chunk: Int32
    var row: Int32
}

/// The write buffer: rows written since the last flush and deletes of sealed rows not yet in a
/// bitmap. A value type: a snapshot copies it (copy-on-write, so the copy is O(1) until the writer
/// changes it).
package struct MemTable: Sendable {
    var chunks: [BufferChunk] = []
    /// Live buffered rows by id.
    package var index: [UInt64: BufferLocation] = [:]
    /// Ids deleted (or replaced by an upsert) whose old row is in a sealed segment.
    package var sealedDeletes: Set<UInt64> = []
    package var bytes = 0
    /// Records applied (for read-only incremental WAL reading: how far the log was read, and the
    /// number the next record there must carry).
    var walOffset: UInt64 = UInt64(WALFormat.headerLength)
    var walNextRecord: UInt64 = 1
    var walVersion = WALVersion.current

    package var isEmpty: Bool { index.isEmpty && sealedDeletes.isEmpty && chunks.isEmpty }

    /// An empty buffer.
    package init() {}

    /// The buffer that the records of a WAL read from its start make, over `version`.
    init(replaying scan: WALScan, version: Version, schema: SegmentSchema) {
        apply(scan, version: version, schema: schema)
        walVersion = scan.version
    }

    /// Applies the records of `scan` (read from ``walOffset``) and moves the read position past them.
    mutating func apply(_ scan: WALScan, version: Version, schema: SegmentSchema) {
        for r in scan.records { apply(r, version: version, schema: schema) }
        walOffset = scan.validLength
        walNextRecord = scan.nextRecordNumber
    }

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
    package mutating func apply(_ record: WALRecord, version: Version, schema: SegmentSchema) {
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

    /// Whether row `row` of chunk number `chunk`, of id `id`, is live (not deleted or replaced by
    /// a later record).
    @inline(__always) func isLive(id: UInt64, chunk: Int, row: Int) -> Bool {
        index[id] == BufferLocation(chunk: Int32(chunk), row: Int32(row))
    }

    /// Calls `body(chunk, row)` for every live buffered row, in insertion order.
    func forEachLiveRow<E: Error>(_ body: (BufferChunk, Int) throws(E) -> Void) throws(E) {
        guard !index.isEmpty else { return }
        for (c, chunk) in chunks.enumerated() {
            for r in 0..<chunk.ids.count where isLive(id: chunk.ids[r], chunk: c, row: r) { try body(chunk, r) }
        }
    }
}
