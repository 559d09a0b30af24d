// The searchers of one index, shared by the threads that query it.
import StrataFormat
import Synchronization

/// Hands each calling thread a ``BeamSearcher`` of one index for the duration of a call: searchers are
/// taken from an idle list (or made when it is empty) and put back afterwards, so a segment holds
/// about as many searchers as threads have queried it at once, each with its scratch reused.
package final class BeamSearcherPool: Sendable {
    /// The graph searched.
    package let graph: DiskGraphView
    /// The quantiser whose codes guide the search.
    package let quantizer: ProductQuantizer
    /// The resident PQ codes shared by the searchers.
    package let codes: ResidentCodes
    /// Records nearest the entry point, shared by the searchers; nil when empty.
    package let cache: NodeCache?
    /// The segment file opened for direct reads, or nil to read records through the mapping.
    package let direct: DirectGraphFile?
    /// The navigation graph that picks where unfiltered searches start, or nil (the medoid).
    package let navigation: NavigationGraph?
    private let idle = Mutex<[Idle]>([])

    // @unchecked Sendable: a searcher in the idle list is used by no thread; it is owned by the one
    // thread that takes it out until that thread puts it back.
    private struct Idle: @unchecked Sendable { let searcher: BeamSearcher }

    /// A pool over a graph, its quantiser and codes, and an optional node cache.
    /// - Throws: `StrataError.Code.invalidArgument` when they do not belong together (see
    ///   ``BeamSearcher/init(graph:quantizer:codes:metric:cache:)``).
    /// With `direct`, unfiltered searches read graph records with direct I/O (filtered ones still
    /// read through the mapping); with `navigation`, unfiltered searches start where its walk ends.
    package init(graph: DiskGraphView, quantizer: ProductQuantizer, codes: ResidentCodes, cache: NodeCache?,
                 direct: DirectGraphFile? = nil, navigation: NavigationGraph? = nil) throws(StrataError) {
        try BeamSearcher.check(graph: graph, quantizer: quantizer, codeBytes: codes.bytes.count, cache: cache)
        self.graph = graph
        self.quantizer = quantizer
        self.codes = codes
        self.cache = cache.flatMap { $0.cachedCount > 0 ? $0 : nil }
        self.direct = direct
        self.navigation = navigation
    }

    /// Runs `body` with a searcher owned by the calling thread for the duration of the call.
    package func withSearcher<R>(_ body: (BeamSearcher) -> R) -> R {
        let searcher = idle.withLock { $0.popLast() }?.searcher
            ?? BeamSearcher(checked: graph, quantizer: quantizer, codes: codes.bytes, metric: nil, owner: codes, cache: cache, direct: direct,
                                navigation: navigation)
        defer { idle.withLock { $0.append(Idle(searcher: searcher)) } }
        return body(searcher)
    }

    /// Nodes ranked by how many of `count` sample queries expand them, most first (ties by id),
    /// with that count: the order in which DiskANN fills its node cache from sample queries.
    /// `query(i)` gives sample i (nil, the wrong length or a non-finite value skips it). The
    /// samples are split over up to `threads` searchers, each counting in a table of its own; the
    /// counts, and so the ranking, do not depend on the split. Over direct I/O a pipelined search's
    /// expansions depend on the order its reads complete, so the ranking may vary between runs.
    /// - Complexity: one beam search per sample; memory grows with the distinct nodes expanded.
    package func expansionRanking(count: Int, query: @Sendable (Int) -> [Float]?, parameters: BeamSearchParameters,
                                  threads: Int = IndexParallel.defaultThreadCount) -> [(node: UInt32, expansions: UInt32)] {
        guard count > 0 else { return [] }
        let parts = max(1, min(threads, count))
        let total = Mutex<[UInt32: UInt32]>([:])
        IndexParallel.forEach(count: parts, threads: parts) { _, part in
            var counts: [UInt32: UInt32] = [:]
            withSearcher { $0.countExpansions(part * count / parts..<(part + 1) * count / parts, query: query, parameters: parameters, into: &counts) }
            total.withLock { t in for (node, c) in counts { t[node, default: 0] &+= c } }
        }
        return total.withLock { t in t.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) } }
    }
}
