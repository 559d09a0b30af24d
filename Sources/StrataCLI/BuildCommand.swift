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
        options.search = SearchSectionOptions(indexedColumns: payloadIndex.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? [],
                                              bm25Columns: bm25.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? [])
        let (summary, seconds, dimension) = try Self.buildSegment(
            vectors: vectors, payload: payload, columns: columns, ids: ids, metric: DistanceMetric(name: metric)!,
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

    /// Streams vectors (and payload lines, and ids) into a new segment; returns the summary, seconds and dimension.
    static func buildSegment(vectors: String, payload: String?, columns: [ColumnSpec], ids: String?,
                             metric: DistanceMetric, elementType: VectorElementType,
                             options: SegmentWriterOptions, out: String) throws -> (SegmentWriteSummary, Double, Int) {
        let start = now()
        let input = try VectorFile(path: vectors)
        let segmentSchema = SegmentSchema(dimension: input.dimension, elementType: elementType, metric: metric, columns: columns)
        let writer = try SegmentWriter(path: out, schema: segmentSchema, options: options)
        var idLines = try ids.map { try LineReader(path: $0).makeIterator() }
        var payloadLines = try payload.map { try LineReader(path: $0).makeIterator() }
        let parser = TSVPayloadParser(columns: columns)
        for row in 0..<input.count {
            var id = UInt64(row)
            if idLines != nil {
                guard let line = idLines!.next(), let v = UInt64(line.trimmingCharacters(in: .whitespaces)) else {
                    throw StrataError(.invalidArgument, "ids file: line \(row + 1) is missing or not an unsigned integer", path: ids)
                }
                id = v
            }
            var values: [PayloadValue] = []
            if payloadLines != nil {
                guard let line = payloadLines!.next() else {
                    throw StrataError(.invalidArgument, "payload has fewer lines (\(row)) than vectors (\(input.count))", path: payload)
                }
                values = try parser.parse(line: line, lineNumber: row + 1, path: payload!)
            }
            try input.withRow(row) { v in try writer.append(id: id, vector: v, values: values) }
            if row % 100_000 == 99_999 { progress("\(row + 1) rows") }
        }
        if payloadLines != nil, let extra = payloadLines!.next(), !extra.isEmpty {
            throw StrataError(.invalidArgument, "payload has more lines than vectors (\(input.count))", path: payload)
        }
        if options.index != nil { progress("building index...") }
        let summary = try writer.finish()
        return (summary, now() - start, input.dimension)
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
        if let b = memoryBudget, CollectionCompactCommand.parseBytes(b) == nil {
            throw ValidationError("--memory-budget must be a size such as 512M, 2G or a byte count")
        }
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
