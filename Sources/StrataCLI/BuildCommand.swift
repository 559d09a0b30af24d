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
        options.progress = indexBuildProgressPrinter()
        options.search = SearchSectionOptions(indexedColumns: Self.list(payloadIndex), bm25Columns: Self.list(bm25))
        let (summary, seconds, dimension) = try Self.buildSegment(
            vectors: vectors, payload: payload, columns: columns, ids: ids, sparse: sparseVectors, metric: DistanceMetric(name: metric)!,
            elementType: f16 ? .float16 : .float32, options: options, out: out)
        let mbps = Double(summary.fileBytes) / 1e6 / seconds
        if json {
            try printJSON(Summary(path: out, rows: summary.rowCount, dimension: dimension, file_bytes: summary.fileBytes,
                                  seconds: seconds, write_mb_per_s: mbps,
                                  sections: summary.sections.map(DumpCommand.SectionJSON.init)))
        } else {
            print("wrote \(out): \(summary.rowCount) rows x \(dimension) dims, \(formatBytes(summary.fileBytes)) in \(String(format: "%.2f", seconds)) s (\(String(format: "%.0f", mbps)) MB/s)")
        }
    }

    /// Streams vectors (and payload lines, ids and sparse vectors) into a new segment; returns the
    /// summary, seconds and dimension. Errors name the row of the vector file or the line of a side
    /// file; a failed build leaves no file behind (the writer removes its temporary files).
    static func buildSegment(vectors: String, payload: String?, columns: [ColumnSpec], ids: String?, sparse: String? = nil,
                             metric: DistanceMetric, elementType: VectorElementType,
                             options: SegmentWriterOptions, out: String) throws -> (SegmentWriteSummary, Double, Int) {
        let start = now()
        let input = try InputRows(vectors: vectors, payload: payload, columns: columns, ids: ids.map { .file($0) } ?? .rowNumbers,
                                  sparse: sparse)
        guard input.vectors.dimension > 0 else {
            throw StrataError(.truncated, "the vector file is empty: no vector gives the dimension", path: vectors, offset: 0)
        }
        let segmentSchema = SegmentSchema(dimension: input.vectors.dimension, elementType: elementType, metric: metric, columns: columns)
        let writer = try SegmentWriter(path: out, schema: segmentSchema, options: options)
        try input.forEach { (row) throws(StrataError) in
            do throws(StrataError) {
                try input.vectors.withRow(row.fileRow) { (v) throws(StrataError) in try writer.append(id: row.id, vector: v, values: row.values) }
            } catch {
                throw input.locate(error, row: row)
            }
            if let s = row.sparse { try writer.setSparseVector(row: writer.rowCount - 1, s) }
            if row.fileRow % 100_000 == 99_999 { progress("\(row.fileRow + 1) rows") }
        }
        if options.index != nil { progress("building index...") }
        let summary = try writer.finish()
        return (summary, now() - start, input.vectors.dimension)
    }
}

/// Index flags shared by `build` and `bench`.
struct IndexFlags: ParsableArguments {
    @Flag(name: .long, help: "Build the ANN index (PQ codes + Vamana graph).")
    var index = false

    @Option(name: .customLong("pq-m"), help: "PQ sub-spaces M (code bytes per vector); default: dimension / 4.")
    var pqM: Int?

    @Option(name: .customLong("max-degree"), help: "Graph max degree R.")
    var maxDegree: Int = VamanaParameters().maxDegree

    @Option(name: .customLong("build-list"), help: "Graph build list size L.")
    var buildList: Int = VamanaParameters().buildListSize

    @Option(name: .long, help: "RobustPrune alpha (second pass).")
    var alpha: Float = VamanaParameters().alpha

    @Option(name: .long, help: "Seed (graph and PQ); same seed, same bytes.")
    var seed: UInt64 = VamanaParameters().seed

    @Option(name: .customLong("build-threads"), help: "Build threads (default: all cores).")
    var buildThreads: Int?

    @Option(name: .customLong("min-index-rows"), help: "Segments with fewer rows are searched exactly.")
    var minIndexRows: Int = IndexOptions.defaultMinimumRows

    @Option(name: .customLong("memory-budget"),
            help: "Memory for the graph build, e.g. 2G or 1500M; above it the graph is built out of core in partitions (default: in memory).")
    var memoryBudget: String?

    func validate() throws {
        if let b = memoryBudget {
            guard let bytes = CollectionCompactCommand.parseBytes(b) else {
                throw ValidationError("--memory-budget must be a size such as 512M, 2G or a byte count")
            }
            // The graph build keeps 32 MiB for itself (PartitionedGraphBuilder); below 64 MiB no build fits.
            guard bytes >= 64 << 20 else { throw ValidationError("--memory-budget must be at least 64M (got \(bytes) bytes)") }
        }
        guard minIndexRows >= 0 else { throw ValidationError("--min-index-rows must be >= 0") }
        if let pqM, pqM < 1 { throw ValidationError("--pq-m must be at least 1") }
        // The graph parameters are checked now, not after the vectors were written.
        do { try options(force: true)!.graph.validate() } catch { throw ValidationError(error.message) }
    }

    func options(force: Bool = false) -> IndexOptions? {
        guard index || force else { return nil }
        var o = IndexOptions()
        o.pqSubspaces = pqM
        o.graph.maxDegree = maxDegree
        o.graph.buildListSize = buildList
        o.graph.alpha = alpha
        o.graph.seed = seed
        o.graph.threads = buildThreads
        o.minimumRows = minIndexRows
        o.memoryBudget = memoryBudget.flatMap(CollectionCompactCommand.parseBytes)
        return o
    }
}
