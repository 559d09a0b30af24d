import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata search`: exact k-NN for each query vector of a file.
struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Exact k-nearest-neighbour search for each query in a .fvecs/.npy file.")

    @Argument(help: "Segment file, collection directory, or s3://BUCKET/PATH.")
    var segment: String

    @Option(name: .long, help: "Query vectors (.fvecs or .npy); optional with --query-text or --sparse.")
    var query: String?

    @OptionGroup var hybrid: HybridSearchFlags

    @Option(name: .long, help: "Results per query.")
    var k: Int = 10

    @Option(name: .long, help: "Only the first N queries.")
    var limit: Int?

    @Option(name: .long, help: "Ground truth .ivecs (row numbers): report recall@k.")
    var groundtruth: String?

    @Option(name: .long, help: "Queries scored together per scan of the vectors (1: one query at a time).")
    var batch: Int = 1

    @Option(name: .customLong("list-size"),
            help: "Graph search list size L (>= k) for indexed segments (default: max(64, k)); on a segment file it switches from exact to graph search, which needs an index.")
    var listSizeOption: Int?

    @Flag(name: .long, help: "Exact search in every segment (a segment file is searched exactly unless --list-size is given).")
    var exact = false

    /// The graph search list size: `--list-size`, or max(default, k).
    var listSize: Int { listSizeOption ?? max(SearchOptions().listSize, k) }

    @Flag(name: .long, help: ArgumentHelp("Check the checksum of every section a query reads (once per segment) and fail with exit 1 on damage.",
                                           discussion: "Without it, search trusts section bytes (open does not read them); see `strata scrub`."))
    var verify = false

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @OptionGroup var remote: RemoteFlags

    func validate() throws {
        guard k >= 1 else { throw ValidationError("--k must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let limit, limit < 0 { throw ValidationError("--limit must be >= 0") }
        if let l = listSizeOption {
            guard l >= k else { throw ValidationError("--list-size (\(l)) must be at least --k (\(k))") }
            guard !exact else { throw ValidationError("give --list-size (graph search) or --exact, not both") }
            guard batch == 1 else { throw ValidationError("--batch applies to exact search; graph search (--list-size) takes one query at a time") }
        }
    }

    struct Hit: Encodable { var id: UInt64; var row: Int; var distance: Float }
    struct QueryResult: Encodable { var query: Int; var hits: [Hit] }
    struct Output: Encodable {
        var queries: Int
        var k: Int
        var seconds: Double
        var qps: Double
        var batch: Int
        var recall_at_k: Double?
        var rss_anon_mb_after_open: Double?
        var results: [QueryResult]
    }

    func run() async throws {
        if CollectionReadCommands.isCollection(segment) {
            guard hybrid.queryText == nil, hybrid.sparse == nil else {
                throw ValidationError("--query-text and --sparse work on segment files; collections take --query with an optional --filter")
            }
            guard let query else { throw ValidationError("--query is required") }
            return try await CollectionReadCommands.search(directory: segment, query: query, k: k, limit: limit, groundtruth: groundtruth,
                                                           listSize: listSize, exact: exact, filter: hybrid.filter, verify: verify, json: json,
                                                           remote: remote)
        }
        if hybrid.isActive { return try HybridSearchFlags.run(self) }
        guard let query else { throw ValidationError("--query is required (unless --query-text or --sparse is given)") }
        // Exact search reads the vectors section only: no graph-record cache (graph search, with
        // --list-size, gets the default one).
        let cache = listSizeOption == nil ? 0 : SegmentOpenOptions.defaultCacheBudgetBytes
        let seg = try Segment.open(path: segment, options: SegmentOpenOptions(cacheBudgetBytes: cache, verify: verify))
        let rssAfterOpen = ProcessStatistics.residentAnonymousMB()
        let queries = try VectorFile(path: query)
        guard queries.dimension == seg.schema.dimension || queries.count == 0 else {
            throw StrataError(.dimensionMismatch, "queries have \(queries.dimension) dimensions, segment has \(seg.schema.dimension)", path: query)
        }
        let n = min(queries.count, limit ?? queries.count)
        let graph = listSizeOption.map { SearchOptions(k: k, listSize: $0) }
        if graph != nil, !seg.hasIndex {
            throw StrataError(.invalidArgument, "--list-size needs a segment with an index (build --index); this one is searched exactly (drop --list-size)", path: segment)
        }
        // Checked before searching: a file that cannot give recall@k fails fast.
        let truth = try groundtruth.map { (p) throws(StrataError) in try GroundTruth.read(p, queries: n, k: k, rowCount: seg.rowCount) }
        var results: [QueryResult] = []
        let start = monotonicSeconds()
        var q = 0
        while q < n {
            let end = min(n, q + batch)
            let batchHits: [[SearchHit]]
            if let graph {
                batchHits = [try seg.search(query: queries.row(q), options: graph)]
            } else {
                batchHits = batch == 1 ? [try seg.exactSearch(query: queries.row(q), k: k)]
                                       : try seg.exactSearch(queries: (q..<end).map(queries.row), k: k)
            }
            for (i, hits) in batchHits.enumerated() {
                results.append(QueryResult(query: q + i, hits: hits.map { Hit(id: $0.id, row: $0.row, distance: $0.distance) }))
            }
            q = end
        }
        let seconds = monotonicSeconds() - start
        let recallAtK = truth.flatMap { GroundTruth.recall(results.map { $0.hits.map(\.row) }, truth: $0, depth: k) }
        let out = Output(queries: n, k: k, seconds: seconds, qps: seconds > 0 ? Double(n) / seconds : 0, batch: batch,
                         recall_at_k: recallAtK, rss_anon_mb_after_open: rssAfterOpen, results: results)
        if json { try printJSON(out); return }
        for r in results {
            print("query \(r.query):")
            for (rank, h) in r.hits.enumerated() {
                print(String(format: "  %2d  id %-12llu row %-10d distance %.6f", rank + 1, h.id, h.row, h.distance))
            }
        }
        var summary = graph.map { String(format: "%d queries, graph L=%d, %.1f queries/s (one thread)", n, $0.listSize, out.qps) }
            ?? String(format: "%d queries, exact, batch %d, %.1f queries/s (one thread)", n, batch, out.qps)
        if let recallAtK { summary += String(format: ", recall@%d %.4f", k, recallAtK) }
        if let rssAfterOpen { summary += String(format: ", RssAnon after open %.1f MB", rssAfterOpen) }
        print(summary)
    }
}
