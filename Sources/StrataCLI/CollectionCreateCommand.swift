import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata create DIR|s3://BUCKET/PATH`: an empty collection.
struct CollectionCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create an empty collection: a directory (manifest, empty WAL) or s3://BUCKET/PATH (collection.json, manifest, head in etcd).")

    @Argument(help: "Collection directory (created if missing; must not hold a collection), or s3://BUCKET/PATH.")
    var directory: String

    @Option(name: .long, help: "Vector dimension.")
    var dim: Int

    @Option(name: .long, help: "Distance metric: l2, ip, cosine.")
    var metric: String = "cosine"

    @Option(name: .long, help: "Payload columns: name:type[?],... (int64, float64, bool, string, string_list; ? = nullable).")
    var schema: String?

    @Flag(name: .long, help: "Store vectors as float16.")
    var f16 = false

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @OptionGroup var remote: RemoteFlags

    func validate() throws {
        guard DistanceMetric(name: metric) != nil else { throw ValidationError("unknown metric '\(metric)' (l2, ip, cosine)") }
        guard (1...SegmentSchema.maximumDimension).contains(dim) else { throw ValidationError("--dim must be 1...\(SegmentSchema.maximumDimension)") }
    }

    struct Output: Encodable { var path: String; var dimension: Int; var metric: String; var element_type: String; var columns: [String] }

    func run() async throws {
        let columns = try schema.map { try SegmentSchema.parseColumns($0) } ?? []
        let s = SegmentSchema(dimension: dim, elementType: f16 ? .float16 : .float32, metric: DistanceMetric(name: metric)!, columns: columns)
        switch try CollectionLocation(directory) {
        case .local(let path):
            try StrataCollection.create(path: path, schema: s).close()
        case .remote(let address):
            try await RemoteTarget.with(address, flags: remote) { target in await (try await target.create(schema: s)).close() }
        }
        let out = Output(path: directory, dimension: dim, metric: s.metric.description, element_type: s.elementType.description,
                         columns: columns.map(\.description))
        if json { try printJSON(out) } else { print("created \(directory): \(dim) dims, \(s.metric), \(columns.count) payload columns") }
    }
}

/// Collection options shared by the writing commands.
struct CollectionWriteFlags: ParsableArguments {
    @Option(name: .customLong("flush-rows"), help: "Flush the buffer into a segment every N buffered rows.")
    var flushRows: Int = CollectionOptions().flushThresholdRows

    @Option(name: .customLong("flush-mb"), help: "Flush the buffer once it holds about this many MiB.")
    var flushMB: Int = CollectionOptions().flushThresholdBytes >> 20

    @Flag(name: .customLong("no-index"), help: "Do not build ANN indexes for flushed segments.")
    var noIndex = false

    @Option(name: .customLong("min-index-rows"), help: "Segments with fewer rows get no index.")
    var minIndexRows: Int = IndexOptions.defaultMinimumRows

    @Option(name: .customLong("grace-seconds"), help: "Keep obsolete files this long for other processes.")
    var graceSeconds: Double = CollectionOptions().obsoleteFileGraceSeconds

    @Option(name: .customLong("payload-index"), help: "Comma-separated columns to index in flushed segments (filtered search).")
    var payloadIndex: String?

    @Option(name: .customLong("bm25"), help: "Comma-separated string columns to BM25-index in flushed segments.")
    var bm25: String?

    func validate() throws {
        guard flushRows >= 1 else { throw ValidationError("--flush-rows must be at least 1") }
        guard flushMB >= 1, flushMB <= 1 << 20 else { throw ValidationError("--flush-mb must be in 1...1048576") }
        guard graceSeconds.isFinite, graceSeconds >= 0 else { throw ValidationError("--grace-seconds must be a number >= 0") }
        guard minIndexRows >= 0 else { throw ValidationError("--min-index-rows must be >= 0") }
    }

    /// Throws a usage error when `--payload-index` or `--bm25` names a column the schema lacks (or,
    /// for BM25, one that holds no text), before anything is written.
    func check(against schema: SegmentSchema) throws(StrataError) {
        let o = options().search
        for name in o.indexedColumns where !schema.columns.contains(where: { $0.name == name }) {
            throw StrataError(.invalidArgument, "--payload-index: no column '\(name)' (columns: \(schema.columns.map(\.name).joined(separator: ", ")))")
        }
        for name in o.bm25Columns {
            guard let spec = schema.columns.first(where: { $0.name == name }) else {
                throw StrataError(.invalidArgument, "--bm25: no column '\(name)' (columns: \(schema.columns.map(\.name).joined(separator: ", ")))")
            }
            guard spec.type == .string || spec.type == .stringList else {
                throw StrataError(.invalidArgument, "--bm25: column '\(name)' is \(spec.type); BM25 needs a string or string_list column")
            }
        }
    }

    func options() -> CollectionOptions {
        var o = CollectionOptions()
        o.flushThresholdRows = flushRows
        o.flushThresholdBytes = flushMB << 20
        if noIndex { o.index = nil } else { o.index?.minimumRows = minIndexRows }
        o.obsoleteFileGraceSeconds = graceSeconds
        let list = { (s: String?) in s?.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } ?? [] }
        o.search = SearchSectionOptions(indexedColumns: list(payloadIndex), bm25Columns: list(bm25))
        return o
    }
}
