import ArgumentParser
import Foundation
import Strata

/// `strata insert DIR`: rows from a vector file (and TSV payload) into a collection.
struct CollectionInsertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "insert",
        abstract: "Insert (or upsert) rows from .fvecs/.npy vectors and a TSV payload into a collection; each batch is fsynced.")

    @Argument(help: "Collection directory.")
    var directory: String

    @Option(name: .long, help: "Vectors: texmex .fvecs or 2-D float32 .npy.")
    var vectors: String

    @Option(name: .long, help: "Tab-separated payload in the collection's column order, one line per vector.")
    var payload: String?

    @Option(name: .long, help: "Ids: a text file with one unsigned integer per line (default: first-id + row number).")
    var ids: String?

    @Option(name: .customLong("first-id"), help: "Id of the first row when --ids is not given.")
    var firstId: UInt64 = 0

    @Option(name: .long, help: "Only rows A..B (half-open) of the vector file.")
    var rows: String?

    @Option(name: .long, help: "Rows per batch (one WAL record and one fsync each).")
    var batch: Int = 1000

    @Flag(name: .long, help: "Replace rows whose ids exist (default: an existing id is an error).")
    var upsert = false

    @Flag(name: .long, help: "Flush the buffer into a segment at the end.")
    var flush = false

    @OptionGroup var write: CollectionWriteFlags

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let rows, parseRowRange(rows) == nil { throw ValidationError("--rows must be A..B or A") }
    }

    struct Output: Encodable {
        var rows: Int; var batches: Int; var seconds: Double; var rows_per_s: Double
        var flushes: Int; var flush_seconds: Double; var live_rows: Int; var segments: Int
    }

    func run() throws {
        let c = try StrataCollection.open(path: directory, access: .readWrite, options: write.options())
        defer { c.close() }
        let input = try VectorFile(path: vectors)
        guard input.dimension == c.schema.dimension || input.count == 0 else {
            throw StrataError(.dimensionMismatch, "vectors have \(input.dimension) dimensions, collection has \(c.schema.dimension)", path: vectors)
        }
        let range = (rows.flatMap(parseRowRange) ?? 0..<input.count).clamped(to: 0..<input.count)
        var idLines = try ids.map { try LineReader(path: $0).makeIterator() }
        var payloadLines = try payload.map { try LineReader(path: $0).makeIterator() }
        // Skip to the first requested row in the side files.
        for _ in 0..<range.lowerBound { _ = idLines?.next(); _ = payloadLines?.next() }
        let parser = TSVPayloadParser(columns: c.schema.columns)
        let before = try c.stats().segments.count
        let start = now()
        var batches = 0
        var pending: [SegmentRow] = []
        pending.reserveCapacity(batch)
        var writeSeconds = 0.0
        func send() throws {
            guard !pending.isEmpty else { return }
            let t = now()
            if upsert { try c.upsert(pending) } else { try c.insert(pending) }
            writeSeconds += now() - t
            batches += 1
            pending.removeAll(keepingCapacity: true)
        }
        for row in range {
            var id = firstId &+ UInt64(row)
            if idLines != nil {
                guard let line = idLines!.next(), let v = UInt64(line.trimmingCharacters(in: .whitespaces)) else {
                    throw StrataError(.invalidArgument, "ids file: line \(row + 1) is missing or not an unsigned integer", path: ids)
                }
                id = v
            }
            var values: [String: PayloadValue] = [:]
            if payloadLines != nil {
                guard let line = payloadLines!.next() else {
                    throw StrataError(.invalidArgument, "payload has fewer lines than vectors", path: payload)
                }
                for (spec, v) in zip(c.schema.columns, try parser.parse(line: line, lineNumber: row + 1, path: payload!)) { values[spec.name] = v }
            }
            pending.append(SegmentRow(id: id, vector: input.row(row), payload: values))
            if pending.count >= batch { try send() }
            if row % 100_000 == 99_999 { progress("\(row + 1 - range.lowerBound) rows") }
        }
        try send()
        var flushSeconds = 0.0
        if flush {
            let t = now()
            try c.flush()
            flushSeconds = now() - t
        }
        let seconds = now() - start
        let stats = try c.stats()
        let out = Output(rows: range.count, batches: batches, seconds: seconds, rows_per_s: seconds > 0 ? Double(range.count) / seconds : 0,
                         flushes: stats.segments.count - before, flush_seconds: flushSeconds, live_rows: stats.liveRows,
                         segments: stats.segments.count)
        if json { try printJSON(out); return }
        print(String(format: "inserted %d rows in %d batches in %.2f s (%.0f rows/s, fsync per batch); %d live rows in %d segments + buffer",
                     range.count, batches, seconds, out.rows_per_s, stats.liveRows, stats.segments.count))
    }
}
