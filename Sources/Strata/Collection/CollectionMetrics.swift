// What a collection reports to its application: swift-log messages through the `Logger` the caller
// passes (``CollectionOptions/logger``, a no-op logger by default) and swift-metrics counters and
// timers made with the caller's factory (``CollectionOptions/metricsFactory``; nil: the process's
// bootstrapped `MetricsSystem`, which `strata serve` exports at /metrics). The library prints nothing.
//
// Metric names (all prefixed `strata_collection_`, so none is also counted by the server's own
// `strata_*` metrics, which time requests and shard fan-out around these calls):
//   inserted_rows_total   counter   rows inserted or upserted (acknowledged batches)
//   flushes_total         counter   flushes that published a manifest
//   flush_seconds         timer     wall time of each of those flushes
//   index_builds_total    counter   segments written with an ANN index (flushes and compaction outputs)
//   compactions_total     counter   compaction tasks published
//   search_seconds        timer     each `StrataCollection.search` (its count is the number of searches)
//   node_cache_hits_total   counter graph records a search read from a segment's node cache
//   node_cache_misses_total counter graph records a search read from the segment file (page cache or disk)
//                                   (hits + misses: every graph record the searches expanded; each
//                                   search adds its totals once, nothing is counted per record)
import CoreMetrics
import Logging
import StrataFormat
import StrataIndex

/// The names of the library's metrics.
public enum CollectionMetricNames {
    /// Rows inserted or upserted.
    public static let insertedRows = "strata_collection_inserted_rows_total"
    /// Flushes published.
    public static let flushes = "strata_collection_flushes_total"
    /// Flush wall time.
    public static let flushSeconds = "strata_collection_flush_seconds"
    /// Indexed segments written.
    public static let indexBuilds = "strata_collection_index_builds_total"
    /// Compaction tasks published.
    public static let compactions = "strata_collection_compactions_total"
    /// Search wall time.
    public static let searchSeconds = "strata_collection_search_seconds"
    /// Graph records searches read from a node cache.
    public static let nodeCacheHits = "strata_collection_node_cache_hits_total"
    /// Graph records searches read from a segment file.
    public static let nodeCacheMisses = "strata_collection_node_cache_misses_total"
}

/// The graph records one collection search read, from the segments' node caches or their files
/// (summed from each segment search's counters, then counted once per search).
package struct GraphRecordReads: Sendable, Equatable {
    /// Records served by a node cache.
    package var cached = 0
    /// Records read from the segment file.
    package var fromFile = 0

    package init() {}

    /// Adds the counters of one beam search (nil: an exact search, which reads no records).
    mutating func add(_ stats: BeamSearchStats?) {
        guard let stats else { return }
        add(recordsRead: stats.recordsRead, cachedRecords: stats.cachedRecords)
    }

    /// Adds one segment search's `recordsRead`, of which `cachedRecords` came from the node cache.
    mutating func add(recordsRead: Int, cachedRecords: Int) {
        cached += cachedRecords
        fromFile += recordsRead - cachedRecords
    }
}

/// The logger and metrics of one collection (or compactor), made from its options.
package struct CollectionObserver: Sendable {
    let logger: Logger
    let factory: any MetricsFactory

    /// With `factory` nil: the process's `MetricsSystem.factory` (a no-op until bootstrapped).
    package init(logger: Logger, factory: (any MetricsFactory)?) {
        self.logger = logger
        self.factory = factory ?? MetricsSystem.factory
    }

    /// Counts an acknowledged batch of `rows` rows.
    package func inserted(rows: Int) {
        guard rows > 0 else { return }
        Counter(label: CollectionMetricNames.insertedRows, factory: factory).increment(by: rows)
    }

    /// Counts a published flush (and the index build of its segment); returns `summary`.
    package func flushed(indexed: Bool, _ summary: StrataCollection.FlushSummary) -> StrataCollection.FlushSummary {
        Counter(label: CollectionMetricNames.flushes, factory: factory).increment()
        Timer(label: CollectionMetricNames.flushSeconds, factory: factory).recordNanoseconds(Self.nanoseconds(summary.seconds))
        if indexed { Counter(label: CollectionMetricNames.indexBuilds, factory: factory).increment() }
        logger.debug("flushed", metadata: ["segment": "\(summary.segment ?? "-")", "rows": "\(summary.rows)", "bytes": "\(summary.bytes)",
                                           "generation": "\(summary.generation)", "seconds": "\(summary.seconds)"])
        return summary
    }

    /// Counts the published tasks of a compaction run and those of their outputs that are indexed
    /// in `version` (the one opened after the last task); returns `result`.
    func compacted(_ result: CompactionResult, version: Version) -> CompactionResult {
        let indexedOutputs = result.done.filter { d in version.segments.contains { $0.entry.name == d.output && $0.entry.indexed } }.count
        if !result.done.isEmpty { Counter(label: CollectionMetricNames.compactions, factory: factory).increment(by: result.done.count) }
        if indexedOutputs > 0 { Counter(label: CollectionMetricNames.indexBuilds, factory: factory).increment(by: indexedOutputs) }
        for d in result.done {
            logger.info("compaction task published", metadata: ["kind": "\(d.task.kind.rawValue)", "inputs": "\(d.task.inputs.joined(separator: ","))",
                                                                "output": "\(d.output ?? "-")", "rows": "\(d.rowsWritten)", "seconds": "\(d.seconds)"])
        }
        return result
    }

    /// Counts the node-cache hits and misses of one search.
    package func searched(_ reads: GraphRecordReads) {
        if reads.cached > 0 { Counter(label: CollectionMetricNames.nodeCacheHits, factory: factory).increment(by: reads.cached) }
        if reads.fromFile > 0 { Counter(label: CollectionMetricNames.nodeCacheMisses, factory: factory).increment(by: reads.fromFile) }
    }

    /// Runs a search and records its wall time.
    package func timeSearch<T>(_ body: () throws(StrataError) -> T) throws(StrataError) -> T {
        let start = monotonicSeconds()
        defer { Timer(label: CollectionMetricNames.searchSeconds, factory: factory).recordNanoseconds(Self.nanoseconds(monotonicSeconds() - start)) }
        return try body()
    }

    private static func nanoseconds(_ seconds: Double) -> Int64 {
        seconds.isFinite && seconds > 0 ? Int64(min(seconds * 1e9, 9e18)) : 0
    }
}

extension Logger {
    /// A logger that drops everything: the default of ``CollectionOptions/logger``.
    public static var strataNoOp: Logger { Logger(label: "strata", factory: { _ in SwiftLogNoOpLogHandler() }) }
}
