// Beam search over the on-disk graph, guided by PQ (ADC) distances, with exact rerank from the
// records it reads (DiskANN's search).
//
// Per query: build the M x 256 ADC table; start the candidate list (size L, ordered by PQ distance)
// with the medoid; repeatedly take the W best unexpanded candidates, read their records (vector and
// neighbour list, co-located in one sector), insert their unvisited neighbours with PQ distances, and
// compute the exact distance of each expanded node from the vector in its record. The answer is the k
// expanded nodes with the smallest exact distances: every record read is reranked for free.
//
// Latency hiding: after inserting the neighbours of the current beam, the next beam is known, so its
// records are prefetched before the current beam's exact distances are computed; neighbour codes are
// prefetched inside the ADC kernel.
import StrataFormat
import CStrataKernels
#if canImport(Glibc)
import Glibc
#endif

/// Knobs of one approximate search.
public struct BeamSearchParameters: Sendable, Equatable {
    /// Number of results k (>= 1).
    public var k: Int = 10
    /// Search list size L (ef), >= k.
    public var listSize: Int = 64
    /// Beam width W: records read per hop (1...64). 1 is fastest from the page cache; 2-8 overlap disk reads.
    public var beamWidth: Int = 1
    /// Read ahead: before touching the records of the next beam, advise the kernel to read the pages of
    /// those not in the ``NodeCache`` (`madvise(MADV_WILLNEED)`), and of the beam likely after it, so
    /// that their page faults are served by reads issued together (about one device latency per hop
    /// instead of one per record). For segments not in the page cache; from the page cache it only
    /// adds a system call per record (about 1 us).
    public var readAhead: Bool = false

    /// Defaults: k 10, L 64, W 1, no read-ahead.
    public init() {}

    /// Explicit knobs.
    public init(k: Int, listSize: Int, beamWidth: Int = 1, readAhead: Bool = false) {
        self.k = k
        self.listSize = listSize
        self.beamWidth = beamWidth
        self.readAhead = readAhead
    }

    /// - Throws: ``StrataError/Code/invalidArgument`` when k < 1, L < k, L > 100000, or W outside 1...64.
    public func validate() throws {
        if k < 1 { throw StrataError(.invalidArgument, "k must be at least 1, got \(k)") }
        if listSize < k { throw StrataError(.invalidArgument, "search list size L (\(listSize)) must be at least k (\(k))") }
        if listSize > 100_000 { throw StrataError(.invalidArgument, "search list size L must be at most 100000") }
        if beamWidth < 1 || beamWidth > 64 { throw StrataError(.invalidArgument, "beam width must be in 1...64, got \(beamWidth)") }
    }
}

/// Counters of the last search, for `strata bench` and tuning.
public struct BeamSearchStats: Sendable, Equatable {
    /// Hops (beams expanded).
    public var hops = 0
    /// Records read (nodes expanded, each with one exact distance).
    public var recordsRead = 0
    /// Of ``recordsRead``, those served by the ``NodeCache``.
    public var cachedRecords = 0
    /// PQ distances computed.
    public var pqDistances = 0
}

/// PQ codes held resident in anonymous memory: 2 MiB-aligned and advised for transparent huge pages,
/// because every hop of a search reads ~R random codes and 4 KiB pages make each a TLB miss. Share one
/// store between the per-thread searchers.
public final class ResidentCodes: @unchecked Sendable {
    /// Bytes per code (M).
    public let codeSize: Int
    /// Number of codes.
    public let count: Int
    let storage: UnsafeMutableRawPointer
    let capacity: Int

    /// Copies `count x codeSize` code bytes.
    /// - Throws: ``StrataError/Code/invalidArgument`` when the length is not `count * codeSize`.
    public init(copying codes: UnsafeRawBufferPointer, count: Int, codeSize: Int) throws {
        let (need, o) = count.multipliedReportingOverflow(by: codeSize)
        if o || codeSize < 1 || count < 0 || codes.count != need {
            throw StrataError(.invalidArgument, "codes hold \(codes.count) bytes, \(count) rows of \(codeSize) need \(need)")
        }
        self.codeSize = codeSize
        self.count = count
        let huge = 2 << 20
        capacity = max(huge, (need + huge - 1) / huge * huge)
        storage = .allocate(byteCount: capacity, alignment: huge)
        MemoryAdvice.hugePage.apply(to: storage, length: capacity)
        if need > 0 { storage.copyMemory(from: codes.baseAddress!, byteCount: need) }
    }

    deinit { storage.deallocate() }

    /// The codes, `count x codeSize` bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: count * codeSize) }

    /// Bytes of anonymous memory held (rounded up to whole huge pages).
    public var residentBytes: Int { capacity }
}

/// Approximate search over one graph section with resident PQ codes. One searcher per thread: it owns
/// reusable scratch (visited-node table, candidate list, ADC table), so the hot loop allocates nothing.
/// The graph bytes and codes must outlive the searcher.
public final class BeamSearcher {
    /// The graph being searched.
    public let graph: DiskGraphView
    /// The quantiser whose codes guide the search.
    public let quantizer: ProductQuantizer
    /// Counters of the last search.
    public private(set) var lastStats = BeamSearchStats()
    /// Keeps a shared code store alive.
    let codeOwner: ResidentCodes?
    /// Records of the nodes nearest the entry point, read from RAM instead of the mapping.
    public let cache: NodeCache?

    let codes: UnsafePointer<UInt8>
    let m: Int
    let n: Int
    let dim: Int
    let metric: DistanceMetric
    let bias: Float
    let table: UnsafeMutablePointer<Float>
    /// Nodes seen by the current search (memory grows with the nodes visited, not with the graph).
    var visited = VisitedTable(capacity: 4096)
    /// Nodes whose read-ahead was issued in the current search.
    var readAheadIssued = VisitedTable(capacity: 64)
    var capacity = 0
    var listIds: UnsafeMutablePointer<UInt32>
    var listDist: UnsafeMutablePointer<Float>
    var listDone: UnsafeMutablePointer<Bool>
    let fresh: UnsafeMutablePointer<UInt32>
    let freshDist: UnsafeMutablePointer<Float>
    var resultIds: UnsafeMutablePointer<UInt32>
    var resultDist: UnsafeMutablePointer<Float>
    var resultCapacity = 0
    var beam: [Int]
    let queryBuffer: UnsafeMutablePointer<Float>

    /// Creates a searcher over a shared resident code store (the usual way).
    /// - Parameters:
    ///   - graph: a validated graph view.
    ///   - quantizer: the PQ codebook (same dimension as the graph).
    ///   - codes: `graph.count x quantizer.codeSize` bytes, row-major.
    ///   - metric: distance to report; `nil` uses the metric recorded in the graph.
    ///   - cache: records of the nodes nearest the entry point (built from the same graph), or nil.
    /// - Throws: ``StrataError/Code/invalidArgument`` when dimensions or the code length disagree, or the
    ///   cache was built for another graph.
    public convenience init(graph: DiskGraphView, quantizer: ProductQuantizer, codes: ResidentCodes,
                            metric: DistanceMetric? = nil, cache: NodeCache? = nil) throws {
        try self.init(graph: graph, quantizer: quantizer, codes: codes.bytes, metric: metric, owner: codes, cache: cache)
    }

    /// Creates a searcher over codes the caller keeps alive (see also ``ResidentCodes``).
    public convenience init(graph: DiskGraphView, quantizer: ProductQuantizer, codes: UnsafeRawBufferPointer,
                            metric: DistanceMetric? = nil) throws {
        try self.init(graph: graph, quantizer: quantizer, codes: codes, metric: metric, owner: nil)
    }

    init(graph: DiskGraphView, quantizer: ProductQuantizer, codes: UnsafeRawBufferPointer,
         metric: DistanceMetric?, owner: ResidentCodes?, cache: NodeCache? = nil) throws {
        self.codeOwner = owner
        if let cache, cache.nodeCount != graph.count || cache.recordSize != graph.geometry.recordSize {
            throw StrataError(.invalidArgument, "the node cache was built for another graph")
        }
        self.cache = cache.flatMap { $0.cachedCount > 0 ? $0 : nil }
        if quantizer.dimension != graph.dimension {
            throw StrataError(.invalidArgument, "PQ dimension \(quantizer.dimension) differs from the graph's \(graph.dimension)")
        }
        let (need, o) = graph.count.multipliedReportingOverflow(by: quantizer.codeSize)
        if o || codes.count != need {
            throw StrataError(.invalidArgument, "codes hold \(codes.count) bytes, \(graph.count) rows need \(need)")
        }
        self.graph = graph
        self.quantizer = quantizer
        self.m = quantizer.codeSize
        self.n = graph.count
        self.dim = graph.dimension
        self.metric = metric ?? graph.metric
        self.bias = ProductQuantizer.distanceTableBias(metric: self.metric)
        // An empty buffer may have a nil base; nothing is read then.
        self.codes = codes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 64)!
        table = .allocate(capacity: quantizer.distanceTableCount)
        listIds = .allocate(capacity: 1)
        listDist = .allocate(capacity: 1)
        listDone = .allocate(capacity: 1)
        fresh = .allocate(capacity: 64 * graph.maxDegree)
        freshDist = .allocate(capacity: 64 * graph.maxDegree)
        resultIds = .allocate(capacity: 1)
        resultDist = .allocate(capacity: 1)
        beam = [Int](repeating: 0, count: 64)
        queryBuffer = .allocate(capacity: graph.dimension)
    }

    deinit {
        table.deallocate(); visited.deallocate(); readAheadIssued.deallocate()
        listIds.deallocate(); listDist.deallocate(); listDone.deallocate()
        fresh.deallocate(); freshDist.deallocate()
        resultIds.deallocate(); resultDist.deallocate(); queryBuffer.deallocate()
    }

    /// Approximate k nearest rows of `query`, closest first, with exact distances.
    /// - Throws: ``StrataError/Code/dimensionMismatch`` for a query of the wrong length,
    ///   ``StrataError/Code/nonFiniteValue`` / ``StrataError/Code/invalidValue`` for a query with NaN,
    ///   infinity or too large a norm, ``StrataError/Code/invalidArgument`` for bad knobs.
    /// - Complexity: about L hops of R PQ look-ups (M table reads each) and one exact distance.
    public func search(_ query: [Float], parameters: BeamSearchParameters) throws -> [(row: Int, distance: Float)] {
        if query.count != dim { throw StrataError(.dimensionMismatch, "query has \(query.count) dimensions, the graph \(dim)") }
        try VectorLimits.checkQuery(query)
        try parameters.validate()
        return query.withUnsafeBufferPointer { search(unchecked: $0.baseAddress!, parameters) }
    }

    /// As ``search(_:parameters:)`` with the query given by pointer (`dimension` floats); the knobs are
    /// not validated here (call ``BeamSearchParameters/validate()`` once).
    public func search(unchecked query: UnsafePointer<Float>, _ parameters: BeamSearchParameters) -> [(row: Int, distance: Float)] {
        let count = runSearch(query, parameters)
        var out: [(row: Int, distance: Float)] = []
        out.reserveCapacity(count)
        for i in 0..<count { out.append((Int(resultIds[i]), resultDist[i])) }
        return out
    }

    // MARK: internals

    func ensureCapacity(list: Int, results: Int) {
        if list + 1 > capacity {
            listIds.deallocate(); listDist.deallocate(); listDone.deallocate()
            capacity = list + 1
            listIds = .allocate(capacity: capacity)
            listDist = .allocate(capacity: capacity)
            listDone = .allocate(capacity: capacity)
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

    /// Node `v`'s record: from the cache when it holds it, else from the mapping.
    @inline(__always)
    func record(_ v: Int, _ base: UnsafeRawPointer, _ geo: DiskGraphLayout.Geometry) -> UnsafeRawPointer {
        if let c = cache, let r = c.record(v) { return r }
        return base + geo.recordOffset(v)
    }

    @inline(__always)
    func exactDistance(_ q: UnsafePointer<Float>, _ rec: UnsafeRawPointer) -> Float {
        switch graph.geometry.elementType {
        case .float32: return IndexDistance.f32(metric, q, rec.assumingMemoryBound(to: Float.self), dim)
        case .float16: return IndexDistance.f16(metric, q, rec.assumingMemoryBound(to: UInt16.self), dim)
        }
    }

    /// Runs the search; leaves the top results sorted in `resultIds/resultDist[0..<returned]`.
    func runSearch(_ q: UnsafePointer<Float>, _ p: BeamSearchParameters) -> Int {
        lastStats = BeamSearchStats()
        if n == 0 { return 0 }
        let l = p.listSize, w = min(p.beamWidth, 64), k = p.k
        ensureCapacity(list: l, results: max(resultCapacity, 4 * l + 64))
        quantizer.computeDistanceTable(query: q, metric: metric, into: table)
        // Local copies: the hot loop works on plain values, written back at the end (they may grow).
        var seen = visited
        seen.clear()
        var issued = readAheadIssued
        issued.clear()
        defer { visited = seen; readAheadIssued = issued }
        let geo = graph.geometry
        let base = graph.bytes.baseAddress!
        let readAhead = p.readAhead
        let depth = readAhead ? w * BeamSearcher.readAheadBeams : 0
        let vb = geo.vectorBytes
        let rmax = geo.maxDegree
        let ids = listIds, dists = listDist, done = listDone
        var stats = BeamSearchStats()

        // Seed with the medoid.
        let med = graph.medoid
        var start = UInt32(med)
        ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: m, ids: &start, count: 1, into: freshDist)
        ids[0] = start; dists[0] = freshDist[0]; done[0] = false
        _ = seen.insert(UInt32(med))
        var size = 1
        var cursor = 0
        var results = 0
        let medRecord = record(med, base, geo)
        if readAhead && cache == nil { NodeCache.willNeed(medRecord, bytes: geo.recordSize) }
        strata_prefetch_range(medRecord, geo.recordSize)

        var beamCount = 0
        while cursor < size {
            // Take the W best unexpanded candidates.
            beamCount = 0
            var i = cursor
            while i < size && beamCount < w {
                if !done[i] {
                    done[i] = true
                    beam[beamCount] = Int(ids[i])
                    beamCount += 1
                }
                i += 1
            }
            stats.hops += 1
            // Unvisited neighbours of the beam.
            seen.reserve(beamCount * rmax)
            var freshCount = 0
            for b in 0..<beamCount {
                let rec = record(beam[b], base, geo)
                let d = min(Int(UInt32(littleEndian: rec.loadUnaligned(fromByteOffset: vb, as: UInt32.self))), rmax)
                let nb = rec + vb + 4
                for j in 0..<d {
                    let v = UInt32(littleEndian: nb.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self))
                    if Int(v) >= n || !seen.insert(v) { continue }
                    fresh[freshCount] = v
                    freshCount += 1
                    // The code of a fresh neighbour is a cache miss: start it now (M <= 128 spans <= 3 lines).
                    let cp = codes + Int(v) * m
                    strata_prefetch(cp)
                    strata_prefetch(cp + m - 1)
                }
            }
            ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: m, ids: fresh, count: freshCount, into: freshDist)
            stats.pqDistances += freshCount
            var lowest = size
            for j in 0..<freshCount {
                let d = freshDist[j]
                if size == l && d >= dists[l - 1] { continue }
                let v = fresh[j]
                var lo = 0, hi = size
                while lo < hi {
                    let mid = (lo + hi) >> 1
                    if dists[mid] <= d { lo = mid + 1 } else { hi = mid }
                }
                let pos = lo
                let moved = (size == l ? l - 1 : size) - pos
                if moved > 0 {
                    memmove(ids + pos + 1, ids + pos, moved * 4)
                    memmove(dists + pos + 1, dists + pos, moved * 4)
                    memmove(done + pos + 1, done + pos, moved)
                }
                ids[pos] = v; dists[pos] = d; done[pos] = false
                if size < l { size += 1 }
                if pos < lowest { lowest = pos }
            }
            while cursor < size && done[cursor] { cursor += 1 }
            if lowest < cursor { cursor = lowest }
            // Prefetch the next beam's records while computing this beam's exact distances.
            // With read-ahead, first start the disk reads of the uncached ones, all of them before
            // any is touched, so that their faults overlap.
            // Beyond the next beam, the following candidates (up to `depth` in all) are likely expanded
            // a hop later: their reads start now too, so that the disk works one hop ahead.
            var peek = cursor, ahead = 0
            if readAhead { issued.reserve(max(w, depth)) }
            while peek < size && ahead < max(w, depth) {
                if !done[peek] {
                    let v = Int(ids[peek])
                    if readAhead, cache?.record(v) == nil, issued.insert(UInt32(v)) {
                        NodeCache.willNeed(base + geo.recordOffset(v), bytes: geo.recordSize)
                    }
                    if ahead < w { strata_prefetch_range(record(v, base, geo), geo.recordSize) }
                    ahead += 1
                }
                peek += 1
            }
            if results + beamCount > resultCapacity { ensureCapacity(list: l, results: resultCapacity * 2 + beamCount) }
            for b in 0..<beamCount {
                let rec = record(beam[b], base, geo)
                resultIds[results] = UInt32(beam[b])
                resultDist[results] = exactDistance(q, rec)
                results += 1
                if cache?.record(beam[b]) != nil { stats.cachedRecords += 1 }
            }
            stats.recordsRead += beamCount
        }
        lastStats = stats
        return selectTop(results, k)
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

    /// Exact k nearest rows by scanning every record (for small segments, and as ground truth).
    /// - Throws: ``StrataError/Code/dimensionMismatch``, ``StrataError/Code/nonFiniteValue`` /
    ///   ``StrataError/Code/invalidValue`` (see ``VectorLimits``), or ``StrataError/Code/invalidArgument`` for k < 1.
    /// - Complexity: O(count * dimension).
    public func exactSearch(_ query: [Float], k: Int) throws -> [(row: Int, distance: Float)] {
        if query.count != dim { throw StrataError(.dimensionMismatch, "query has \(query.count) dimensions, the graph \(dim)") }
        if k < 1 { throw StrataError(.invalidArgument, "k must be at least 1, got \(k)") }
        try VectorLimits.checkQuery(query)
        ensureCapacity(list: 1, results: n)
        let base = graph.bytes.baseAddress!
        query.withUnsafeBufferPointer { qp in
            for i in 0..<n {
                resultIds[i] = UInt32(i)
                resultDist[i] = exactDistance(qp.baseAddress!, UnsafeRawPointer(base + graph.geometry.recordOffset(i)))
            }
        }
        let c = selectTop(n, k)
        return (0..<c).map { (Int(resultIds[$0]), resultDist[$0]) }
    }

    /// Row count below which a segment should skip the graph and scan exactly: at this size a scan
    /// costs about what one beam search costs.
    public static let exactScanThreshold = 4096

    /// With read-ahead, reads are started for this many beams' worth of the best unexpanded candidates
    /// (the next beam and the one likely after it). On pypi-minilm-100k cold, W 4: 1 beam 1,309 QPS,
    /// 2 beams 1,535, 3 beams 1,634 but more wasted reads (20.3, 21.5, 23.1 reads/query at L 32).
    static let readAheadBeams = 2
}

/// The node ids one search has seen: linear probing over `id + 1` (0 marks an empty slot) in a
/// power-of-two table kept at most half full, cleared per search in O(table). Its size follows the
/// nodes a search visits (L x R order, a few thousand), not the graph, so a searcher of a billion-row
/// segment holds kilobytes, and the probes stay in the CPU cache where an O(rows) array would miss.
package struct VisitedTable {
    private(set) var slots: UnsafeMutablePointer<UInt32>
    private(set) var mask: Int
    private(set) var count = 0

    /// A table of at least `capacity` slots (a power of two, at least 64).
    package init(capacity: Int) {
        var c = 64
        while c < capacity { c <<= 1 }
        slots = .allocate(capacity: c)
        slots.initialize(repeating: 0, count: c)
        mask = c - 1
    }

    /// Frees the slots; the table must not be used afterwards.
    package func deallocate() { slots.deallocate() }

    /// Empties the table, keeping its size.
    package mutating func clear() {
        if count > 0 { slots.update(repeating: 0, count: mask + 1) }
        count = 0
    }

    /// Grows the table so that `extra` more inserts keep it at most half full (outside hot loops).
    package mutating func reserve(_ extra: Int) {
        guard (count + extra) * 2 > mask + 1 else { return }
        var c = mask + 1
        while (count + extra) * 2 > c { c <<= 1 }
        let old = slots, oldSize = mask + 1
        slots = .allocate(capacity: c)
        slots.initialize(repeating: 0, count: c)
        mask = c - 1
        for i in 0..<oldSize where old[i] != 0 {
            var j = VisitedTable.slot(old[i] &- 1, mask)
            while slots[j] != 0 { j = (j + 1) & mask }
            slots[j] = old[i]
        }
        old.deallocate()
    }

    @inline(__always) static func slot(_ id: UInt32, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(id) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// Adds `id` (< UInt32.max); true when it was not there. Call ``reserve(_:)`` first: this never grows.
    @inline(__always) package mutating func insert(_ id: UInt32) -> Bool {
        let key = id &+ 1
        var j = VisitedTable.slot(id, mask)
        while true {
            let s = slots[j]
            if s == key { return false }
            if s == 0 {
                slots[j] = key
                count += 1
                return true
            }
            j = (j + 1) & mask
        }
    }
}
