import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata insert DIR|s3://BUCKET/PATH`: rows from a vector file (and TSV payload) into a collection.
///
/// The whole input is checked first (vectors, payload, ids, against the collection's schema and
/// live ids), so bad data fails the command with nothing written; then the rows go in batch by
/// batch, each durable when written. If writing fails part-way (a full disk), the error and
/// `--json` say which rows were committed.
struct CollectionInsertCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "insert",
        abstract: "Insert (or upsert) rows from .fvecs/.npy vectors and a TSV payload into a collection; each batch is durable when written (fsynced; for s3://, a WAL object in the store).",
        discussion: """
        Ids: with --ids, line r + 1 of the file is the id of row r of the vector file; with --first-id F, the first row inserted gets id F and the next ones F + 1, F + 2, ... (so --rows 500..1000 --first-id 0 gives ids 0..499); with neither, row r of the vector file gets id r (so --rows 500..1000 gives ids 500..999).

        The whole input is checked before anything is written (dimension, finite values, payload types, ids unique in the file and, without --upsert, not in the collection): bad data exits 1 and writes nothing. If a write fails part-way (e.g. a full disk), the rows before the failing batch stay committed; the error (and --json) names them and the --rows to resume with.
        """)

    @Argument(help: "Collection directory, or s3://BUCKET/PATH.")
    var directory: String

    @OptionGroup var input: RowInputFlags

    @Option(name: .customLong("first-id"), help: "Id of the first row inserted (the next rows get the next ids); default: the row number in the vector file.")
    var firstId: UInt64?

    @Option(name: .long, help: "Only rows A..B (half-open) of the vector file; they must exist.")
    var rows: String?

    @Option(name: .long, help: "Rows per batch (one WAL record and one fsync each; for s3://, one WAL object each).")
    var batch: Int = 1000

    @Flag(name: .long, help: "Replace rows whose ids exist (default: an existing id is an error).")
    var upsert = false

    @Flag(name: .long, help: "Flush the buffer into a segment at the end.")
    var flush = false

    @OptionGroup var write: CollectionWriteFlags

    @OptionGroup var remote: RemoteFlags

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let rows, parseRowRange(rows) == nil { throw ValidationError("--rows must be A..B or A") }
        if input.ids != nil, firstId != nil { throw ValidationError("give at most one of --ids and --first-id") }
    }

    struct Output: Encodable {
        var rows: Int; var batches: Int; var seconds: Double; var rows_per_s: Double
        var flushes: Int; var flush_seconds: Double; var live_rows: Int; var segments: Int
    }

    /// What `--json` prints when writing failed after some batches were committed.
    struct FailureOutput: Encodable {
        struct ErrorJSON: Encodable { var code: String; var message: String }
        var ok = false
        var error: ErrorJSON
        var committed_rows: Int
        /// Half-open range of vector-file rows committed, [first, end).
        var committed_file_rows: [Int]
        var committed_first_id: UInt64?
        var committed_last_id: UInt64?
        /// Whether the failing batch may or may not have been committed (its state could not be read).
        var failing_batch_uncertain: Bool
        var resume_rows: String
    }

    func run() async throws {
        try await CollectionHandles.with(directory, access: .readWrite, options: write.options(), remote: remote) { c in
            try await insert(into: c)
        }
    }

    private func insert(into c: any CollectionHandle) async throws {
        try write.check(against: c.schema)
        let idSource: InputIdSource = self.input.ids.map { .file($0) } ?? firstId.map { .sequential(first: $0) } ?? .rowNumbers
        let input = try InputRows(vectors: self.input.vectors, rows: rows.flatMap(parseRowRange), payload: self.input.payload,
                                  columns: c.schema.columns, ids: idSource)
        let before = try await c.stats().segments.count
        let start = monotonicSeconds()
        // 1. Check everything; nothing is written if anything is wrong.
        try await c.snapshot().preflight(input, upsert: upsert)
        // 2. Write batch by batch, keeping track of what is committed.
        var batches = 0
        var pending: [SegmentRow] = []
        pending.reserveCapacity(min(batch, 65536))
        var pendingBytes = 0
        var committed = Committed(startRow: input.rows.lowerBound)
        func send() async throws(StrataError) {
            guard !pending.isEmpty else { return }
            do {
                try await c.put(pending, upsert: upsert)
            } catch {
                switch error.committed {
                case true?: committed.add(pending)
                case nil: committed.uncertain = true
                case false?: break
                }
                throw error.error
            }
            committed.add(pending)
            batches += 1
            pending.removeAll(keepingCapacity: true)
            pendingBytes = 0
        }
        do throws(StrataError) {
            var cursor = input.makeCursor()
            while let row = try cursor.next() {
                var values: [String: PayloadValue] = [:]
                for (spec, v) in zip(input.columns, row.values) { values[spec.name] = v }
                pending.append(SegmentRow(id: row.id, vector: input.vectors.row(row.fileRow), payload: values))
                pendingBytes += 4 * input.vectors.dimension + row.values.reduce(0) { $0 + Self.approximateBytes($1) }
                // Batches end at --batch rows or 256 MiB, well below the 1 GiB WAL record limit.
                if pending.count >= batch || pendingBytes >= 256 << 20 { try await send() }
                if row.fileRow % 100_000 == 99_999 { progress("\(row.fileRow + 1 - input.rows.lowerBound) rows") }
            }
            try await send()
        } catch {
            throw try reportPartial(error, committed: committed, input: input)
        }
        var flushSeconds = 0.0
        if flush {
            let t = monotonicSeconds()
            do {
                _ = try await c.flush()
            } catch {
                var e = error
                e.message += "; all \(committed.count) rows were inserted and are durable in the WAL, only the flush failed"
                throw e
            }
            flushSeconds = monotonicSeconds() - t
        }
        let seconds = monotonicSeconds() - start
        let stats = try await c.stats()
        let count = input.rows.count
        let out = Output(rows: count, batches: batches, seconds: seconds, rows_per_s: seconds > 0 ? Double(count) / seconds : 0,
                         flushes: stats.segments.count - before, flush_seconds: flushSeconds, live_rows: stats.liveRows,
                         segments: stats.segments.count)
        if json { try printJSON(out); return }
        print(String(format: "inserted %d rows in %d batches in %.2f s (%.0f rows/s, %@); %d live rows in %d segments + buffer",
                     count, batches, seconds, out.rows_per_s, c.durability, stats.liveRows, stats.segments.count))
    }

    /// About what a payload value adds to a WAL record.
    static func approximateBytes(_ value: PayloadValue) -> Int {
        switch value {
        case .null, .bool: return 2
        case .int64, .float64: return 9
        case .string(let s): return 5 + s.utf8.count
        case .stringList(let l): return 5 + l.reduce(0) { $0 + 4 + $1.utf8.count }
        }
    }

    /// Rows committed so far: a prefix of the input rows, in file order.
    struct Committed {
        var startRow: Int
        var count = 0
        var firstId: UInt64?
        var lastId: UInt64?
        var uncertain = false
        var endRow: Int { startRow + count }

        mutating func add(_ rows: [SegmentRow]) {
            guard let first = rows.first, let last = rows.last else { return }
            if firstId == nil { firstId = first.id }
            lastId = last.id
            count += rows.count
        }
    }

    /// The error to exit with: `error` plus, when rows were committed before it, which ones and the
    /// `--rows` to resume with; with --json, the same as a JSON document on stdout.
    private func reportPartial(_ error: StrataError, committed: Committed, input: InputRows) throws -> StrataError {
        guard committed.count > 0 || committed.uncertain else { return error }
        let resume = "\(committed.endRow)..\(input.rows.upperBound)"
        var resumeFlags = "--rows \(resume)"
        if let firstId { resumeFlags += " --first-id \(committed.lastId.map { $0 &+ 1 } ?? firstId)" }
        var e = error
        var note = "; \(committed.count) rows were committed before this failure"
        if committed.count > 0 {
            note += " (rows \(committed.startRow)..\(committed.endRow) of \(input.vectorsPath), ids \(committed.firstId!) to \(committed.lastId!))"
        }
        if committed.uncertain { note += "; whether the failing batch (from row \(committed.endRow)) was committed could not be read back" }
        note += "; to insert the rest, run again with \(resumeFlags)"
        e.message += note
        if json {
            try printJSON(FailureOutput(error: .init(code: error.code.rawValue, message: error.message), committed_rows: committed.count,
                                        committed_file_rows: [committed.startRow, committed.endRow], committed_first_id: committed.firstId,
                                        committed_last_id: committed.lastId, failing_batch_uncertain: committed.uncertain,
                                        resume_rows: resume))
        }
        return e
    }
}

/// The input files of `insert` and `import`: vectors, and the payload and ids of each row.
struct RowInputFlags: ParsableArguments {
    @Option(name: .long, help: "Vectors: texmex .fvecs or 2-D float32 .npy.")
    var vectors: String

    @Option(name: .long, help: "Tab-separated payload in the collection's column order, one line per vector.")
    var payload: String?

    @Option(name: .long, help: "Ids: a text file with one unsigned integer per line, line r + 1 for row r of the vector file.")
    var ids: String?
}
