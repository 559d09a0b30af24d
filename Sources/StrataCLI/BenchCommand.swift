import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Dispatch
import Foundation
import Histogram
import Strata

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

    @Option(name: .customLong("cache-mb"), help: "MiB of RAM for the cache of graph records nearest the entry point (default 14; 0 disables).")
    var cacheMB: Double?

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
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let cacheMB, !(cacheMB >= 0 && cacheMB <= 1_048_576) { throw ValidationError("--cache-mb must be in 0...1048576") }
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
        var cache_nodes: Int
        var cache_mb: Double
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
            var args = ["--dataset", dataset, "--segment", segment, "--unfiltered", "--filter"] + filter
            args += ["--L"] + L.map(String.init) + ["--rerank"] + rerank.map(String.init)
            if let limit { args += ["--limit", String(limit)] }
            if json { args.append("--json") }
            let filtered = try FilterBenchCommand.parse(args)
            return try filtered.run()
        }
        let segmentPath = segment ?? NSTemporaryDirectory() + "/strata-bench-\(getpid()).seg"
        var buildSeconds: Double? = nil
        if !FileManager.default.fileExists(atPath: segmentPath) {
            var options = SegmentWriterOptions()
            options.index = index.options(force: true)
            options.progress = indexBuildProgressPrinter()
            progress("building \(segmentPath)...")
            let (_, seconds, _) = try BuildCommand.buildSegment(
                vectors: dataset + "/base.fvecs", payload: nil, columns: [], ids: nil, metric: DistanceMetric(name: metric)!,
                elementType: f16 ? .float16 : .float32, options: options, out: segmentPath)
            buildSeconds = seconds
            // The build's freed heap stays in this process's RssAnon unless returned to the kernel;
            // the open below is measured as a serving process would see it.
            IndexMemory.trimHeap()
        }
        defer { if segment == nil { try? FileManager.default.removeItem(atPath: segmentPath) } }
        let readBefore = diskReadBytes()
        let openOptions = SegmentOpenOptions(cacheBudgetBytes: cacheMB.map { Int($0 * 1048576) } ?? SegmentOpenOptions.defaultCacheBudgetBytes)
        let beamWidth = self.beamWidth ?? (cold ? SearchOptions.defaultColdBeamWidth : SearchOptions.defaultWarmBeamWidth)
        let readAhead = self.readAhead ?? cold
        var seg = try Segment.open(path: segmentPath, options: openOptions)
        let rssAfterOpen = residentAnonymousMB()
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
        for listSize in L {
            if cold {
                // Pages mapped by this process survive POSIX_FADV_DONTNEED, so drop the mapping
                // first (the old Segment unmaps when released), evict, then map afresh.
                seg = try Segment.open(path: segmentPath, options: openOptions)
                FileSystem.evictFromPageCache(segmentPath)
            }
            let readStart = diskReadBytes()
            let options = SearchOptions(k: k, listSize: listSize, beamWidth: beamWidth, readAhead: readAhead)
            var results = [[SearchHit]](repeating: [], count: n)
            var latencies = [UInt64](repeating: 0, count: n)
            var records = 0, hops = 0, cachedRecords = 0
            let start = now()
            if threads == 1 {
                for q in 0..<n {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    let (hits, stats) = try seg.searchWithStats(query: queries[q], options: options)
                    latencies[q] = DispatchTime.now().uptimeNanoseconds - t0
                    results[q] = hits
                    records += stats?.recordsRead ?? 0
                    cachedRecords += stats?.cachedRecords ?? 0
                    hops += stats?.hops ?? 0
                }
            } else {
                let shared = ParallelRun(count: n)
                let seg = seg
                DispatchQueue.concurrentPerform(iterations: threads) { t in
                    var q = t
                    while q < n {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        let outcome = Result { try seg.searchWithStats(query: queries[q], options: options) }
                        shared.store(q, outcome, nanoseconds: DispatchTime.now().uptimeNanoseconds - t0)
                        q += threads
                    }
                }
                let collected = try shared.collect()
                results = collected.results
                latencies = collected.latencies
                records = collected.records
                cachedRecords = collected.cachedRecords
                hops = collected.hops
            }
            let seconds = now() - start
            let readBytes = diskReadBytes().flatMap { end in readStart.map { end - $0 } } ?? 0
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            for l in latencies { _ = histogram.record(max(1, l)) }
            points.append(Point(L: listSize, recall_at_10: recall(results, truth, at: 10), recall_at_k: recall(results, truth, at: k),
                                qps: Double(n) / seconds,
                                p50_ms: Double(histogram.valueAtPercentile(50)) / 1e6,
                                p99_ms: Double(histogram.valueAtPercentile(99)) / 1e6,
                                reads_per_query: Double(readBytes) / 4096 / Double(max(n, 1)),
                                records_per_query: Double(records) / Double(max(n, 1)),
                                cached_records_per_query: Double(cachedRecords) / Double(max(n, 1)),
                                hops_per_query: Double(hops) / Double(max(n, 1))))
            if !json {
                let p = points.last!
                if points.count == 1 {
                    print("   L  recall@10      QPS   p50 ms   p99 ms  reads/q  records/q")
                }
                print("\(pad(String(p.L), 4, right: true))  \(pad(String(format: "%.4f", p.recall_at_10), 9, right: true))  \(pad(String(format: "%.0f", p.qps), 7, right: true))  \(pad(String(format: "%.3f", p.p50_ms), 7, right: true))  \(pad(String(format: "%.3f", p.p99_ms), 7, right: true))  \(pad(String(format: "%.1f", p.reads_per_query), 7, right: true))  \(pad(String(format: "%.1f", p.records_per_query), 9, right: true))")
            }
        }
        let readTotal = diskReadBytes().flatMap { end in readBefore.map { end - $0 } }
        let cacheSummary = seg.nodeCacheSummary
        let output = Output(dataset: dataset, segment: segmentPath, build_seconds: buildSeconds, segment_bytes: seg.fileBytes,
                            rows: seg.rowCount, queries: n, k: k, threads: threads, cold: cold, beam_width: beamWidth,
                            read_ahead: readAhead, cache_nodes: cacheSummary.nodes, cache_mb: Double(cacheSummary.bytes) / 1048576,
                            kernels: StrataRuntime.kernelInstructionSet,
                            rss_anon_mb_after_open: rssAfterOpen, rss_anon_mb_after_sweep: residentAnonymousMB(),
                            disk_read_bytes: readTotal, points: points)
        if json {
            try printJSON(output)
        } else {
            print("segment \(segmentPath): \(seg.rowCount) rows, \(formatBytes(seg.fileBytes))" + (buildSeconds.map { String(format: ", built in %.1f s", $0) } ?? ""))
            print("node cache: \(cacheSummary.nodes) records (\(cacheSummary.completeLevels) complete BFS levels), \(formatBytes(UInt64(cacheSummary.bytes))); beam width \(beamWidth), read-ahead \(readAhead ? "on" : "off")")
            print(String(format: "RssAnon after open %.1f MB, after sweep %.1f MB; read from disk %@; kernels %@",
                         rssAfterOpen ?? -1, output.rss_anon_mb_after_sweep ?? -1, formatBytes(readTotal ?? 0), StrataRuntime.kernelInstructionSet))
        }
    }

    private func recall(_ results: [[SearchHit]], _ truth: [[Int32]], at depth: Int) -> Double {
        StrataCLI.recall(results.map { $0.map(\.row) }, truth: truth, depth: depth) ?? 0
    }
}

/// Bytes this process read from storage (`read_bytes` of /proc/self/io).
func diskReadBytes() -> UInt64? {
    guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("read_bytes:") {
        return line.split(separator: " ").last.flatMap { UInt64($0) }
    }
    return nil
}

/// Results of a multi-threaded pass, filled under a lock.
final class ParallelRun: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [[SearchHit]]
    private var latencies: [UInt64]
    private var records = 0, hops = 0, cachedRecords = 0
    private var failure: Error?

    init(count: Int) {
        results = [[SearchHit]](repeating: [], count: count)
        latencies = [UInt64](repeating: 0, count: count)
    }

    func store(_ q: Int, _ outcome: Result<([SearchHit], BeamSearchStats?), Error>, nanoseconds: UInt64) {
        lock.lock(); defer { lock.unlock() }
        latencies[q] = nanoseconds
        switch outcome {
        case .success(let (hits, stats)):
            results[q] = hits
            records += stats?.recordsRead ?? 0
            cachedRecords += stats?.cachedRecords ?? 0
            hops += stats?.hops ?? 0
        case .failure(let e): failure = e
        }
    }

    func collect() throws -> (results: [[SearchHit]], latencies: [UInt64], records: Int, cachedRecords: Int, hops: Int) {
        if let failure { throw failure }
        return (results, latencies, records, cachedRecords, hops)
    }
}
