import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata build`: a segment from fvecs/npy vectors and an optional TSV payload.
struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a segment from .fvecs/.npy vectors and a TSV payload.")

    @Option(name: .long, help: "Vectors: texmex .fvecs or 2-D float32 .npy.")
    var vectors: String

    @Option(name: .long, help: "Tab-separated payload, one line per vector, no header.")
    var payload: String?

    @Option(name: .long, help: "Payload columns: name:type[?],... (types int64, float64, bool, string, string_list; ? = nullable).")
    var schema: String?

    @Option(name: .long, help: "Ids: a text file with one unsigned integer per line (default: row numbers).")
    var ids: String?

    @Option(name: .customLong("sparse-vectors"),
            help: "Sparse vectors for `search --sparse`: a text file, line r + 1 for row r, of index:weight entries separated by commas or spaces (an empty line: no sparse vector).")
    var sparseVectors: String?

    @Option(name: .long, help: "Distance metric: l2, ip, cosine.")
    var metric: String = "cosine"

    @Flag(name: .long, help: "Store vectors as float16.")
    var f16 = false

    @Option(name: .long, help: "Rows per payload block.")
    var rowsPerBlock: Int = 1024

    @Option(name: .long, help: "Output segment path.")
    var out: String

    @OptionGroup var index: IndexFlags

    @Option(name: .customLong("payload-index"), help: "Columns to give payload indexes (comma-separated), for filtered search.")
    var payloadIndex: String?

    @Option(name: .customLong("bm25"), help: "String columns to tokenize into BM25 text indexes (comma-separated).")
    var bm25: String?

    @Flag(name: .long, help: "Print a JSON summary.")
    var json = false

    @OptionGroup var progressFlags: ProgressFlags

    func validate() throws {
        guard DistanceMetric(name: metric) != nil else { throw ValidationError("unknown metric '\(metric)' (l2, ip, cosine)") }
        if payload != nil, schema == nil { throw ValidationError("--payload needs --schema") }
        if schema != nil, payload == nil { throw ValidationError("--schema needs --payload") }
        guard rowsPerBlock >= 1, rowsPerBlock <= 1 << 20 else { throw ValidationError("--rows-per-block must be in 1...1048576") }
        if payloadIndex != nil || bm25 != nil {
            let columns = (try? schema.map { try SegmentSchema.parseColumns($0) } ?? []) ?? []
            for name in Self.list(payloadIndex) where !columns.contains(where: { $0.name == name }) {
                throw ValidationError("--payload-index: no column '\(name)' in --schema")
            }
            for name in Self.list(bm25) {
                guard let spec = columns.first(where: { $0.name == name }) else { throw ValidationError("--bm25: no column '\(name)' in --schema") }
                guard spec.type == .string || spec.type == .stringList else {
                    throw ValidationError("--bm25: column '\(name)' is \(spec.type); BM25 needs a string or string_list column")
                }
            }
        }
    }

    /// A comma-separated list of names, trimmed.
    static func list(_ text: String?) -> [String] {
        text.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
    }

    struct Summary: Encodable {
        var path: String
        var rows: Int
        var dimension: Int
        var file_bytes: UInt64
        var seconds: Double
        var write_mb_per_s: Double
        var sections: [DumpCommand.SectionJSON]
    }

    func run() throws {
        let columns = try schema.map { try SegmentSchema.parseColumns($0) } ?? []
        var options = SegmentWriterOptions()
        options.rowsPerBlock = rowsPerBlock
        options.index = index.options()
        let reporter = progressFlags.reporter("build")
        options.progress = reporter.indexBuild
        options.search = SearchSectionOptions(indexedColumns: Self.list(payloadIndex), bm25Columns: Self.list(bm25))
        let built = try SegmentBuild.run(
            vectors: vectors, payload: payload, columns: columns, ids: ids, sparse: sparseVectors, metric: DistanceMetric(name: metric)!,
            elementType: f16 ? .float16 : .float32, options: options, out: out) { message in
                // SegmentBuild reports "N rows" every 100,000 rows, then a note before the index build.
                if message.hasSuffix(" rows"), let n = Int(message.dropLast(5)) { reporter.update(phase: "rows", done: n, total: nil) } else { reporter.note(message) }
            }
        let (summary, seconds, dimension) = (built.summary, built.seconds, built.dimension)
        reporter.finish(done: summary.rowCount)
        let mbps = Double(summary.fileBytes) / 1e6 / seconds
        if json {
            try printJSON(Summary(path: out, rows: summary.rowCount, dimension: dimension, file_bytes: summary.fileBytes,
                                  seconds: seconds, write_mb_per_s: mbps,
                                  sections: summary.sections.map(DumpCommand.SectionJSON.init)))
        } else {
            print("wrote \(out): \(summary.rowCount) rows x \(dimension) dims, \(formatBytes(summary.fileBytes)) in \(String(format: "%.2f", seconds)) s (\(String(format: "%.0f", mbps)) MB/s)")
        }
    }
}
