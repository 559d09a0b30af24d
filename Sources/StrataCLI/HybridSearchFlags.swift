import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata search` flags for filtered, BM25, sparse and hybrid queries.
struct HybridSearchFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Filter JSON: {\"must\"|\"should\"|\"must_not\": [conditions]} (Qdrant's shape).",
        discussion: """
        Conditions (a nested filter counts as one; at most \(Filter.maximumNesting) levels):
          {"key": "month", "match": {"value": "2024-05"}}
          {"key": "tags", "match": {"any": ["a", "b"]}}
          {"key": "rank", "range": {"gte": 1, "lt": 10}}
          {"key": "name", "prefix": "py"}
          {"key": "name", "prefix": {"value": "Py", "case_insensitive": true}}
          {"is_null": {"key": "rank"}}  or  {"key": "rank", "is_null": true}
        Values are strings, integers, floats or booleans; range bounds are
        numbers or strings (compared as UTF-8 bytes); case_insensitive folds
        ASCII letters. Unknown fields, unknown columns and values of the
        wrong type are errors.
        """))
    var filter: String?

    @Option(name: .customLong("query-text"), help: "BM25 text query over a column indexed with `build --bm25`.")
    var queryText: String?

    @Option(name: .customLong("text-column"), help: "Column of --query-text (default: the segment's only BM25 column).")
    var textColumn: String?

    @Option(name: .long, help: "Sparse query vector: index:weight,index:weight,...")
    var sparse: String?

    @Option(name: .long, help: "Fusion when several of --query, --sparse, --query-text are given: rrf or weighted.")
    var fusion: String = "rrf"

    @Option(name: .long, help: "Weighted fusion: dense,sparse,text weights (finite numbers).")
    var weights: String = "1,1,1"

    @Option(name: .long, help: "Filtered search: force the plan (exact or graph).")
    var plan: String?

    @Option(name: .long, help: "Filtered exact plan: candidates rescored exactly.")
    var rerank: Int = FilteredSearchOptions().rerank

    @Option(name: .long, help: "Candidates per side before fusion.")
    var candidates: Int = 50

    var isActive: Bool { filter != nil || queryText != nil || sparse != nil }

    func validate() throws {
        guard fusion == "rrf" || fusion == "weighted" else { throw ValidationError("--fusion is rrf or weighted") }
        if let plan, plan != "exact", plan != "graph" { throw ValidationError("--plan is exact or graph") }
        let w = weights.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
        guard w.count == 3, w.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--weights takes three numbers: dense,sparse,text")
        }
        // Double() also reads "nan", "inf" and "1e400" (= inf): a non-finite weight makes every
        // fused score NaN or infinite, so it is refused here (and by HybridFusion.validate()).
        guard w.allSatisfy({ $0!.isFinite }), w.reduce(0.0, { $0 + abs($1!) }).isFinite else {
            throw ValidationError("--weights must be finite numbers with a finite sum, got \(weights)")
        }
        guard rerank >= 1, candidates >= 1 else { throw ValidationError("--rerank and --candidates must be positive") }
    }

    struct Hit: Encodable {
        var id: UInt64
        var row: Int
        var distance: Float?
        var score: Double?
        var dense_rank: Int?
        var sparse_rank: Int?
        var text_rank: Int?
    }
    struct QueryResult: Encodable { var query: Int; var plan: String?; var estimated_rows: Int?; var hits: [Hit] }
    struct Output: Encodable {
        var queries: Int
        var k: Int
        var mode: String
        var filter: String?
        var seconds: Double
        var qps: Double
        var recall_at_k: Double?
        var results: [QueryResult]
    }

    static func run(_ cmd: SearchCommand) throws {
        let h = cmd.hybrid
        let seg = try Segment.open(path: cmd.segment, options: SegmentOpenOptions(verify: cmd.verify))
        let filter = try h.filter.map { try Filter(json: $0) }
        if let filter { try filter.validate(against: seg.schema) }
        let sparse = try h.sparse.map { try SparseVector(parsing: $0) }
        var textColumn = h.textColumn
        if h.queryText != nil, textColumn == nil {
            guard seg.bm25Columns.count == 1 else {
                throw StrataError(.invalidArgument, "--query-text needs --text-column (BM25 columns: \(seg.bm25Columns.joined(separator: ", ")))")
            }
            textColumn = seg.bm25Columns[0]
        }
        var vectors: [[Float]] = []
        if let path = cmd.query {
            let file = try VectorFile(path: path)
            guard file.dimension == seg.schema.dimension || file.count == 0 else {
                throw StrataError(.dimensionMismatch, "queries have \(file.dimension) dimensions, segment has \(seg.schema.dimension)", path: path)
            }
            vectors = (0..<min(file.count, cmd.limit ?? file.count)).map(file.row)
        }
        let sides = (vectors.isEmpty ? 0 : 1) + (sparse == nil ? 0 : 1) + (h.queryText == nil ? 0 : 1)
        let w = h.weights.split(separator: ",").map { Double($0)! }
        let fusion: HybridFusion = h.fusion == "rrf" ? .rrf() : .weighted(dense: w[0], sparse: w[1], text: w[2])
        let mode = sides > 1 ? "hybrid-\(h.fusion)" : (!vectors.isEmpty ? "filtered" : (sparse != nil ? "sparse" : "bm25"))
        var options = FilteredSearchOptions(k: cmd.k, listSize: max(cmd.listSize, cmd.k), rerank: h.rerank)
        options.plan = h.plan.map { $0 == "exact" ? .exact : .graph }
        var results: [QueryResult] = []
        let count = max(1, vectors.count)
        let start = monotonicSeconds()
        for i in 0..<count {
            if sides == 1, !vectors.isEmpty {
                let r = try seg.search(query: vectors[i], filter: filter ?? Filter(), options: options)
                results.append(QueryResult(query: i, plan: r.plan.kind.rawValue, estimated_rows: r.plan.estimatedRows,
                                           hits: r.hits.map { Hit(id: $0.id, row: $0.row, distance: $0.distance) }))
            } else if sides == 1, let sparse {
                let hits = try seg.sparseSearch(query: sparse, k: cmd.k, filter: filter)
                results.append(QueryResult(query: i, hits: hits.map { Hit(id: $0.id, row: $0.row, score: Double($0.score)) }))
            } else if sides == 1, let text = h.queryText {
                let hits = try seg.bm25Search(column: textColumn!, text: text, k: cmd.k, filter: filter)
                results.append(QueryResult(query: i, hits: hits.map { Hit(id: $0.id, row: $0.row, score: Double($0.score)) }))
            } else {
                let q = HybridQuery(dense: vectors.isEmpty ? nil : vectors[i], sparse: sparse,
                                    text: h.queryText.map { (column: textColumn!, query: $0) }, filter: filter, k: cmd.k,
                                    candidates: h.candidates, fusion: fusion, denseListSize: cmd.listSize)
                let hits = try seg.hybridSearch(q)
                results.append(QueryResult(query: i, hits: hits.map {
                    Hit(id: $0.id, row: $0.row, score: $0.score, dense_rank: $0.denseRank, sparse_rank: $0.sparseRank, text_rank: $0.textRank)
                }))
            }
        }
        let seconds = monotonicSeconds() - start
        var recall: Double? = nil
        if let gt = cmd.groundtruth, !vectors.isEmpty {
            let truth = try readIvecs(path: gt)
            var found = 0, total = 0
            for r in results where r.query < truth.count {
                let want = Set(truth[r.query].prefix(cmd.k).map { Int($0) })
                found += r.hits.filter { want.contains($0.row) }.count
                total += want.count
            }
            recall = total > 0 ? Double(found) / Double(total) : nil
        }
        let out = Output(queries: count, k: cmd.k, mode: mode, filter: h.filter, seconds: seconds,
                         qps: seconds > 0 ? Double(count) / seconds : 0, recall_at_k: recall, results: results)
        if cmd.json { try printJSON(out); return }
        for r in results {
            print("query \(r.query):" + (r.plan.map { " plan \($0), estimated \(r.estimated_rows ?? 0) rows" } ?? ""))
            for (rank, hit) in r.hits.enumerated() {
                let value = hit.distance.map { String(format: "distance %.6f", $0) } ?? String(format: "score %.6f", hit.score ?? 0)
                print(String(format: "  %2d  id %-12llu row %-10d ", rank + 1, hit.id, hit.row) + value)
            }
        }
        var summary = "\(count) queries, \(mode), " + String(format: "%.1f queries/s (one thread)", out.qps)
        if let recall { summary += String(format: ", recall@%d %.4f", cmd.k, recall) }
        print(summary)
    }
}
