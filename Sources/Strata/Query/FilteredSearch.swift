// Filtered k-NN search: the planner's two plans (FilterPlanner.swift).
//
// exact: the passing rows (from the most selective leaf's posting slices, each tested against the
//   whole filter unless that leaf is the whole filter) are scored with the PQ codes through a
//   uint8-quantised look-up table (CStrataKernels/strata_filter_kernels.c: 64 rows per AVX-512 VBMI
//   call; float ADC where VBMI is missing); above 4,096 rows a first pass over half the sub-spaces
//   keeps the best 8%. The best `rerank` by PQ are rescored exactly from the vectors section, the k
//   best returned. Without an index: exact distances for every passing row.
// graph: the index's beam search (StrataIndex/Graph/BeamSearcher+Traversal.swift) with the filter
//   as its row predicate: the filter is tested on every node it meets; passing nodes enter the
//   candidate list and, once expanded, the results; non-passing nodes keep the traversal connected
//   while a budget of non-passing expansions lasts, sized here from the filter's selectivity.
// No row failing the filter is ever returned: every result is tested before it is admitted.
import StrataFormat
import StrataIndex
import HeapModule

/// Knobs of a filtered search.
public struct FilteredSearchOptions: Sendable, Equatable {
    /// Results wanted.
    public var k: Int = 10
    /// Graph plan: passing candidates kept in the search list (L).
    public var listSize: Int = 64
    /// Graph plan: non-passing nodes the search may expand to stay connected; nil: automatic
    /// (`listSize` x (1 - s) / s for selectivity s, at most 4 x `listSize`, at least 16).
    public var nonPassingBudget: Int? = nil
    /// Exact plan: candidates (by PQ distance) rescored with exact distances.
    public var rerank: Int = 40
    /// Estimated passing rows at or below which the exact plan runs; nil: ``defaultExactThreshold(rowCount:)``.
    public var exactThreshold: Int? = nil
    /// Force a plan (`.exact` or `.graph`); nil lets the planner choose.
    public var plan: FilterPlanKind? = nil

    /// Creates options.
    public init(k: Int = 10, listSize: Int = 64, nonPassingBudget: Int? = nil, rerank: Int = 40,
                exactThreshold: Int? = nil, plan: FilterPlanKind? = nil) {
        self.k = k; self.listSize = listSize; self.nonPassingBudget = nonPassingBudget
        self.rerank = rerank; self.exactThreshold = exactThreshold; self.plan = plan
    }

    /// The default threshold: 20% of the rows, at least 2,000. Measured on pypi-minilm-100k (M 96,
    /// one thread): at 16% selectivity the exact plan gives recall@10 1.00 at 3,700 q/s where the graph
    /// plan needs L 96 for 0.945 at 3,400 q/s; at 28% the graph plan (0.954 at 3,300 q/s) beats the
    /// exact plan (1,860 q/s).
    public static func defaultExactThreshold(rowCount: Int) -> Int { max(2_000, rowCount / 5) }

    func validate() throws(StrataError) {
        guard k >= 1 else { throw StrataError(.invalidArgument, "k must be at least 1, got \(k)") }
        guard listSize >= 1, listSize <= 100_000 else { throw StrataError(.invalidArgument, "list size must be 1...100000") }
        guard rerank >= 1 else { throw StrataError(.invalidArgument, "rerank must be at least 1") }
        if let b = nonPassingBudget, b < 0 { throw StrataError(.invalidArgument, "non-passing budget must be >= 0") }
        if let p = plan, p != .exact, p != .graph { throw StrataError(.invalidArgument, "only the exact or graph plan can be forced") }
    }
}

/// Counters of one filtered search.
public struct FilteredSearchStats: Sendable, Equatable {
    /// Rows tested against the filter.
    public var rowsTested = 0
    /// PQ distances computed.
    public var pqDistances = 0
    /// Exact distances computed.
    public var exactDistances = 0
    /// Graph records read (graph plan).
    public var recordsRead = 0
    /// Of ``recordsRead``, those served by the node cache (the others were read from the file).
    public var cachedRecords = 0
    /// Of those, non-passing nodes expanded for connectivity.
    public var nonPassingExpanded = 0

    /// Zero counters.
    public init() {}
}

/// Hits of a filtered search with the plan that produced them.
public struct FilteredSearchResult: Sendable {
    /// Results, closest first; every one passes the filter.
    public var hits: [SearchHit]
    /// The plan that ran.
    public var plan: FilterPlan
    /// Work counters.
    public var stats: FilteredSearchStats
}

extension Segment {
    /// Approximate (graph plan) or exact (exact plan) k nearest rows among those passing `filter`,
    /// closest first; the planner picks the plan from the filter's estimated cardinality (see
    /// ``planFilter(_:options:)``). Every returned row passes the filter.
    /// - Throws: `.unknownColumn` / `.typeMismatch` for a filter that does not fit the schema,
    ///   `.dimensionMismatch`, `.nonFiniteValue` / `.invalidValue` (see `VectorLimits`), `.invalidArgument` for bad knobs.
    public func search(query: [Float], filter: Filter, options: FilteredSearchOptions = FilteredSearchOptions()) throws(StrataError) -> FilteredSearchResult {
        try checkOpen()
        try options.validate()
        let compiled = try CompiledFilter(filter: filter, segment: self)
        let plan = plan(compiled, filter: filter, options: options)
        let q = try prepareQuery(query)
        var stats = FilteredSearchStats()
        let hits: [SearchHit]
        switch plan.kind {
        case .empty: hits = []
        case .unfiltered:
            hits = try search(query: query, options: SearchOptions(k: options.k, listSize: max(options.listSize, options.k)))
        case .exact:
            try checkBeforeRead(exactScanSections)
            hits = exactPlan(q, compiled, options, &stats)
        case .graph:
            try checkBeforeRead(Segment.graphSearchSections)
            hits = graphPlan(q, annIndex!, compiled, options, &stats)
        }
        return FilteredSearchResult(hits: hits, plan: plan, stats: stats)
    }

    /// Exact k nearest rows among those passing `filter` (exact distances over every passing row):
    /// the reference the filtered plans are tested against.
    public func exactSearch(query: [Float], k: Int, filter: Filter) throws(StrataError) -> [SearchHit] {
        try checkOpen()
        let compiled = try CompiledFilter(filter: filter, segment: self)
        return try exactSearch(query: query, k: k, filter: { compiled.test($0) })
    }

    func exactPlan(_ q: [Float], _ c: CompiledFilter, _ o: FilteredSearchOptions, _ stats: inout FilteredSearchStats) -> [SearchHit] {
        let n = rowCount
        var top = TopK(k: o.k)
        q.withUnsafeBufferPointer { qp in
            let query = qp.baseAddress!
            guard let ix = annIndex else {
                c.forEachCandidateBatch { batch, allPass in
                    for r in batch where Int(r) < n && (allPass || c.test(Int(r))) {
                        let d = unsafeDistance(query, row: Int(r))
                        if d <= top.threshold { top.offer(distance: d, id: unsafeId(ofRow: Int(r)), row: Int(r)) }
                        stats.exactDistances += 1
                    }
                    stats.rowsTested += batch.count
                }
                return
            }
            let m = ix.quantizer.codeSize
            let table = UnsafeMutablePointer<Float>.allocate(capacity: ix.quantizer.distanceTableCount)
            defer { table.deallocate() }
            ix.quantizer.computeDistanceTable(query: query, metric: ProductQuantizer.rankingMetric(for: schema.metric), into: table)
            let codes = ix.codes.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
            // uint8 look-up table (one scale for all sub-spaces, so that sums rank like the float
            // sums up to rounding): 64 rows per VBMI kernel call instead of 6 float gathers per row.
            let quantized = QuantizedScanKernels.hasVectorScan && m % 4 == 0 && m * 255 < 65536
            var lut = [UInt8](repeating: 0, count: quantized ? m * 256 : 0)
            if quantized { _ = lut.withUnsafeMutableBufferPointer { QuantizedScanKernels.quantizeTable(table, subspaces: m, into: $0) } }
            // Passing rows first (one array), then one scan and one selection over all of them.
            var rows = [UInt32]()
            rows.reserveCapacity(min(n, c.estimate + 64))
            c.forEachCandidateBatch { batch, allPass in
                if allPass { rows.append(contentsOf: batch.lazy.filter { Int($0) < n }) }
                else { for r in batch where Int(r) < n && c.test(Int(r)) { rows.append(r) } }
                stats.rowsTested += batch.count
            }
            stats.pqDistances += rows.count
            let keep = max(o.rerank, o.k)
            var best = Heap<PQCandidate>()
            rows.withUnsafeBufferPointer { rp in
                guard rp.count > 0 else { return }
                if quantized {
                    // Many rows: a first pass over the first half of the sub-spaces keeps the best
                    // quarter (at least 16 x keep), and only those get the full sums.
                    var ids = Array(rp)
                    var sums = [UInt16](repeating: 0, count: ids.count)
                    var picked = [UInt32](repeating: 0, count: ids.count)
                    let half = (m / 2) / 4 * 4
                    if ids.count >= Self.prescreenRows, half >= 4 {
                        let survivors = max(16 * keep, Int(Double(ids.count) * Self.prescreenFraction))
                        let count = sums.withUnsafeMutableBufferPointer { sp in
                            lut.withUnsafeBufferPointer { lp in
                                QuantizedScanKernels.unsafeScanPartial(lut: lp.baseAddress!, codes: codes, codeSize: m, subspaces: half, ids: rp.baseAddress!, count: rp.count, into: sp.baseAddress!)
                            }
                            return picked.withUnsafeMutableBufferPointer { QuantizedScanKernels.selectSmallest(UnsafeBufferPointer(rebasing: sp[..<rp.count]), keep: survivors, into: $0) }
                        }
                        ids = (0..<count).map { rp[Int(picked[$0])] }
                        stats.pqDistances += ids.count
                    }
                    let count = sums.withUnsafeMutableBufferPointer { sp in
                        lut.withUnsafeBufferPointer { lp in
                            QuantizedScanKernels.unsafeScan(lut: lp.baseAddress!, codes: codes, subspaces: m, ids: ids, count: ids.count, into: sp.baseAddress!)
                        }
                        return picked.withUnsafeMutableBufferPointer { QuantizedScanKernels.selectSmallest(UnsafeBufferPointer(rebasing: sp[..<ids.count]), keep: keep, into: $0) }
                    }
                    for j in 0..<count {
                        let i = Int(picked[j])
                        let cand = PQCandidate(distance: Float(sums[i]), row: ids[i])
                        if best.count < keep { best.insert(cand) } else if cand < best.max! { _ = best.replaceMax(with: cand) }
                    }
                } else {
                    var dist = [Float](repeating: 0, count: rp.count)
                    dist.withUnsafeMutableBufferPointer { dp in
                        ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: m, ids: rp.baseAddress!, count: rp.count, into: dp.baseAddress!)
                    }
                    for (i, d) in dist.enumerated() {
                        let cand = PQCandidate(distance: d, row: rp[i])
                        if best.count < keep { best.insert(cand) } else if cand < best.max! { _ = best.replaceMax(with: cand) }
                    }
                }
            }
            for cand in best.unordered {
                let r = Int(cand.row)
                let d = unsafeDistance(query, row: r)
                stats.exactDistances += 1
                if d <= top.threshold { top.offer(distance: d, id: unsafeId(ofRow: r), row: r) }
            }
        }
        return top.sorted().map { SearchHit(id: unsafeId(ofRow: $0.row), row: $0.row, distance: $0.distance) }.sorted()
    }
}

extension Segment {
    /// Exact plan: from this many candidates a first pass over half of the sub-spaces keeps the best
    /// ``prescreenFraction`` (at least 16 x rerank) for the full sums. Measured on pypi-minilm-100k
    /// (M 96, month_2024, 8,808 rows): 8% keeps recall@10 at 0.999 and cuts the scan by ~40%.
    static let prescreenRows = 4096
    static let prescreenFraction = 0.08
}

struct PQCandidate: Comparable {
    var distance: Float
    var row: UInt32
    static func < (a: PQCandidate, b: PQCandidate) -> Bool { a.distance != b.distance ? a.distance < b.distance : a.row < b.row }
}

extension Segment {
    /// Graph plan: the index's beam searcher with the filter as its row predicate and a budget of
    /// non-passing expansions sized from the filter's estimated selectivity.
    func graphPlan(_ q: [Float], _ ix: SegmentANNIndex, _ filter: CompiledFilter, _ o: FilteredSearchOptions,
                   _ stats: inout FilteredSearchStats) -> [SearchHit] {
        let n = rowCount
        let passL = max(o.listSize, o.k)
        // Automatic budget: about as many non-passing expansions as the passing list is expected to
        // need to find L passing nodes, (1 - s) / s x L, capped at 4 L. More than n cannot be spent
        // (the entry point's expansion aside, each node is expanded once), so larger budgets are cut
        // to n: the same search, without a list sized for the unreachable rest.
        let s = min(1, max(0.05, Double(filter.estimate) / Double(max(1, n))))
        let budget = min(n, o.nonPassingBudget ?? max(16, Int(Double(passL) * min(4, (1 - s) / s))))
        let parameters = BeamSearchParameters(k: o.k, listSize: passL)
        let (found, counters) = ix.searchers.withSearcher { searcher in
            filter.withRowPredicate { predicate in
                q.withUnsafeBufferPointer {
                    (searcher.search(unsafeQuery: $0.baseAddress!, parameters: parameters, filter: predicate, nonPassingBudget: budget),
                     searcher.lastStats)
                }
            }
        }
        stats.rowsTested += counters.rowsTested
        stats.pqDistances += counters.pqDistances
        stats.exactDistances += counters.exactDistances
        stats.recordsRead += counters.recordsRead
        stats.cachedRecords += counters.cachedRecords
        stats.nonPassingExpanded += counters.nonPassingExpanded
        return found.map { SearchHit(id: unsafeId(ofRow: $0.row), row: $0.row, distance: $0.distance) }
    }
}

extension CompiledFilter {
    /// Runs `body` with this filter as a beam searcher's row predicate: the one-range fast path as an
    /// ordinal range, anything else through ``test(_:)``. The predicate is valid only inside `body`.
    func withRowPredicate<R>(_ body: (RowPredicate) -> R) -> R {
        if let f = fastForward { return body(RowPredicate(unsafeOrdinals: f, low: fastLow, width: fastWidth)) }
        return withExtendedLifetime(self) {
            body(RowPredicate(unsafeContext: UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())) { context, row in
                // Guaranteed reference: no retain/release per row tested (the caller keeps `self` alive).
                Unmanaged<CompiledFilter>.fromOpaque(context)._withUnsafeGuaranteedRef { $0.test(row) }
            })
        }
    }
}
