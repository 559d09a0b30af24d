// The filtered-search benchmark (`strata bench-filter`, and `strata bench --filter`): per filter of a
// dataset, the passing rows checked against the payload indexes, the planner's choice, and a sweep of
// graph list sizes or exact rerank depths through ``BenchSweep``; optionally the unfiltered baseline
// over the same list sizes and BM25 / hybrid text queries.
import Foundation
import StrataFormat
import Strata

/// Settings and results of the filtered-search benchmark. Field names of the result types are the
/// keys of `bench-filter --json`.
package struct FilterBench {
    /// Dataset directory (query.fvecs, filters.json, groundtruth_<name>.ivecs, queries.tsv).
    package var dataset: String
    /// Segment with payload indexes.
    package var segment: String
    /// Filter names; empty: every filter of filters.json, most passing rows first.
    package var filters: [String] = []
    /// Filter JSON for a single filter name instead of the built-in one.
    package var filterJSON: String?
    /// Graph plan list sizes.
    package var listSizes: [Int] = [16, 24, 32, 48, 64]
    /// Exact plan rerank depths.
    package var rerankDepths: [Int] = [32, 64]
    /// A forced plan (exact or graph); nil: the planner's choice.
    package var plan: FilterPlanKind?
    /// Graph plan: non-passing expansions allowed (nil: automatic).
    package var budget: Int?
    /// Also sweep unfiltered graph search over the same list sizes.
    package var unfiltered = false
    /// Only the first N queries.
    package var limit: Int?
    /// Timed passes per setting; queries/s is from the fastest.
    package var passes = 3
    /// Also time BM25 (and hybrid) queries over this column.
    package var bm25Column: String?

    package init(dataset: String, segment: String) {
        self.dataset = dataset
        self.segment = segment
    }

    /// The dataset's filters in the filter language (filters.json gives only their descriptions).
    package static let builtIn: [String: String] = [
        "month_ge_2025_01": #"{"must":[{"key":"month","range":{"gte":"2025-01"}}]}"#,
        "month_2024": #"{"must":[{"key":"month","range":{"gte":"2024-01","lte":"2024-12"}}]}"#,
        "name_prefix_py": #"{"must":[{"key":"name","prefix":{"value":"py","case_insensitive":true}}]}"#,
        "ranked": #"{"must_not":[{"is_null":{"key":"rank"}}]}"#,
    ]

    /// Queries warmed up before each setting.
    static let warmupQueries = 50

    package struct Point: Encodable {
        var filter: String
        var plan: String
        var parameter: String
        package var recall_at_10: Double
        package var qps: Double
        package var p50_us: Double
        package var failing_rows_returned: Int
        package var records_per_query: Double
        package var pq_per_query: Double
    }
    package struct FilterInfo: Encodable {
        var name: String
        var json: String
        var passing_rows: Int
        var expected_passing: Int?
        var estimated_rows: Int
        var planner_choice: String
    }
    package struct Output: Encodable {
        var segment: String
        var queries: Int
        var payload_index_bytes: [String: Int]
        var filters: [FilterInfo]
        package var points: [Point]
        var text: [TextPoint]
    }
    package struct TextPoint: Encodable {
        var mode: String
        var qps: Double
        var p50_us: Double
        var mean_hits: Double
        var index_bytes: Int?
    }

    /// Runs the benchmark; `log` gets each human-readable line as soon as it is known (the text
    /// output of `bench-filter`).
    package func run(log: (String) -> Void) throws(StrataError) -> Output {
        let seg = try Segment.open(path: segment)
        let queryFile = try VectorFile(path: dataset + "/query.fvecs")
        // Optional; read through LineReader, which refuses a FIFO instead of blocking on it.
        let filtersText = try? Self.readText(dataset + "/filters.json")
        let manifest = filtersText.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any]
        let described = (manifest?["filters"] as? [String: Any]) ?? [:]
        let names = filters.isEmpty ? described.keys.sorted { ((described[$0] as? [String: Any])?["passing"] as? Int ?? 0) > ((described[$1] as? [String: Any])?["passing"] as? Int ?? 0) } : filters
        let n = min(queryFile.count, limit ?? Int.max)
        guard n > 0 else { throw StrataError(.invalidArgument, "no queries to time", path: dataset + "/query.fvecs") }
        guard queryFile.dimension == seg.schema.dimension else {
            throw StrataError(.dimensionMismatch, "queries have \(queryFile.dimension) dimensions, segment has \(seg.schema.dimension)",
                              path: dataset + "/query.fvecs")
        }
        let queries = (0..<n).map(queryFile.row)
        let sweep = BenchSweep(queries: n, warmup: Self.warmupQueries, passes: passes)
        var points: [Point] = []
        var infos: [FilterInfo] = []

        func point(_ label: String, _ name: String, _ truth: [[Int32]], _ passing: Set<Int>, _ pass: BenchPass<SearchHit>) -> Point {
            let failing = pass.results.reduce(0) { $0 + $1.filter { !passing.contains($0.row) }.count }
            return Point(filter: name, plan: label.components(separatedBy: " ")[0], parameter: label, recall_at_10: pass.recall(truth, at: 10),
                         qps: pass.qps, p50_us: pass.latencyMilliseconds(percentile: 50) * 1000, failing_rows_returned: failing,
                         records_per_query: pass.perQuery(\.recordsRead), pq_per_query: pass.perQuery(\.pqDistances))
        }

        if unfiltered {
            let truth = try GroundTruth.read(dataset + "/groundtruth.ivecs", queries: n, k: min(10, seg.rowCount), rowCount: seg.rowCount)
            let all = Set(0..<seg.rowCount)
            _ = try sweep.run(listSizes, prepare: { (l) throws(StrataError) -> BenchSweep.Search<SearchHit> in
                let options = SearchOptions(k: 10, listSize: l)
                return { (q) throws(StrataError) in
                    let (h, s) = try seg.searchWithStats(query: queries[q], options: options)
                    return (h, BenchCounters(recordsRead: s?.recordsRead ?? 0, pqDistances: s?.pqDistances ?? 0))
                }
            }, each: { l, pass in
                let p = point("unfiltered L=\(l)", "none", truth, all, pass)
                points.append(p)
                log(Self.pad("none", 18) + " " + Self.pad(p.parameter, 18) + String(format: " recall@10 %.4f  %7.0f q/s  p50 %6.0f us", p.recall_at_10, p.qps, p.p50_us))
            })
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
                log("\(name): no \(truthPath); computing exact filtered ground truth")
                truth = []
                for q in queries { truth.append(try seg.exactSearch(query: q, k: 10, filter: f).map { Int32($0.row) }) }
            }
            let planned = try seg.planFilter(f)
            infos.append(FilterInfo(name: name, json: text, passing_rows: passing.count,
                                    expected_passing: (described[name] as? [String: Any])?["passing"] as? Int,
                                    estimated_rows: planned.estimatedRows, planner_choice: planned.kind.rawValue))
            log("\(name): \(passing.count) passing rows, estimate \(planned.estimatedRows), planner: \(planned.kind.rawValue)")
            let kind = plan ?? planned.kind
            let settings: [(String, FilteredSearchOptions)] = kind == .exact
                ? rerankDepths.map { ("exact rerank=\($0)", FilteredSearchOptions(k: 10, rerank: $0, plan: plan)) }
                : listSizes.map { ("graph L=\($0)", FilteredSearchOptions(k: 10, listSize: $0, nonPassingBudget: budget, plan: plan)) }
            _ = try sweep.run(settings, prepare: { (setting) throws(StrataError) -> BenchSweep.Search<SearchHit> in
                let options = setting.1
                return { (q) throws(StrataError) in
                    let r = try seg.search(query: queries[q], filter: f, options: options)
                    return (r.hits, BenchCounters(r.stats))
                }
            }, each: { setting, pass in
                let p = point(setting.0, name, truth, passing, pass)
                points.append(p)
                log(Self.pad(name, 18) + " " + Self.pad(setting.0, 18) + String(format: " recall@10 %.4f  %7.0f q/s  p50 %6.0f us  records %.0f  pq %.0f  failing %d",
                                                                                 p.recall_at_10, p.qps, p.p50_us, p.records_per_query, p.pq_per_query, p.failing_rows_returned))
            })
        }
        var textPoints: [TextPoint] = []
        if let column = bm25Column {
            textPoints = try textBench(seg, column: column, queries: queries, sweep: sweep)
            for t in textPoints {
                log(Self.pad(t.mode, 48) + String(format: " %7.0f q/s  p50 %6.0f us  hits %.1f", t.qps, t.p50_us, t.mean_hits))
            }
            log("bm25 index bytes (\(column)): \(seg.bm25IndexSizes[column] ?? 0)")
        }
        log("payload index bytes: " + seg.payloadIndexSizes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        return Output(segment: segment, queries: n, payload_index_bytes: seg.payloadIndexSizes, filters: infos, points: points, text: textPoints)
    }

    /// BM25 queries (the text of queries.tsv, last column) over `column`, and hybrid dense + BM25
    /// (RRF), unfiltered and filtered.
    private func textBench(_ seg: Segment, column: String, queries: [[Float]], sweep: BenchSweep) throws(StrataError) -> [TextPoint] {
        let n = queries.count
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
        func time<Hit: Sendable>(_ mode: String, _ search: @escaping @Sendable (Int) throws(StrataError) -> [Hit]) throws(StrataError) -> TextPoint {
            let pass = try sweep.measure { (q) throws(StrataError) in (try search(q), BenchCounters()) }
            let hits = pass.results.reduce(0) { $0 + $1.count }
            return TextPoint(mode: mode, qps: pass.qps, p50_us: pass.latencyMilliseconds(percentile: 50) * 1000, mean_hits: Double(hits) / Double(n),
                             index_bytes: seg.bm25IndexSizes[column])
        }
        let texts0 = texts
        var out: [TextPoint] = []
        out.append(try time("bm25 k=10") { (i) throws(StrataError) in try seg.bm25Search(column: column, text: texts0[i], k: 10) })
        out.append(try time("hybrid dense L=32 + bm25, rrf, 50 candidates") { (i) throws(StrataError) in
            try seg.hybridSearch(HybridQuery(dense: queries[i], text: (column: column, query: texts0[i]), k: 10, candidates: 50,
                                             fusion: .rrf(), denseListSize: 32))
        })
        let f = try Filter(json: Self.builtIn["month_ge_2025_01"]!)
        out.append(try time("hybrid dense + bm25, rrf, filter month_ge_2025_01") { (i) throws(StrataError) in
            try seg.hybridSearch(HybridQuery(dense: queries[i], text: (column: column, query: texts0[i]), filter: f, k: 10,
                                             candidates: 50, fusion: .rrf(), denseListSize: 32))
        })
        return out
    }

    /// A whole (regular, UTF-8) text file.
    static func readText(_ path: String) throws(StrataError) -> String {
        var cursor = try LineReader(path: path).makeCursor()
        var lines: [String] = []
        while let line = try cursor.next() { lines.append(line) }
        return lines.joined(separator: "\n")
    }

    /// `s` padded with spaces to `width` characters.
    static func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }
}
