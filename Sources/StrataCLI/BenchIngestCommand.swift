import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata bench-ingest DIR`: sustained insert throughput and acknowledgement latency of a local
/// collection, with the index built in the background (default) or by the flush (`--sync-index`).
struct BenchIngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-ingest",
        abstract: "Measure sustained insert throughput and acknowledgement latency of a new local collection.",
        discussion: """
        Creates a collection at DIR (it must hold no collection), inserts the rows of --vectors (fvecs or \
        npy; ids are row numbers) or of --gen N random rows of --dim dimensions in batches of --batch, and \
        times each insert call (durable when it returns). With --search-every B, after every B batches one \
        query (a row already inserted) is searched with the index and exactly over the same snapshot \
        (unindexed segments, indexed ones and the buffer); the report gives the recall@k of the first \
        against the second. At the end it waits for the background builder to index every segment and \
        reports how long that took.
        """)

    @Argument(help: "Collection directory to create.")
    var directory: String

    @Option(name: .long, help: "Vectors to insert (.fvecs or .npy).")
    var vectors: String?

    @Option(name: .long, help: "Insert this many generated rows instead (uniform in [-1, 1), seed 1).")
    var gen: Int?

    @Option(name: .long, help: "Dimensions of generated rows.")
    var dim: Int = 96

    @Option(name: .long, help: "Insert at most this many rows of --vectors.")
    var limit: Int?

    @Option(name: .long, help: "Rows per insert call.")
    var batch: Int = 1000

    @Option(name: .long, help: "Metric: l2, cosine or ip.")
    var metric: String = "l2"

    @Flag(name: .customLong("sync-index"), help: "Build the index in the flush, before the insert returns (no background builder).")
    var syncIndex = false

    @Option(name: .customLong("flush-rows"), help: "Flush threshold in rows (CollectionOptions.flushThresholdRows).")
    var flushRows: Int = 20_000

    @Option(name: .customLong("max-unindexed-rows"), help: "Back-pressure bound of the background builder.")
    var maxUnindexedRows: Int = CollectionOptions().maxUnindexedRows

    @Option(name: .customLong("search-every"), help: "After every this many batches, one search checked against an exact one (0: none).")
    var searchEvery: Int = 0

    @Option(name: .long, help: "k of the searches.")
    var k: Int = 10

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    func validate() throws {
        guard (vectors == nil) != (gen == nil) else { throw ValidationError("give --vectors F or --gen N") }
        guard batch >= 1, flushRows >= 1, k >= 1, searchEvery >= 0, dim >= 1 else { throw ValidationError("--batch, --flush-rows, --k, --dim must be >= 1") }
        if let gen, gen < 1 { throw ValidationError("--gen must be >= 1") }
        guard DistanceMetric(name: metric) != nil else { throw ValidationError("unknown metric \(metric)") }
    }

    struct Output: Encodable {
        var rows: Int; var dimension: Int; var batch: Int; var mode: String; var seconds: Double; var rows_per_second: Double
        var ack_p50_ms: Double; var ack_p99_ms: Double; var ack_max_ms: Double; var index_drain_seconds: Double
        var searches: Int; var recall_at_k: Double?; var segments: Int; var indexed_segments: Int
    }

    func run() throws {
        let source: VectorFile? = try vectors.map { (p) throws(StrataError) in try VectorFile(path: p) }
        let rows = source.map { min($0.count, limit ?? Int.max) } ?? gen!
        let dimension = source?.dimension ?? dim
        var options = CollectionOptions()
        options.backgroundIndex = !syncIndex
        options.flushThresholdRows = flushRows
        options.maxUnindexedRows = maxUnindexedRows
        let schema = SegmentSchema(dimension: dimension, elementType: .float32, metric: DistanceMetric(name: metric)!)
        let c = try StrataCollection.create(path: directory, schema: schema, options: options)
        defer { c.close() }
        var random = SplitMix(seed: 1)
        func row(_ i: Int) -> [Float] {
            if let source { return source.row(i) }
            return (0..<dimension).map { _ in random.nextUnit() }
        }
        var latencies: [Double] = []
        var found = 0, expected = 0, searches = 0
        let start = monotonicSeconds()
        var next = 0, batches = 0
        while next < rows {
            let end = min(rows, next + batch)
            let batchRows = (next..<end).map { SegmentRow(id: UInt64($0), vector: row($0)) }
            let t = monotonicSeconds()
            try c.insert(batchRows)
            latencies.append(monotonicSeconds() - t)
            next = end
            batches += 1
            if searchEvery > 0, batches % searchEvery == 0 {
                let snap = try c.snapshot()
                let query = batchRows[batchRows.count / 2].vector
                let ann = try snap.search(query: query, options: SearchOptions(k: k))
                let exact = try snap.search(query: query, options: SearchOptions(k: k, exact: true))
                found += Set(ann.map(\.id)).intersection(exact.map(\.id)).count
                expected += exact.count
                searches += 1
            }
            if !json, batches % 50 == 0 { progress("\(next) / \(rows) rows") }
        }
        let ingest = monotonicSeconds() - start
        let drainStart = monotonicSeconds()
        _ = c.waitForBackgroundIndex(timeoutSeconds: 3600)
        let drain = monotonicSeconds() - drainStart
        let stats = try c.stats()
        let sorted = latencies.sorted()
        func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)] * 1000 }
        let o = Output(rows: rows, dimension: dimension, batch: batch, mode: syncIndex ? "sync-index" : "background-index",
                       seconds: ingest, rows_per_second: Double(rows) / ingest, ack_p50_ms: pct(0.5), ack_p99_ms: pct(0.99),
                       ack_max_ms: (sorted.last ?? 0) * 1000, index_drain_seconds: drain, searches: searches,
                       recall_at_k: expected == 0 ? nil : Double(found) / Double(expected), segments: stats.segments.count,
                       indexed_segments: stats.segments.filter(\.indexed).count)
        if json { try printJSON(o); return }
        print(String(format: "%@: %d rows x %d in %.2f s = %.0f rows/s; ack p50 %.1f ms, p99 %.1f ms, max %.1f ms; index drain %.2f s",
                     o.mode, rows, dimension, ingest, o.rows_per_second, o.ack_p50_ms, o.ack_p99_ms, o.ack_max_ms, drain))
        print("  \(o.segments) segments (\(o.indexed_segments) indexed)"
              + (o.recall_at_k.map { String(format: "; %d searches during ingest, recall@%d vs exact %.4f", searches, k, $0) } ?? ""))
    }
}

/// A small deterministic generator (SplitMix64) for `--gen`.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func nextUnit() -> Float { Float(Double(next() >> 11) / Double(1 << 53) * 2 - 1) }
}
