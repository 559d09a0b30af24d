import ArgumentParser
import Foundation
import Strata
import StrataTools

/// `strata bench`: build (or reuse) an indexed segment and sweep the search list size.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Recall and queries/s of graph search over a dataset (base.fvecs, query.fvecs, groundtruth.ivecs).")

    @Option(name: .long, help: "Dataset directory.")
    var dataset: String = "../shared/datasets/pypi-minilm-100k"

    @Option(name: .long, help: "Reuse this segment when it exists, else build it there.")
    var segment: String?

    @Option(name: .long, help: "Results per query.")
    var k: Int = 10

    @Option(name: [.customLong("L"), .customLong("list-size")], parsing: .upToNextOption, help: "Search list sizes L to sweep.")
    var L: [Int] = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256]

    @Option(name: .customLong("beam-width"), help: "Graph records read per hop (W); default 1 warm, 8 with --cold.")
    var beamWidth: Int?

    @Flag(name: .long, help: "Evict the segment from the page cache before each pass.")
    var cold = false

    @Flag(name: .customLong("read-ahead"), inversion: .prefixedNo,
          help: "Start each beam's record reads together (madvise WILLNEED); default on with --cold, off warm.")
    var readAhead: Bool?

    @Flag(name: .customLong("direct-io"),
          help: "Read graph records with direct I/O (O_DIRECT, io_uring), keeping --beam-width reads in flight (pipelined); the page cache holds none of the graph.")
    var directIO = false

    @Option(name: .customLong("cache-mb"), help: "MiB of RAM for the cache of graph records nearest the entry point (default 14; 0 disables).")
    var cacheMB: Double?
    @Option(name: .customLong("cache-samples"), help: "Fill the node cache with the records that this many sample searches (rows of the segment) expand most, instead of BFS levels from the entry point; run at open (default 0: BFS).")
    var cacheSamples: Int = 0
    @Option(name: .customLong("navigation-mb"), help: "MiB of RAM for the navigation graph over sampled rows that picks where each search starts (default 2 with --direct-io, else 0; 0 starts at the medoid).")
    var navigationMB: Double?

    @Option(name: .long, help: "Query threads (1: queries one at a time from one thread).")
    var threads: Int = 1

    @Option(name: .long, help: "Only the first N queries.")
    var limit: Int?

    @Option(name: .long, help: "Metric of the built segment.")
    var metric: String = "cosine"

    @Flag(name: .long, help: "Store vectors as float16 in the built segment.")
    var f16 = false

    @OptionGroup var index: IndexFlags

    @Option(name: .long, parsing: .upToNextOption,
            help: "Filtered search: filter names of the dataset's filters.json (needs --segment built with --payload-index); runs the bench-filter sweep.")
    var filter: [String] = []

    @Option(name: .long, parsing: .upToNextOption, help: "Filtered search: exact-plan rerank depths to sweep.")
    var rerank: [Int] = [32, 64]

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard k >= 1, threads >= 1, (beamWidth ?? 1) >= 1, L.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("k, threads, beam width and L must be positive")
        }
        if filter.isEmpty, let small = L.first(where: { $0 < k }) {
            throw ValidationError("every --L must be at least --k (\(k)); got \(small)")
        }
        if !filter.isEmpty { try FilterBenchCommand.validateSweep(L: L, rerank: rerank) }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let cacheMB, !(cacheMB >= 0 && cacheMB <= 1_048_576) { throw ValidationError("--cache-mb must be in 0...1048576") }
        if let navigationMB, !(navigationMB >= 0 && navigationMB <= 1_048_576) { throw ValidationError("--navigation-mb must be in 0...1048576") }
        if !(0...SegmentOpenOptions.maximumCacheSampleSearches).contains(cacheSamples) {
            throw ValidationError("--cache-samples must be in 0...\(SegmentOpenOptions.maximumCacheSampleSearches)")
        }
        guard DistanceMetric(name: metric) != nil else { throw ValidationError("unknown metric '\(metric)'") }
    }

    struct Point: Encodable {
        var L: Int
        var recall_at_10: Double
        var recall_at_k: Double
        var qps: Double
        var p50_ms: Double
        var p99_ms: Double
        var reads_per_query: Double
        var records_per_query: Double
        var cached_records_per_query: Double
        /// Nodes expanded from a sector read for another (block-aware layout), beyond records_per_query.
        var block_expansions_per_query: Double
        var hops_per_query: Double
    }

    struct Output: Encodable {
        var dataset: String
        var segment: String
        var build_seconds: Double?
        var segment_bytes: UInt64
        var rows: Int
        var queries: Int
        var k: Int
        var threads: Int
        var cold: Bool
        var beam_width: Int
        var read_ahead: Bool
        var direct_io: Bool
        var cache_nodes: Int
        /// Sample searches that ranked the node cache at open (0: BFS order).
        var cache_sample_searches: Int
        var cache_mb: Double
        var navigation_rows: Int
        var navigation_mb: Double
        var kernels: String
        var rss_anon_mb_after_open: Double?
        var rss_anon_mb_after_sweep: Double?
        var disk_read_bytes: UInt64?
        var points: [Point]
    }

    func run() throws {
        if !filter.isEmpty {
            guard let segment else {
                throw ValidationError("--filter needs --segment: a segment built with --payload-index (see strata bench-filter --help)")
            }
            var bench = FilterBench(dataset: dataset, segment: segment)
            bench.unfiltered = true
            bench.filters = filter
            bench.listSizes = L
            bench.rerankDepths = rerank
            bench.limit = limit
            return try FilterBenchCommand.run(bench, json: json)
        }
        let segmentPath = segment ?? NSTemporaryDirectory() + "/strata-bench-\(getpid()).seg"
        var buildSeconds: Double? = nil
        if !FileManager.default.fileExists(atPath: segmentPath) {
            var options = SegmentWriterOptions()
            options.index = index.options(force: true)
            options.progress = indexBuildProgressPrinter()
            progress("building \(segmentPath)...")
            let built = try SegmentBuild.run(
                vectors: dataset + "/base.fvecs", payload: nil, columns: [], ids: nil, metric: DistanceMetric(name: metric)!,
                elementType: f16 ? .float16 : .float32, options: options, out: segmentPath, progress: progress)
            buildSeconds = built.seconds
            // The build's freed heap stays in this process's RssAnon unless returned to the kernel;
            // the open below is measured as a serving process would see it.
            IndexMemory.trimHeap()
        }
        defer { if segment == nil { try? FileManager.default.removeItem(atPath: segmentPath) } }
        let readBefore = ProcessStatistics.diskReadBytes()
        var openOptions = SegmentOpenOptions(cacheBudgetBytes: cacheMB.map { Int($0 * 1048576) } ?? SegmentOpenOptions.defaultCacheBudgetBytes)
        openOptions.directIO = directIO
        openOptions.cacheSampleSearches = cacheSamples
        if let navigationMB { openOptions.navigationBudgetBytes = Int(navigationMB * 1048576) }
        let beamWidth = self.beamWidth ?? (directIO ? SearchOptions.defaultDirectBeamWidth
                                           : cold ? SearchOptions.defaultColdBeamWidth : SearchOptions.defaultWarmBeamWidth)
        let readAhead = directIO ? false : self.readAhead ?? cold
        var seg = try Segment.open(path: segmentPath, options: openOptions)
        let rssAfterOpen = ProcessStatistics.residentAnonymousMB()
        if !seg.hasIndex { FileHandle.standardError.write(Data("note: segment has no index; searches are exact\n".utf8)) }
        let queryFile = try VectorFile(path: dataset + "/query.fvecs")
        guard queryFile.dimension == seg.schema.dimension || queryFile.count == 0 else {
            throw StrataError(.dimensionMismatch, "queries have \(queryFile.dimension) dimensions, segment has \(seg.schema.dimension)",
                              path: dataset + "/query.fvecs")
        }
        let n = min(queryFile.count, limit ?? Int.max)
        let truth = try GroundTruth.read(dataset + "/groundtruth.ivecs", queries: n, k: k, rowCount: seg.rowCount)
        let queries = (0..<n).map(queryFile.row)
        var points: [Point] = []
        var readStart: UInt64? = nil
        let sweep = BenchSweep(queries: n, threads: threads)
        _ = try sweep.run(L, prepare: { (listSize) throws(StrataError) -> BenchSweep.Search<SearchHit> in
            if cold {
                // Pages mapped by this process survive POSIX_FADV_DONTNEED, so drop the mapping
                // first (the old Segment unmaps when released), evict, then map afresh.
                seg = try Segment.open(path: segmentPath, options: openOptions)
                FileSystem.evictFromPageCache(segmentPath)
            }
            readStart = ProcessStatistics.diskReadBytes()
            let options = SearchOptions(k: k, listSize: listSize, beamWidth: beamWidth, readAhead: readAhead)
            let seg = seg
            return { (q) throws(StrataError) in
                let (hits, stats) = try seg.searchWithStats(query: queries[q], options: options)
                return (hits, BenchCounters(stats))
            }
        }, each: { listSize, pass in
            let readBytes = ProcessStatistics.diskReadBytes().flatMap { end in readStart.map { end - $0 } } ?? 0
            let p = Point(L: listSize, recall_at_10: pass.recall(truth, at: 10), recall_at_k: pass.recall(truth, at: k),
                          qps: pass.qps,
                          p50_ms: pass.latencyMilliseconds(percentile: 50),
                          p99_ms: pass.latencyMilliseconds(percentile: 99),
                          reads_per_query: Double(readBytes) / 4096 / Double(max(n, 1)),
                          records_per_query: pass.perQuery(\.recordsRead),
                          cached_records_per_query: pass.perQuery(\.cachedRecords),
                          block_expansions_per_query: pass.perQuery(\.blockExpansions),
                          hops_per_query: pass.perQuery(\.hops))
            points.append(p)
            if !json {
                if points.count == 1 {
                    print("   L  recall@10      QPS   p50 ms   p99 ms  reads/q  records/q  block/q")
                }
                print("\(pad(String(p.L), 4, right: true))  \(pad(String(format: "%.4f", p.recall_at_10), 9, right: true))  \(pad(String(format: "%.0f", p.qps), 7, right: true))  \(pad(String(format: "%.3f", p.p50_ms), 7, right: true))  \(pad(String(format: "%.3f", p.p99_ms), 7, right: true))  \(pad(String(format: "%.1f", p.reads_per_query), 7, right: true))  \(pad(String(format: "%.1f", p.records_per_query), 9, right: true))  \(pad(String(format: "%.1f", p.block_expansions_per_query), 7, right: true))")
            }
        })
        let readTotal = ProcessStatistics.diskReadBytes().flatMap { end in readBefore.map { end - $0 } }
        let cacheSummary = seg.nodeCacheSummary
        let navigation = seg.navigationSummary
        let output = Output(dataset: dataset, segment: segmentPath, build_seconds: buildSeconds, segment_bytes: seg.fileBytes,
                            rows: seg.rowCount, queries: n, k: k, threads: threads, cold: cold, beam_width: beamWidth,
                            read_ahead: readAhead, direct_io: directIO, cache_nodes: cacheSummary.nodes, cache_sample_searches: cacheSummary.sampleSearches, cache_mb: Double(cacheSummary.bytes) / 1048576,
                            navigation_rows: navigation.rows, navigation_mb: Double(navigation.bytes) / 1048576,
                            kernels: StrataRuntime.kernelInstructionSet,
                            rss_anon_mb_after_open: rssAfterOpen, rss_anon_mb_after_sweep: ProcessStatistics.residentAnonymousMB(),
                            disk_read_bytes: readTotal, points: points)
        if json {
            try printJSON(output)
        } else {
            print("segment \(segmentPath): \(seg.rowCount) rows, \(formatBytes(seg.fileBytes))" + (buildSeconds.map { String(format: ", built in %.1f s", $0) } ?? ""))
            let order = cacheSummary.sampleSearches > 0 ? "ranked by \(cacheSummary.sampleSearches) sample searches" : "\(cacheSummary.completeLevels) complete BFS levels"
            print("node cache: \(cacheSummary.nodes) records (\(order)), \(formatBytes(UInt64(cacheSummary.bytes))); beam width \(beamWidth), " + (directIO ? "direct I/O" : "read-ahead \(readAhead ? "on" : "off")"))
            print("navigation graph: \(navigation.rows) sampled rows, \(formatBytes(UInt64(navigation.bytes)))")
            print(String(format: "RssAnon after open %.1f MB, after sweep %.1f MB; read from disk %@; kernels %@",
                         rssAfterOpen ?? -1, output.rss_anon_mb_after_sweep ?? -1, formatBytes(readTotal ?? 0), StrataRuntime.kernelInstructionSet))
        }
    }
}
