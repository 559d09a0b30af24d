// The one benchmark loop: a query set timed through a search function for each setting of a sweep
// (list sizes, rerank depths, filter plans), with per-query latencies, counters and the results
// kept for recall. `strata bench` and `strata bench-filter` both measure through it.
import Dispatch
import Synchronization
import StrataFormat
import Strata

/// Work counters of one query, summed over a pass.
package struct BenchCounters: Sendable, Equatable {
    /// Graph records read.
    package var recordsRead = 0
    /// Of those, served by the node cache.
    package var cachedRecords = 0
    /// Hops (beams expanded).
    package var hops = 0
    /// PQ distances computed.
    package var pqDistances = 0
    /// Nodes expanded from a sector read for another node (block-aware layout).
    package var blockExpansions = 0

    package init(recordsRead: Int = 0, cachedRecords: Int = 0, hops: Int = 0, pqDistances: Int = 0, blockExpansions: Int = 0) {
        self.recordsRead = recordsRead
        self.cachedRecords = cachedRecords
        self.hops = hops
        self.pqDistances = pqDistances
        self.blockExpansions = blockExpansions
    }

    /// The counters of an unfiltered graph search (zero for an exact one).
    package init(_ stats: BeamSearchStats?) {
        self.init(recordsRead: stats?.recordsRead ?? 0, cachedRecords: stats?.cachedRecords ?? 0, hops: stats?.hops ?? 0,
                  pqDistances: stats?.pqDistances ?? 0, blockExpansions: stats?.blockExpansions ?? 0)
    }

    /// The counters of a filtered search.
    package init(_ stats: FilteredSearchStats?) {
        self.init(recordsRead: stats?.recordsRead ?? 0, pqDistances: stats?.pqDistances ?? 0)
    }

    static func += (a: inout BenchCounters, b: BenchCounters) {
        a.recordsRead += b.recordsRead
        a.cachedRecords += b.cachedRecords
        a.hops += b.hops
        a.pqDistances += b.pqDistances
        a.blockExpansions += b.blockExpansions
    }
}

/// What one setting of a sweep measured.
package struct BenchPass<Hit: Sendable>: Sendable {
    /// Hits per query (query order), from the last timed pass.
    package var results: [[Hit]]
    /// Nanoseconds per query, every timed pass.
    package var latencies: [UInt64]
    /// Wall seconds of the fastest timed pass.
    package var seconds: Double
    /// Counters summed over the last timed pass.
    package var counters: BenchCounters
    /// Queries per pass.
    package var queries: Int

    /// Queries per second of the fastest pass.
    package var qps: Double { Double(queries) / seconds }

    /// The `percent` percentile of the latencies in milliseconds (nearest rank: the smallest
    /// latency with at least `percent`% of them at or below it); 0 with no queries.
    package func latencyMilliseconds(percentile percent: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        let sorted = latencies.sorted()
        let rank = Int((percent / 100 * Double(sorted.count)).rounded(.up))
        return Double(sorted[min(max(rank, 1), sorted.count) - 1]) / 1e6
    }

    /// Counter per query.
    package func perQuery(_ counter: KeyPath<BenchCounters, Int>) -> Double {
        Double(counters[keyPath: counter]) / Double(max(queries, 1))
    }
}

extension BenchPass where Hit == SearchHit {
    /// Recall@`depth` of the results against `truth` (row numbers), 0 with nothing to compare.
    package func recall(_ truth: [[Int32]], at depth: Int) -> Double {
        GroundTruth.recall(results.map { $0.map(\.row) }, truth: truth, depth: depth) ?? 0
    }
}

/// How a sweep times each setting.
package struct BenchSweep: Sendable {
    /// Queries per pass (numbered 0..<queries), timed in order (or spread over ``threads``).
    package var queries: Int
    /// Query threads; 1 runs the queries one at a time on the calling thread.
    package var threads = 1
    /// Untimed queries before each setting (the first ones of the set).
    package var warmup = 0
    /// Timed passes per setting; the fastest gives the QPS.
    package var passes = 1

    package init(queries: Int, threads: Int = 1, warmup: Int = 0, passes: Int = 1) {
        self.queries = queries
        self.threads = threads
        self.warmup = warmup
        self.passes = passes
    }

    /// One search: a query number in, hits and counters out.
    package typealias Search<Hit> = @Sendable (Int) throws(StrataError) -> ([Hit], BenchCounters)

    /// Times every setting in order: `prepare` gives the search for a setting (it may reopen or
    /// evict first), then ``measure(_:)``; `each` gets the setting and what it measured (to print a
    /// line as soon as it is known). Returns the passes in the settings' order.
    package func run<Setting, Hit: Sendable>(_ settings: [Setting], prepare: (Setting) throws(StrataError) -> Search<Hit>,
                                   each: (Setting, BenchPass<Hit>) throws(StrataError) -> Void = { _, _ in }) throws(StrataError) -> [BenchPass<Hit>] {
        var out: [BenchPass<Hit>] = []
        for setting in settings {
            let pass = try measure(try prepare(setting))
            try each(setting, pass)
            out.append(pass)
        }
        return out
    }

    /// Warms up, then runs ``passes`` timed passes of the queries through `search`.
    package func measure<Hit: Sendable>(_ search: Search<Hit>) throws(StrataError) -> BenchPass<Hit> {
        for q in 0..<min(warmup, queries) { _ = try search(q) }
        var best = BenchPass<Hit>(results: [], latencies: [], seconds: .infinity, counters: BenchCounters(), queries: queries)
        var latencies: [UInt64] = []
        latencies.reserveCapacity(queries * passes)
        for _ in 0..<max(passes, 1) {
            let start = monotonicSeconds()
            let pass = threads == 1 ? try serialPass(search) : try parallelPass(search)
            let seconds = monotonicSeconds() - start
            latencies += pass.latencies
            best.results = pass.results
            best.counters = pass.counters
            best.seconds = min(best.seconds, seconds)
        }
        best.latencies = latencies
        return best
    }

    private func serialPass<Hit: Sendable>(_ search: Search<Hit>) throws(StrataError) -> (results: [[Hit]], latencies: [UInt64], counters: BenchCounters) {
        var results: [[Hit]] = []
        var latencies: [UInt64] = []
        results.reserveCapacity(queries)
        latencies.reserveCapacity(queries)
        var counters = BenchCounters()
        for q in 0..<queries {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let (hits, c) = try search(q)
            latencies.append(DispatchTime.now().uptimeNanoseconds - t0)
            results.append(hits)
            counters += c
        }
        return (results, latencies, counters)
    }

    /// Query q on thread q % threads.
    private func parallelPass<Hit: Sendable>(_ search: Search<Hit>) throws(StrataError) -> (results: [[Hit]], latencies: [UInt64], counters: BenchCounters) {
        let shared = ParallelPass<Hit>(count: queries)
        let threads = self.threads, n = queries
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var q = t
            while q < n {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let outcome = Result { () throws(StrataError) in try search(q) }
                shared.store(q, outcome, nanoseconds: DispatchTime.now().uptimeNanoseconds - t0)
                q += threads
            }
        }
        return try shared.collect()
    }
}

/// Results of a multi-threaded pass, filled under a lock.
private final class ParallelPass<Hit: Sendable>: Sendable {
    private struct State {
        var results: [[Hit]]
        var latencies: [UInt64]
        var counters = BenchCounters()
        var failure: StrataError?
    }
    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(results: [[Hit]](repeating: [], count: count), latencies: [UInt64](repeating: 0, count: count)))
    }

    func store(_ q: Int, _ outcome: Result<([Hit], BenchCounters), StrataError>, nanoseconds: UInt64) {
        state.withLock { s in
            s.latencies[q] = nanoseconds
            switch outcome {
            case .success(let (hits, c)):
                s.results[q] = hits
                s.counters += c
            case .failure(let e): s.failure = e
            }
        }
    }

    func collect() throws(StrataError) -> (results: [[Hit]], latencies: [UInt64], counters: BenchCounters) {
        let s = state.withLock { $0 }
        if let failure = s.failure { throw failure }
        return (s.results, s.latencies, s.counters)
    }
}
