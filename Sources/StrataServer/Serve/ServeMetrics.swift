// The node's metrics (swift-metrics; `strata serve` exports them in Prometheus text format at
// /metrics). Request counts and latency per endpoint come from Hummingbird's MetricsMiddleware;
// these are Strata's own: search fan-out and per-shard search latency, WAL commit latency,
// compactions, and gauges refreshed at every scrape (rows, segments, cache hits and fetches per shard).
import CoreMetrics
import Metrics
import Strata

/// Strata's metrics of one node.
package struct ServeMetrics: Sendable {
    private let fanOut = Metrics.Timer(label: "strata_search_fanout_seconds")
    private let shardSearch = Metrics.Timer(label: "strata_shard_search_seconds")
    private let commit = Metrics.Timer(label: "strata_wal_commit_seconds")
    private let compactions = Counter(label: "strata_compactions_total")
    private let compactionFailures = Counter(label: "strata_compaction_failures_total")

    package init() {}

    /// Times a whole search fan-out (every shard, merged).
    package func timeFanOut<T>(_ body: () async throws(QdrantError) -> T) async throws(QdrantError) -> T {
        try await time(fanOut, body)
    }

    /// Times one shard's search on this node.
    package func timeShardSearch<T>(_ body: () async throws(QdrantError) -> T) async throws(QdrantError) -> T {
        try await time(shardSearch, body)
    }

    /// Times a write to a shard's writer until its WAL object is in the store.
    package func timeCommit<T>(_ body: () async throws(QdrantError) -> T) async throws(QdrantError) -> T {
        try await time(commit, body)
    }

    /// Counts a compaction run that committed `tasks` tasks (or failed).
    package func recordCompaction(tasks: Int, failed: Bool) {
        if failed { compactionFailures.increment() } else if tasks > 0 { compactions.increment(by: tasks) }
    }

    /// Sets the per-shard gauges.
    package func recordShard(_ shard: ShardID, rows: Int, segments: Int, generation: UInt64, cacheFetches: Int, cacheBytes: UInt64, cacheHits: Int) {
        let dims = [("collection", shard.collection), ("shard", String(shard.shard))]
        Gauge(label: "strata_shard_rows", dimensions: dims).record(rows)
        Gauge(label: "strata_shard_segments", dimensions: dims).record(segments)
        Gauge(label: "strata_shard_generation", dimensions: dims).record(Int64(truncatingIfNeeded: generation))
        Gauge(label: "strata_cache_fetches", dimensions: dims).record(cacheFetches)
        Gauge(label: "strata_cache_hits", dimensions: dims).record(cacheHits)
        Gauge(label: "strata_cache_fetched_bytes", dimensions: dims).record(Int64(truncatingIfNeeded: cacheBytes))
    }

    private func time<T>(_ timer: Metrics.Timer, _ body: () async throws(QdrantError) -> T) async throws(QdrantError) -> T {
        let start = ContinuousClock.now
        defer {
            let d = ContinuousClock.now - start
            let (s, atto) = d.components
            timer.recordNanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
        }
        return try await body()
    }
}
