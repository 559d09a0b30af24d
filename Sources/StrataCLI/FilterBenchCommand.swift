import ArgumentParser
import Strata
import StrataTools

/// `strata bench-filter`: recall@10 and queries/s of filtered search for a dataset's filters
/// (`filters.json` names, `groundtruth_<name>.ivecs`), measured by `FilterBench` (StrataTools).
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

    func validate() throws {
        if let plan, plan != "exact", plan != "graph" { throw ValidationError("--plan is exact or graph") }
        guard passes >= 1 else { throw ValidationError("--passes must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let budget, budget < 0 { throw ValidationError("--budget must be >= 0") }
        if filterJSON != nil, filter.count != 1 { throw ValidationError("--filter-json needs exactly one --filter name") }
        try Self.validateSweep(L: L, rerank: rerank)
    }

    /// The sweep's own limits (recall@10 needs 10 results), shared with `strata bench --filter`.
    static func validateSweep(L: [Int], rerank: [Int]) throws {
        guard L.allSatisfy({ $0 >= 10 }), rerank.allSatisfy({ $0 >= 10 }) else { throw ValidationError("L and rerank must be >= 10") }
    }

    func run() throws {
        var bench = FilterBench(dataset: dataset, segment: segment)
        bench.filters = filter
        bench.filterJSON = filterJSON
        bench.listSizes = L
        bench.rerankDepths = rerank
        bench.plan = plan.map { $0 == "exact" ? .exact : .graph }
        bench.budget = budget
        bench.unfiltered = unfiltered
        bench.limit = limit
        bench.passes = passes
        bench.bm25Column = bm25Column
        try Self.run(bench, json: json)
    }

    /// Runs `bench` and prints its lines, or with `json` one JSON object (`strata bench --filter` too).
    static func run(_ bench: FilterBench, json: Bool) throws {
        let output = try bench.run { line in if !json { print(line) } }
        if json { try printJSON(output) }
    }
}
