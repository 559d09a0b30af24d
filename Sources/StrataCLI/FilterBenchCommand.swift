import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata bench-filter`: recall@10 and queries/s of filtered search for a dataset's filters
/// (`filters.json` names, `groundtruth_<name>.ivecs`). To be merged into `strata bench --filter`.
struct FilterBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-filter",
        abstract: "Recall@10 and queries/s of filtered search per filter of a dataset (plan shown).")

    @Option(name: .long, help: "Dataset directory (query.fvecs, filters.json, groundtruth_<name>.ivecs).")
    var dataset: String = "../shared/datasets/pypi-minilm-100k"

    @Option(name: .long, help: "Segment with payload indexes (strata build --index --payload-index name,month,rank).")
    var segment: String

    @Option(name: .long, parsing: .upToNextOption, help: "Filter names (default: every filter of filters.json).")
    var filter: [String] = []

    @Option(name: .customLong("filter-json"), help: "Use this filter JSON for a single --filter name instead of the built-in one.")
    var filterJSON: String?

    @Option(name: [.customLong("L"), .customLong("list-size")], parsing: .upToNextOption, help: "Graph plan list sizes to sweep.")
    var L: [Int] = [16, 24, 32, 48, 64]

    @Option(name: .long, parsing: .upToNextOption, help: "Exact plan rerank depths to sweep.")
    var rerank: [Int] = [32, 64]

    @Option(name: .long, help: "Force the plan: exact or graph (default: the planner's choice).")
    var plan: String?

    @Option(name: .customLong("budget"), help: "Graph plan: non-passing expansions allowed (default automatic).")
    var budget: Int?

    @Flag(name: .customLong("unfiltered"), help: "Also sweep unfiltered graph search over the same L (the baseline).")
    var unfiltered = false

    @Option(name: .long, help: "Only the first N queries.")
    var limit: Int?

    @Option(name: .long, help: "Timed passes over the queries; queries/s is from the fastest (the machine is shared).")
    var passes: Int = 3

    @Option(name: .customLong("bm25-column"), help: "Also time BM25 queries (the text of queries.tsv, last column) over this column, and hybrid dense + BM25 (RRF).")
    var bm25Column: String?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    /// The dataset's filters in the filter language (filters.json gives only their descriptions).
    static let builtIn: [String: String] = [
        "month_ge_2025_01": #"{"must":[{"key":"month","range":{"gte":"2025-01"}}]}"#,
        "month_2024": #"{"must":[{"key":"month","range":{"gte":"2024-01","lte":"2024-12"}}]}"#,
        "name_prefix_py": #"{"must":[{"key":"name","prefix":{"value":"py","case_insensitive":true}}]}"#,
        "ranked": #"{"must_not":[{"is_null":{"key":"rank"}}]}"#,
    ]

    func validate() throws {
        if let plan, plan != "exact", plan != "graph" { throw ValidationError("--plan is exact or graph") }
        guard passes >= 1 else { throw ValidationError("--passes must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let budget, budget < 0 { throw ValidationError("--budget must be >= 0") }
        if filterJSON != nil, filter.count != 1 { throw ValidationError("--filter-json needs exactly one --filter name") }
        guard L.allSatisfy({ $0 >= 10 }), rerank.allSatisfy({ $0 >= 10 }) else { throw ValidationError("L and rerank must be >= 10") }
    }

    struct Point: Encodable {
        var filter: String
        var plan: String
        var parameter: String
        var recall_at_10: Double
        var qps: Double
        var p50_us: Double
        var failing_rows_returned: Int
        var records_per_query: Double
        var pq_per_query: Double
    }
    struct FilterInfo: Encodable {
        var name: String
        var json: String
        var passing_rows: Int
        var expected_passing: Int?
        var estimated_rows: Int
        var planner_choice: String
    }
    struct Output: Encodable {
        var segment: String
        var queries: Int
        var payload_index_bytes: [String: Int]
        var filters: [FilterInfo]
        var points: [Point]
        var text: [TextPoint]
    }
    struct TextPoint: Encodable {
        var mode: String
        var qps: Double
        var p50_us: Double
        var mean_hits: Double
        var index_bytes: Int?
    }

    func run() throws {
        let seg = try Segment.open(path: segment)
        let queryFile = try VectorFile(path: dataset + "/query.fvecs")
        // Optional; read through LineReader, which refuses a FIFO instead of blocking on it.
        let filtersText = try? Self.readText(dataset + "/filters.json")
        let manifest = filtersText.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any]
        let described = (manifest?["filters"] as? [String: Any]) ?? [:]
        let names = filter.isEmpty ? described.keys.sorted { ((described[$0] as? [String: Any])?["passing"] as? Int ?? 0) > ((described[$1] as? [String: Any])?["passing"] as? Int ?? 0) } : filter
        let n = min(queryFile.count, limit ?? Int.max)
        guard n > 0 else { throw StrataError(.invalidArgument, "no queries to time", path: dataset + "/query.fvecs") }
        guard queryFile.dimension == seg.schema.dimension else {
            throw StrataError(.dimensionMismatch, "queries have \(queryFile.dimension) dimensions, segment has \(seg.schema.dimension)",
                              path: dataset + "/query.fvecs")
        }
        let queries = (0..<n).map(queryFile.row)
        var points: [Point] = []
        var infos: [FilterInfo] = []
        let forced: FilterPlanKind? = plan.map { $0 == "exact" ? .exact : .graph }

        func measure(_ label: String, _ name: String, _ truth: [[Int32]], _ passing: Set<Int>,
                     _ body: ([Float]) throws -> ([SearchHit], FilteredSearchStats?)) throws -> Point {
            var found = 0, failing = 0, records = 0, pq = 0
            var latencies: [Double] = []
            latencies.reserveCapacity(n)
            // One warm-up pass over a few queries.
            for q in queries.prefix(50) { _ = try body(q) }
            var results: [[SearchHit]] = []
            var seconds = Double.infinity
            for _ in 0..<passes {
                results.removeAll(keepingCapacity: true)
                records = 0; pq = 0
                let start = now()
                for q in queries {
                    let t0 = now()
                    let (hits, stats) = try body(q)
                    latencies.append(now() - t0)
                    results.append(hits)
                    records += stats?.recordsRead ?? 0
                    pq += stats?.pqDistances ?? 0
                }
                seconds = min(seconds, now() - start)
            }
            for (i, hits) in results.enumerated() {
                let want = Set(truth[i].prefix(10).map { Int($0) })
                found += hits.prefix(10).filter { want.contains($0.row) }.count
                failing += hits.filter { !passing.contains($0.row) }.count
            }
            latencies.sort()
            return Point(filter: name, plan: label.components(separatedBy: " ")[0], parameter: label, recall_at_10: Double(found) / Double(10 * n),
                         qps: Double(n) / seconds, p50_us: latencies[latencies.count / 2] * 1e6, failing_rows_returned: failing,
                         records_per_query: Double(records) / Double(n), pq_per_query: Double(pq) / Double(n))
        }

        if unfiltered {
            let truth = try GroundTruth.read(dataset + "/groundtruth.ivecs", queries: n, k: min(10, seg.rowCount), rowCount: seg.rowCount)
            let all = Set(0..<seg.rowCount)
            for l in L {
                let p = try measure("unfiltered L=\(l)", "none", truth, all) { q in
                    let (h, s) = try seg.searchWithStats(query: q, options: SearchOptions(k: 10, listSize: l))
                    var st = FilteredSearchStats()
                    st.recordsRead = s?.recordsRead ?? 0
                    st.pqDistances = s?.pqDistances ?? 0
                    return (h, st)
                }
                points.append(p)
                if !json { print(pad("none", 18) + " " + pad(p.parameter, 18) + String(format: " recall@10 %.4f  %7.0f q/s  p50 %6.0f us", p.recall_at_10, p.qps, p.p50_us)) }
            }
        }

        for name in names {
            guard let text = filterJSON ?? Self.builtIn[name] else {
                throw StrataError(.invalidArgument, "no filter JSON for '\(name)' (built in: \(Self.builtIn.keys.sorted().joined(separator: ", "))); give --filter-json")
            }
            let f = try Filter(json: text)
            // The reference: every row's payload against the filter, without the indexes.
            var passing = Set<Int>()
            let schema = seg.schema
            for row in 0..<seg.rowCount where f.matches(try seg.payload(row: row), schema: schema) { passing.insert(row) }
            let viaIndex = try seg.rows(matching: f)
            guard viaIndex.count == passing.count, viaIndex.allSatisfy(passing.contains) else {
                throw StrataError(.corrupt, "payload index disagrees with the payload for \(name)")
            }
            let truthPath = dataset + "/groundtruth_\(name).ivecs"
            var truth: [[Int32]]
            if FileManager.default.fileExists(atPath: truthPath) {
                truth = try GroundTruth.read(truthPath, queries: n, k: min(10, passing.count), rowCount: seg.rowCount)
            } else {
                // No ground truth for this filter: exact filtered scans of the queries (slow, once).
                if !json { print("\(name): no \(truthPath); computing exact filtered ground truth") }
                truth = try queries.map { q in try seg.exactSearch(query: q, k: 10, filter: f).map { Int32($0.row) } }
            }
            let planned = try seg.planFilter(f)
            infos.append(FilterInfo(name: name, json: text, passing_rows: passing.count,
                                    expected_passing: (described[name] as? [String: Any])?["passing"] as? Int,
                                    estimated_rows: planned.estimatedRows, planner_choice: planned.kind.rawValue))
            if !json { print("\(name): \(passing.count) passing rows, estimate \(planned.estimatedRows), planner: \(planned.kind.rawValue)") }
            let kind = forced ?? planned.kind
            let sweep: [(String, FilteredSearchOptions)] = kind == .exact
                ? rerank.map { ("exact rerank=\($0)", FilteredSearchOptions(k: 10, rerank: $0, plan: forced)) }
                : L.map { ("graph L=\($0)", FilteredSearchOptions(k: 10, listSize: $0, nonPassingBudget: budget, plan: forced)) }
            for (label, options) in sweep {
                let p = try measure(label, name, truth, passing) { q in
                    let r = try seg.search(query: q, filter: f, options: options)
                    return (r.hits, r.stats)
                }
                points.append(p)
                if !json {
                    print(pad(name, 18) + " " + pad(label, 18) + String(format: " recall@10 %.4f  %7.0f q/s  p50 %6.0f us  records %.0f  pq %.0f  failing %d",
                                 p.recall_at_10, p.qps, p.p50_us, p.records_per_query, p.pq_per_query, p.failing_rows_returned))
                }
            }
        }
        var textPoints: [TextPoint] = []
        if let column = bm25Column {
            // A typed error (missing file: io, exit 2; invalid UTF-8: corrupt, exit 1), not a Foundation one.
            var cursor = try LineReader(path: dataset + "/queries.tsv").makeCursor()
            var texts: [String] = []
            while texts.count < n, let line = try cursor.next() {
                texts.append(String(line.split(separator: "\t", omittingEmptySubsequences: false).last ?? ""))
            }
            guard texts.count == n else {
                throw StrataError(.invalidArgument, "queries.tsv has \(texts.count) lines for \(n) queries (use --limit \(texts.count))",
                                  path: dataset + "/queries.tsv")
            }
            func time(_ mode: String, _ body: (Int) throws -> Int) throws -> TextPoint {
                for i in 0..<min(50, n) { _ = try body(i) }
                var best = Double.infinity, lat: [Double] = [], hits = 0
                for _ in 0..<passes {
                    hits = 0
                    let start = now()
                    for i in 0..<n { let t0 = now(); hits += try body(i); lat.append(now() - t0) }
                    best = min(best, now() - start)
                }
                lat.sort()
                return TextPoint(mode: mode, qps: Double(n) / best, p50_us: lat[lat.count / 2] * 1e6, mean_hits: Double(hits) / Double(n),
                                 index_bytes: seg.bm25IndexSizes[column])
            }
            textPoints.append(try time("bm25 k=10") { try seg.bm25Search(column: column, text: texts[$0], k: 10).count })
            textPoints.append(try time("hybrid dense L=32 + bm25, rrf, 50 candidates") {
                try seg.hybridSearch(HybridQuery(dense: queries[$0], text: (column: column, query: texts[$0]), k: 10, candidates: 50,
                                                 fusion: .rrf(), denseListSize: 32)).count
            })
            let f = try Filter(json: Self.builtIn["month_ge_2025_01"]!)
            textPoints.append(try time("hybrid dense + bm25, rrf, filter month_ge_2025_01") {
                try seg.hybridSearch(HybridQuery(dense: queries[$0], text: (column: column, query: texts[$0]), filter: f, k: 10,
                                                 candidates: 50, fusion: .rrf(), denseListSize: 32)).count
            })
            if !json {
                for t in textPoints {
                    print(pad(t.mode, 48) + String(format: " %7.0f q/s  p50 %6.0f us  hits %.1f", t.qps, t.p50_us, t.mean_hits))
                }
                print("bm25 index bytes (\(column)): \(seg.bm25IndexSizes[column] ?? 0)")
            }
        }
        if json {
            try printJSON(Output(segment: segment, queries: n, payload_index_bytes: seg.payloadIndexSizes, filters: infos, points: points,
                                 text: textPoints))
        } else {
            print("payload index bytes: " + seg.payloadIndexSizes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
    }
}

extension FilterBenchCommand {
    /// A whole (regular, UTF-8) text file.
    static func readText(_ path: String) throws(StrataError) -> String {
        var cursor = try LineReader(path: path).makeCursor()
        var lines: [String] = []
        while let line = try cursor.next() { lines.append(line) }
        return lines.joined(separator: "\n")
    }
}

/// `s` padded with spaces to `width` characters.
func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }
