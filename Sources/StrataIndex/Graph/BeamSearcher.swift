// Beam search over the on-disk graph, guided by PQ (ADC) distances, with exact rerank from the
// records it reads (DiskANN's search); with a row predicate, the filtered search (Filtered-DiskANN's
// idea of testing each node met, with a budget for non-passing nodes). The traversal is in
// BeamSearcher+Traversal.swift; this file holds the searcher's scratch, its entry points and the
// exact scan.
import StrataFormat
import CStrataKernels

/// Approximate search over one graph section with resident PQ codes. One searcher per thread: it owns
/// reusable scratch (visited-node table, candidate list, ADC table), so the hot loop allocates nothing.
/// The graph bytes and codes must outlive the searcher. ``BeamSearcherPool`` hands searchers to threads.
package final class BeamSearcher {
    /// The graph being searched.
    package let graph: DiskGraphView
    /// The quantiser whose codes guide the search.
    package let quantizer: ProductQuantizer
    /// Counters of the last search.
    package internal(set) var lastStats = BeamSearchStats()
    /// Keeps a shared code store alive.
    let codeOwner: ResidentCodes?
    /// Records of the nodes nearest the entry point, read from RAM instead of the mapping.
    package let cache: NodeCache?
    /// Sampled rows in RAM whose walk picks where each unfiltered search starts; nil starts at the medoid.
    package let navigation: NavigationGraph?
    /// Scratch of the navigation walk.
    var navigationScratch = NavigationScratch()
    /// The segment file opened for direct reads: unfiltered searches read records with it
    /// (BeamSearcher+Direct.swift) instead of through the mapping; nil reads through the mapping.
    let directFile: DirectGraphFile?
    /// The reads in flight of direct searches (made on first use).
    var directQueue: DirectReadQueue?
    /// Whether a direct search over a block-aware layout reranks the nodes a sector read brings
    /// that do not make the list (off while sample searches count expansions: those are not).
    var reranksSectorNeighbours = true

    let codes: UnsafePointer<UInt8>
    let m: Int
    let n: Int
    let dim: Int
    let metric: DistanceMetric
    let table: UnsafeMutablePointer<Float>
    /// Nodes seen by the current search (memory grows with the nodes visited, not with the graph).
    var visited = VisitedTable(capacity: 4096)
    /// Nodes whose read-ahead was issued in the current search.
    var readAheadIssued = VisitedTable(capacity: 64)
    /// Candidate list: ids, PQ distances and flags (``expandedFlag``, ``passesFlag``), sorted by distance.
    var capacity = 0
    var listIds: UnsafeMutablePointer<UInt32>
    var listDist: UnsafeMutablePointer<Float>
    var listFlags: UnsafeMutablePointer<UInt8>
    /// Unvisited neighbours of the current beam, their PQ distances and whether they pass.
    let fresh: UnsafeMutablePointer<UInt32>
    let freshDist: UnsafeMutablePointer<Float>
    let freshFlags: UnsafeMutablePointer<UInt8>
    /// Expanded nodes with their exact distances (passing ones only).
    var resultIds: UnsafeMutablePointer<UInt32>
    var resultDist: UnsafeMutablePointer<Float>
    var resultCapacity = 0
    /// The nodes of the current beam (at most 64) and whether each passes.
    let beam: UnsafeMutablePointer<Int>
    let beamPasses: UnsafeMutablePointer<Bool>

    /// Creates a searcher over a shared resident code store (the usual way).
    /// - Parameters:
    ///   - graph: a validated graph view.
    ///   - quantizer: the PQ codebook (same dimension as the graph).
    ///   - codes: `graph.count x quantizer.codeSize` bytes, row-major.
    ///   - metric: distance to report; `nil` uses the metric recorded in the graph.
    ///   - cache: records of the nodes nearest the entry point (built from the same graph), or nil.
    ///   - navigation: a navigation graph built from the same codes, or nil to start at the medoid.
    /// - Throws: `StrataError.Code.invalidArgument` when dimensions or the code length disagree, or the
    ///   cache was built for another graph.
    package convenience init(graph: DiskGraphView, quantizer: ProductQuantizer, codes: ResidentCodes,
                             metric: DistanceMetric? = nil, cache: NodeCache? = nil, navigation: NavigationGraph? = nil) throws(StrataError) {
        try BeamSearcher.check(graph: graph, quantizer: quantizer, codeBytes: codes.bytes.count, cache: cache)
        self.init(checked: graph, quantizer: quantizer, codes: codes.bytes, metric: metric, owner: codes, cache: cache, direct: nil,
                  navigation: navigation)
    }

    /// Creates a searcher over codes the caller keeps alive (see also ``ResidentCodes``).
    package convenience init(graph: DiskGraphView, quantizer: ProductQuantizer, codes: UnsafeRawBufferPointer,
                             metric: DistanceMetric? = nil) throws(StrataError) {
        try BeamSearcher.check(graph: graph, quantizer: quantizer, codeBytes: codes.count, cache: nil)
        self.init(checked: graph, quantizer: quantizer, codes: codes, metric: metric, owner: nil, cache: nil, direct: nil)
    }

    /// The checks of the throwing initialisers (``BeamSearcherPool`` makes them once for all its searchers).
    static func check(graph: DiskGraphView, quantizer: ProductQuantizer, codeBytes: Int, cache: NodeCache?) throws(StrataError) {
        if let cache, cache.nodeCount != graph.count || cache.recordSize != graph.geometry.recordSize {
            throw StrataError(.invalidArgument, "the node cache was built for another graph")
        }
        if quantizer.dimension != graph.dimension {
            throw StrataError(.invalidArgument, "PQ dimension \(quantizer.dimension) differs from the graph's \(graph.dimension)")
        }
        let (need, o) = graph.count.multipliedReportingOverflow(by: quantizer.codeSize)
        if o || codeBytes != need {
            throw StrataError(.invalidArgument, "codes hold \(codeBytes) bytes, \(graph.count) rows need \(need)")
        }
    }

    /// A searcher over arguments that passed ``check(graph:quantizer:codeBytes:cache:)``.
    init(checked graph: DiskGraphView, quantizer: ProductQuantizer, codes: UnsafeRawBufferPointer,
         metric: DistanceMetric?, owner: ResidentCodes?, cache: NodeCache?, direct: DirectGraphFile?,
         navigation: NavigationGraph? = nil) {
        self.codeOwner = owner
        self.navigation = navigation
        self.directFile = direct
        self.cache = cache.flatMap { $0.cachedCount > 0 ? $0 : nil }
        self.graph = graph
        self.quantizer = quantizer
        self.m = quantizer.codeSize
        self.n = graph.count
        self.dim = graph.dimension
        self.metric = metric ?? graph.metric
        // An empty buffer may have a nil base; nothing is read then.
        self.codes = codes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 64)!
        table = .allocate(capacity: quantizer.distanceTableCount)
        listIds = .allocate(capacity: 1)
        listDist = .allocate(capacity: 1)
        listFlags = .allocate(capacity: 1)
        fresh = .allocate(capacity: 64 * graph.maxDegree)
        freshDist = .allocate(capacity: 64 * graph.maxDegree)
        freshFlags = .allocate(capacity: 64 * graph.maxDegree)
        resultIds = .allocate(capacity: 1)
        resultDist = .allocate(capacity: 1)
        beam = .allocate(capacity: 64)
        beamPasses = .allocate(capacity: 64)
    }

    deinit {
        table.deallocate(); visited.deallocate(); readAheadIssued.deallocate()
        listIds.deallocate(); listDist.deallocate(); listFlags.deallocate()
        fresh.deallocate(); freshDist.deallocate(); freshFlags.deallocate()
        resultIds.deallocate(); resultDist.deallocate()
        beam.deallocate(); beamPasses.deallocate()
        navigationScratch.deallocate()
    }

    /// Approximate k nearest rows of `query`, closest first, with exact distances.
    /// - Throws: `StrataError.Code.dimensionMismatch` for a query of the wrong length,
    ///   `StrataError.Code.nonFiniteValue` / `StrataError.Code.invalidValue` for a query with NaN,
    ///   infinity or too large a norm, `StrataError.Code.invalidArgument` for bad knobs.
    /// - Complexity: about L hops of R PQ look-ups (M table reads each) and one exact distance.
    package func search(_ query: [Float], parameters: BeamSearchParameters) throws(StrataError) -> [(row: Int, distance: Float)] {
        if query.count != dim { throw StrataError(.dimensionMismatch, "query has \(query.count) dimensions, the graph \(dim)") }
        try VectorLimits.checkQuery(query)
        try parameters.validate()
        return query.withUnsafeBufferPointer { search(unsafeQuery: $0.baseAddress!, parameters: parameters) }
    }

    /// As ``search(_:parameters:)`` with the query given by pointer. Unsafe: `query` must hold
    /// `dimension` finite floats, and the knobs must have passed ``BeamSearchParameters/validate()``.
    /// With a direct file (see ``BeamSearcherPool``), the search reads records with direct I/O,
    /// keeping `beamWidth` reads in flight (BeamSearcher+Direct.swift).
    package func search(unsafeQuery query: UnsafePointer<Float>, parameters: BeamSearchParameters) -> [(row: Int, distance: Float)] {
        if let io = directReads(width: parameters.beamWidth) {
            return results(count: traverseDirect(query, parameters, io))
        }
        return results(count: traverse(query, parameters, EveryRow(), nonPassingBudget: 0))
    }

    /// The approximate k nearest rows of `query` among those `filter` admits: the list holds up to
    /// `listSize` passing candidates, and at most `nonPassingBudget` nodes that fail the filter are
    /// expanded to keep the traversal connected (the entry point is always expanded). Every result
    /// passes. Unsafe, as ``search(unsafeQuery:parameters:)``; the filter must stay valid for the call.
    package func search(unsafeQuery query: UnsafePointer<Float>, parameters: BeamSearchParameters,
                        filter: RowPredicate, nonPassingBudget: Int) -> [(row: Int, distance: Float)] {
        results(count: traverse(query, parameters, filter, nonPassingBudget: max(0, nonPassingBudget)))
    }

    /// Exact k nearest rows by scanning every record (for small segments, and as ground truth).
    /// - Throws: `StrataError.Code.dimensionMismatch`, `StrataError.Code.nonFiniteValue` /
    ///   `StrataError.Code.invalidValue` (see ``VectorLimits``), or `StrataError.Code.invalidArgument` for k < 1.
    /// - Complexity: O(count * dimension).
    package func exactSearch(_ query: [Float], k: Int) throws(StrataError) -> [(row: Int, distance: Float)] {
        if query.count != dim { throw StrataError(.dimensionMismatch, "query has \(query.count) dimensions, the graph \(dim)") }
        if k < 1 { throw StrataError(.invalidArgument, "k must be at least 1, got \(k)") }
        try VectorLimits.checkQuery(query)
        ensureCapacity(list: 1, results: n)
        let base = graph.bytes.baseAddress!
        query.withUnsafeBufferPointer { qp in
            for i in 0..<n {
                resultIds[i] = UInt32(i)
                resultDist[i] = exactDistance(qp.baseAddress!, UnsafeRawPointer(base + graph.recordOffset(i)))
            }
        }
        return results(count: selectTop(n, k))
    }

    /// Adds to `counts[node]` one for each of the sample queries `samples` that expands `node`
    /// (see ``BeamSearcherPool/expansionRanking(count:query:parameters:threads:)``). `query(i)`
    /// gives sample i (nil, the wrong length or a value a query may not hold skips it, see
    /// ``VectorLimits``); searches run without a filter, with direct I/O when the searcher has a
    /// direct file.
    func countExpansions(_ samples: Range<Int>, query: (Int) -> [Float]?, parameters: BeamSearchParameters,
                         into counts: inout [UInt32: UInt32]) {
        reranksSectorNeighbours = false
        defer { reranksSectorNeighbours = true }
        for i in samples {
            guard let q = query(i), q.count == dim, (try? VectorLimits.checkQuery(q)) != nil else { continue }
            _ = q.withUnsafeBufferPointer { search(unsafeQuery: $0.baseAddress!, parameters: parameters) }
            for j in 0..<lastStats.exactDistances { counts[resultIds[j], default: 0] &+= 1 }
        }
    }

    /// Row count below which a segment should skip the graph and scan exactly: at this size a scan
    /// costs about what one beam search costs.
    package static let exactScanThreshold = 4096

    /// With read-ahead, reads are started for this many beams' worth of the best unexpanded candidates
    /// (the next beam and the one likely after it). On pypi-minilm-100k cold, W 4: 1 beam 1,309 QPS,
    /// 2 beams 1,535, 3 beams 1,634 but more wasted reads (20.3, 21.5, 23.1 reads/query at L 32).
    static let readAheadBeams = 2

    // MARK: scratch

    /// The first `count` results as (row, distance) pairs.
    func results(count: Int) -> [(row: Int, distance: Float)] {
        var out: [(row: Int, distance: Float)] = []
        out.reserveCapacity(count)
        for i in 0..<count { out.append((Int(resultIds[i]), resultDist[i])) }
        return out
    }

    func ensureCapacity(list: Int, results: Int) {
        if list + 1 > capacity {
            listIds.deallocate(); listDist.deallocate(); listFlags.deallocate()
            capacity = list + 1
            listIds = .allocate(capacity: capacity)
            listDist = .allocate(capacity: capacity)
            listFlags = .allocate(capacity: capacity)
        }
        if results > resultCapacity {
            let ni = UnsafeMutablePointer<UInt32>.allocate(capacity: results)
            let nd = UnsafeMutablePointer<Float>.allocate(capacity: results)
            ni.update(from: resultIds, count: min(resultCapacity, results))
            nd.update(from: resultDist, count: min(resultCapacity, results))
            resultIds.deallocate(); resultDist.deallocate()
            resultIds = ni; resultDist = nd
            resultCapacity = results
        }
    }

    /// Starts the candidate list of an unfiltered search (the ADC table filled): with the sampled rows
    /// the navigation graph finds nearest the query (up to `l`), else with the medoid alone. Marks
    /// them seen; returns the list size. The list must have room for `l` entries.
    func seedList(_ l: Int, _ seen: inout VisitedTable) -> Int {
        if let nav = navigation {
            let found = nav.nearest(table: table, codes: codes, codeSize: m, listSize: NavigationGraph.listSize, &navigationScratch)
            let c = min(found, l)
            if c > 0 {
                seen.reserve(c)
                for i in 0..<c {
                    listIds[i] = navigationScratch.nodes[i]
                    listDist[i] = navigationScratch.dists[i]
                    listFlags[i] = BeamSearcher.passesFlag
                    _ = seen.insert(listIds[i])
                }
                return c
            }
        }
        var start = UInt32(graph.medoid)
        ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: m, ids: &start, count: 1, into: listDist)
        listIds[0] = start
        listFlags[0] = BeamSearcher.passesFlag
        _ = seen.insert(start)
        return 1
    }

    /// Node `v`'s record: from the cache when it holds it, else from the mapping.
    @inline(__always)
    func record(_ v: Int, _ base: UnsafeRawPointer, _ geo: DiskGraphLayout.Geometry) -> UnsafeRawPointer {
        if let c = cache, let r = c.record(v) { return r }
        return base + graph.recordOffset(v)
    }

    @inline(__always)
    func exactDistance(_ q: UnsafePointer<Float>, _ rec: UnsafeRawPointer) -> Float {
        switch graph.geometry.elementType {
        case .float32: return Distance.unsafeFloat32(metric, q, rec.assumingMemoryBound(to: Float.self), dim)
        case .float16: return Distance.unsafeFloat16(metric, q, rec.assumingMemoryBound(to: UInt16.self), dim)
        }
    }

    /// Moves the k smallest (distance, then row) of the first `count` results to the front, sorted.
    func selectTop(_ count: Int, _ k: Int) -> Int {
        let take = min(k, count)
        let ids = resultIds, ds = resultDist
        for i in 0..<take {
            var best = i
            for j in (i + 1)..<max(i + 1, count) where ds[j] < ds[best] || (ds[j] == ds[best] && ids[j] < ids[best]) {
                best = j
            }
            if best != i {
                let ti = ids[i], td = ds[i]
                ids[i] = ids[best]; ds[i] = ds[best]
                ids[best] = ti; ds[best] = td
            }
        }
        return take
    }
}
