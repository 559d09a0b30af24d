// The write path of a collection: inserts, upserts and deletes are checked (RowValidator), made
// durable in the WAL, then applied to the buffer; a buffer past its threshold is flushed.
import StrataFormat
import StrataIndex
import Synchronization

extension StrataCollection {
    /// Inserts rows; durable when this returns. Throws `.duplicateId` when an id repeats in the
    /// batch or is already live (use ``upsert(_:)`` to replace), `.dimensionMismatch`,
    /// `.nonFiniteValue`, `.invalidValue` (see `VectorLimits`), `.unknownColumn`, `.typeMismatch`,
    /// `.invalidArgument` (also for a bad sparse vector: see `SparseVector.validate()`). A rejected
    /// batch writes nothing. May flush when the buffer passes its threshold, and flushes first when
    /// a row carries a sparse vector and the current WAL is older than format 3.0.
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

    func checkWritable() throws(StrataError) {
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
            let record = WALRecord.put(rows: inputs, upsert: upsert)
            if record.hasSparse, let wal, !wal.version.holdsSparse {
                // The WAL predates sparse vectors (2.0, or 1.0): a flush starts a 3.0 one first
                // (not for a batch that the WAL would refuse anyway).
                try WALFormat.checkSize(record, path: path)
                _ = try flushLocked(sparseWAL: true)
            }
            try append(record)
            options.observer.inserted(rows: inputs.count)
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
        // The schema of the version whose WAL this is (it changes only under writeLock, by a flush).
        let schema = stateLock.locked { version.manifest.schema }
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
        try Self.validate(rows, schema: schema, path: path, rowLabel: rowLabel)
    }

    /// Checks a batch against `schema` (`path` names the collection in errors); see
    /// ``validate(_:rowLabel:)``. Each record it returns also fits one WAL record.
    package static func validate(_ rows: [SegmentRow], schema: SegmentSchema, path: String,
                                 rowLabel: ((_ n: Int, _ id: UInt64) -> String)? = nil) throws(StrataError) -> [BufferedInput] {
        let validator = RowValidator(schema: schema, path: path, owner: "collection")
        var seen = Set<UInt64>()
        var out: [BufferedInput] = []
        out.reserveCapacity(rows.count)
        for (n, row) in rows.enumerated() {
            guard seen.insert(row.id).inserted else {
                throw StrataError(.duplicateId, "id \(row.id) appears twice in the batch", path: path)
            }
            let values = try validator.check(row, label: rowLabel?(n, row.id) ?? "row \(n) (id \(row.id))")
            out.append(BufferedInput(id: row.id, vector: row.vector, values: values, sparse: row.sparse?.canonical()))
        }
        return out
    }
}
