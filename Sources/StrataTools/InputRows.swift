// The input of `strata build` and `strata insert`: a vector file (.fvecs / .npy) and its optional
// side files, row r of the vector file matching line r + 1 of each side file:
//   payload  TSV, one field per schema column (TSVPayload.swift)
//   ids      one unsigned 64-bit integer per line
//   sparse   one sparse vector per line: `index:weight` entries separated by commas or spaces
//            (an empty line: the row has none)
// Every file is mapped (regular files only), so the rows can be read twice: once to check all of
// them before anything is written, once to write. Errors name the file and its line, or the row of
// the vector file: `row 75 of base.fvecs (id 75)`.

import Strata
import StrataFormat
import StrataIndex

/// How input rows get their ids.
public enum InputIdSource: Sendable, Equatable {
    /// Row r of the vector file gets id r.
    case rowNumbers
    /// The first row read gets `first`, the next `first + 1`, and so on (whatever row of the file
    /// the reading starts at). Overflowing UInt64 is an error.
    case sequential(first: UInt64)
    /// Line r + 1 of this text file holds the id of row r of the vector file.
    case file(String)
}

/// A vector file and its side files, read row by row in file order.
public final class InputRows {
    /// One row: its place in the vector file, its id, payload values (schema order) and sparse vector.
    public struct Row: Sendable {
        /// Row number in the vector file (0-based).
        public var fileRow: Int
        /// The row's id.
        public var id: UInt64
        /// Payload values in column order (empty without a payload file).
        public var values: [PayloadValue]
        /// The sparse vector of the row, if the sparse file gives one.
        public var sparse: SparseVector?
    }

    /// Path of the vector file.
    public let vectorsPath: String
    /// The vectors, mapped.
    public let vectors: VectorFile
    /// The rows of the vector file that are read.
    public let rows: Range<Int>
    /// Payload columns (the TSV fields, in order).
    public let columns: [ColumnSpec]
    /// Where ids come from.
    public let ids: InputIdSource
    private let payload: LineReader?
    private let idLines: LineReader?
    private let sparse: LineReader?
    private let starts: SideFileStarts

    /// Opens (maps) the files.
    /// - Parameters:
    ///   - vectors: Path of the vector file (`.fvecs` or `.npy`, see ``VectorFile``).
    ///   - rows: a sub-range of the vector file's rows (default: all); must lie inside the file.
    ///   - payload: TSV file with one field per column of `columns`.
    ///   - columns: The payload columns, in TSV field order.
    ///   - ids: Where the rows' external ids come from (default: the row numbers).
    ///   - sparse: text file of sparse vectors.
    ///   - starts: recorded positions in the side files (``LineReader/Cursor/position``) at or
    ///     before the line of `rows.lowerBound`, so that reading starts there instead of scanning
    ///     from line 1; a side file without one is scanned from its start.
    /// - Throws: `.io` for a file that cannot be opened or is not a regular file, `.invalidArgument`
    ///   for `rows` outside the file or sequential ids that would pass UInt64.max, and the vector
    ///   file's format errors.
    public init(vectors: String, rows: Range<Int>? = nil, payload: String? = nil, columns: [ColumnSpec] = [],
                ids: InputIdSource = .rowNumbers, sparse: String? = nil, starts: SideFileStarts = SideFileStarts()) throws(StrataError) {
        vectorsPath = vectors
        self.vectors = try VectorFile(path: vectors)
        let count = self.vectors.count
        if let rows {
            guard rows.lowerBound >= 0, rows.upperBound <= count else {
                throw StrataError(.invalidArgument, "rows \(rows.lowerBound)..\(rows.upperBound) are not all in the vector file, which has \(count) rows (0..\(count))", path: vectors)
            }
        }
        self.rows = rows ?? 0..<count
        if case .sequential(let first) = ids, !self.rows.isEmpty {
            let last = UInt64(self.rows.count - 1)
            guard first <= UInt64.max - last else {
                throw StrataError(.invalidArgument, "first id \(first) + \(self.rows.count) rows passes the largest id \(UInt64.max)", path: vectors)
            }
        }
        self.columns = payload == nil ? [] : columns
        self.ids = ids
        self.payload = try payload.map { (p) throws(StrataError) in try LineReader(path: p) }
        if case .file(let p) = ids { idLines = try LineReader(path: p) } else { idLines = nil }
        self.sparse = try sparse.map { (p) throws(StrataError) in try LineReader(path: p) }
        self.starts = starts
    }

    /// Known positions in the side files from which the first row's lines are reached without
    /// reading the files from their start (nil: from line 1).
    public struct SideFileStarts: Sendable, Equatable {
        /// In the payload file.
        public var payload: LineReader.Position?
        /// In the ids file.
        public var ids: LineReader.Position?
        /// In the sparse-vector file.
        public var sparse: LineReader.Position?

        /// Positions in the side files (nil: the file's start).
        public init(payload: LineReader.Position? = nil, ids: LineReader.Position? = nil, sparse: LineReader.Position? = nil) {
            self.payload = payload
            self.ids = ids
            self.sparse = sparse
        }
    }

    /// A cursor of `reader` at the line of row `row` (line `row + 1`), from `start` when that is
    /// not past it.
    static func cursor(_ reader: LineReader, atRow row: Int, from start: LineReader.Position?) -> LineReader.Cursor {
        var c: LineReader.Cursor
        if let start, start.lineNumber <= row { c = reader.makeCursor(at: start) } else { c = reader.makeCursor() }
        c.skip(row - c.lineNumber)
        return c
    }

    /// `row 75 of base.fvecs (id 75)`: how errors name a row.
    public func describe(row: Int, id: UInt64) -> String { "row \(row) of \(vectorsPath) (id \(id))" }

    /// Re-labels an error of a writer or a collection about this row (whose messages start with
    /// `row id X: ` or carry no row at all) with the row's place in the vector file.
    public func locate(_ error: StrataError, row: Row) -> StrataError {
        var e = error
        var rest = e.message
        let writerPrefix = "row id \(row.id): "
        if rest.hasPrefix(writerPrefix) { rest.removeFirst(writerPrefix.count) }
        e.message = describe(row: row.fileRow, id: row.id) + ": " + rest
        if e.path == nil { e.path = vectorsPath }
        return e
    }

    /// Reads the rows in order and calls `body` for each.
    /// - Throws: bad side-file data as `.corrupt` (missing line, id that is not an unsigned 64-bit
    ///   integer, wrong number of TSV fields, invalid UTF-8, bad sparse entry, lines left over when
    ///   the whole vector file is read) or `.typeMismatch` (a TSV cell), naming file and line; and
    ///   whatever `body` throws.
    public func forEach(_ body: (Row) throws(StrataError) -> Void) throws(StrataError) {
        var cursor = makeCursor()
        while let row = try cursor.next() { try body(row) }
    }

    /// A reader of the rows in order, one at a time (for callers that wait between rows).
    public func makeCursor() -> Cursor { Cursor(input: self) }

    /// Reads the rows of an ``InputRows`` in order; ``next()`` throws what ``forEach(_:)`` throws.
    public struct Cursor {
        private let input: InputRows
        private var nextRow: Int
        private var idCursor: LineReader.Cursor?
        private var payloadCursor: LineReader.Cursor?
        private var sparseCursor: LineReader.Cursor?
        private let parser: TSVPayloadParser

        init(input: InputRows) {
            self.input = input
            nextRow = input.rows.lowerBound
            let first = input.rows.lowerBound
            idCursor = input.idLines.map { InputRows.cursor($0, atRow: first, from: input.starts.ids) }
            payloadCursor = input.payload.map { InputRows.cursor($0, atRow: first, from: input.starts.payload) }
            sparseCursor = input.sparse.map { InputRows.cursor($0, atRow: first, from: input.starts.sparse) }
            parser = TSVPayloadParser(columns: input.columns)
        }

        /// The next row, or nil after the last (when the whole vector file is read, side files
        /// with lines left over throw then).
        public mutating func next() throws(StrataError) -> Row? {
            let input = self.input
            guard nextRow < input.rows.upperBound else {
                if nextRow == input.rows.upperBound, input.rows == 0..<input.vectors.count {
                    nextRow += 1
                    for c in [idCursor, payloadCursor, sparseCursor] {
                        if let c, c.hasMoreContent() {
                            throw StrataError(.corrupt, "more lines than the \(input.vectors.count) rows of \(input.vectorsPath)", path: c.path)
                        }
                    }
                }
                return nil
            }
            let r = nextRow
            nextRow += 1
            var row = Row(fileRow: r, id: UInt64(r), values: [], sparse: nil)
            switch input.ids {
            case .rowNumbers: break
            case .sequential(let first): row.id = first + UInt64(r - input.rows.lowerBound)
            case .file(let path):
                guard let line = try idCursor!.next() else { throw input.missingLine(path, row: r) }
                guard let id = UInt64(line.trimmingSpaces()) else {
                    throw StrataError(.corrupt, "line \(r + 1): '\(line.prefix(40))' is not an unsigned 64-bit integer (the id of row \(r) of \(input.vectorsPath))", path: path)
                }
                row.id = id
            }
            if payloadCursor != nil {
                guard let bytes = payloadCursor!.nextBytes() else { throw input.missingLine(input.payload!.path, row: r) }
                row.values = try parser.parse(bytes: bytes, lineNumber: r + 1, path: input.payload!.path)
            }
            if sparseCursor != nil {
                guard let line = try sparseCursor!.next() else { throw input.missingLine(input.sparse!.path, row: r) }
                row.sparse = try InputRows.parseSparse(line, lineNumber: r + 1, path: input.sparse!.path)
            }
            return row
        }
    }

    /// The first row (in file order, within ``rows``) whose id is `id`, or nil. For messages about
    /// a repeated id; O(rows) (reads the ids file again when there is one).
    public func firstRow(withId id: UInt64) throws(StrataError) -> Int? {
        switch ids {
        case .rowNumbers: return id < UInt64(rows.upperBound) && id >= UInt64(rows.lowerBound) ? Int(id) : nil
        case .sequential(let first): return id >= first && id - first < UInt64(rows.count) ? rows.lowerBound + Int(id - first) : nil
        case .file:
            var cursor = InputRows.cursor(idLines!, atRow: rows.lowerBound, from: starts.ids)
            for r in rows {
                guard let line = try cursor.next() else { return nil }
                if UInt64(line.trimmingSpaces()) == id { return r }
            }
            return nil
        }
    }

    private func missingLine(_ path: String, row: Int) -> StrataError {
        StrataError(.corrupt, "the file ends before line \(row + 1), which row \(row) of \(vectorsPath) needs", path: path)
    }

    /// Parses one line of a sparse-vector file: `index:weight` entries separated by commas and/or
    /// spaces; an empty line is no vector. Indices are u32, weights finite floats.
    static func parseSparse(_ line: String, lineNumber: Int, path: String) throws(StrataError) -> SparseVector? {
        let entries = line.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
        guard !entries.isEmpty else { return nil }
        var indices: [UInt32] = [], values: [Float] = []
        indices.reserveCapacity(entries.count)
        values.reserveCapacity(entries.count)
        for entry in entries {
            let parts = entry.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let i = UInt32(parts[0]), let v = Float(parts[1]) else {
                throw StrataError(.corrupt, "line \(lineNumber): '\(entry.prefix(40))' is not index:weight (index 0...\(UInt32.max))", path: path)
            }
            guard v.isFinite else {
                throw StrataError(.nonFiniteValue, "line \(lineNumber): weight of index \(i) is \(v)", path: path)
            }
            indices.append(i)
            values.append(v)
        }
        return SparseVector(indices: indices, values: values)
    }
}
