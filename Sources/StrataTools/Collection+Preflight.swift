// Checking a whole input before the first byte of it is written: `strata insert` runs this over
// the input files, then inserts batch by batch, so that bad data (a NaN in row 75, a repeated id,
// a bad TSV cell) fails the command with nothing written instead of after 70 rows are durable.

import Strata
import StrataFormat
import StrataIndex

extension StrataCollection {
    /// Checks every row of `input` as ``insert(_:)`` (or, with `upsert`, ``upsert(_:)``) would, and
    /// writes nothing: vector dimension and values, payload types and sizes (the collection's own
    /// batch validation), side-file syntax, ids unique within the input and, for insert, not live
    /// in the collection. Returns the number of rows checked.
    ///
    /// Errors name the row of the input file: `row 75 of base.fvecs (id 75): element 3 is nan`.
    /// A repeated id is an error for upsert too (which row should win is not the caller's intent).
    /// - Complexity: one pass over the input; memory O(rows) for the id set, plus 1,024 rows.
    @discardableResult
    public func preflight(_ input: InputRows, upsert: Bool) throws(StrataError) -> Int {
        try snapshot().preflight(input, upsert: upsert)
    }
}

extension CollectionSnapshot {
    /// ``StrataCollection/preflight(_:upsert:)`` against this snapshot (for a remote collection,
    /// the view its writer holds): checks every row of `input` and writes nothing.
    @discardableResult
    public func preflight(_ input: InputRows, upsert: Bool) throws(StrataError) -> Int {
        guard input.vectors.dimension == schema.dimension || input.rows.isEmpty else {
            throw StrataError(.dimensionMismatch, "vectors have \(input.vectors.dimension) dimensions, collection has \(schema.dimension)",
                              path: input.vectorsPath)
        }
        var seen = Set<UInt64>()
        seen.reserveCapacity(input.rows.count)
        var chunk: [SegmentRow] = []
        var chunkRows: [Int] = []
        chunk.reserveCapacity(1024)
        func check() throws(StrataError) {
            guard !chunk.isEmpty else { return }
            do throws(StrataError) {
                let checked = try StrataCollection.validate(chunk, schema: schema, path: input.vectorsPath,
                                                            rowLabel: { n, id in input.describe(row: chunkRows[n], id: id) })
                // A row that alone is over the WAL record limit could never be inserted.
                for (n, row) in checked.enumerated() {
                    let bytes = WALFormat.bodyLength(.put(rows: [row], upsert: upsert))
                    guard bytes <= WALFormat.maximumBodyLength else {
                        throw StrataError(.invalidValue, "\(input.describe(row: chunkRows[n], id: row.id)): the row encodes to \(bytes) bytes, over the \(WALFormat.maximumBodyLength)-byte WAL record limit")
                    }
                }
            } catch {
                var e = error
                e.path = input.vectorsPath
                throw e
            }
            chunk.removeAll(keepingCapacity: true)
            chunkRows.removeAll(keepingCapacity: true)
        }
        var checked = 0
        try input.forEach { (row) throws(StrataError) in
            guard seen.insert(row.id).inserted else {
                let earlier = try input.firstRow(withId: row.id).map { "row \($0)" } ?? "an earlier row"
                throw StrataError(.duplicateId, "\(input.describe(row: row.fileRow, id: row.id)): id \(row.id) was already given to \(earlier)",
                                  path: input.vectorsPath)
            }
            if !upsert, mem.isLive(row.id, in: version) {
                throw StrataError(.duplicateId, "\(input.describe(row: row.fileRow, id: row.id)): id \(row.id) already exists in the collection (use --upsert to replace it)",
                                  path: input.vectorsPath)
            }
            var payload: [String: PayloadValue] = [:]
            for (spec, value) in zip(input.columns, row.values) { payload[spec.name] = value }
            chunk.append(SegmentRow(id: row.id, vector: input.vectors.row(row.fileRow), payload: payload))
            chunkRows.append(row.fileRow)
            if chunk.count == 1024 { try check() }
            checked += 1
        }
        try check()
        return checked
    }
}
