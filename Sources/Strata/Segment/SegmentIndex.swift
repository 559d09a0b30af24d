// The approximate-search index inside a segment: PQ codebook, PQ codes and the Vamana graph in
// DiskANN's sector layout (Sources/StrataIndex/Graph/DiskGraphLayout.swift). Written by SegmentWriter.finish() when
// SegmentWriterOptions.index is set and the segment has at least `minimumRows` rows; opened by
// Segment.open. The three sections are optional (not flagged required): a reader that predates them
// skips them and still serves exact search.
import StrataFormat
import StrataIndex

/// What `strata dump` shows about a segment's index.
public struct IndexSummary: Sendable {
    /// PQ sub-spaces (code bytes per vector).
    public var pqSubspaces: Int
    /// Bytes of the serialized codebook.
    public var codebookBytes: Int
    /// Bytes of the resident codes.
    public var codeBytes: Int
    /// Max degree R.
    public var maxDegree: Int
    /// Entry point (medoid row).
    public var medoid: Int
    /// Graph record size and nodes per 4 KB sector.
    public var recordBytes: Int
    /// Nodes per sector (0 when a node spans several sectors).
    public var nodesPerSector: Int
}

/// How ``Segment/open(path:options:)`` opens a segment.
public struct SegmentOpenOptions: Sendable, Equatable {
    /// Anonymous memory for the cache of graph records nearest the entry point (BFS levels from the
    /// medoid, or the records ``cacheSampleSearches`` ranks first), in bytes, slot map included.
    /// 0 disables the cache. Searches read cached records from RAM, which removes the first hops'
    /// disk reads when the segment is cold.
    public var cacheBudgetBytes: Int

    /// The default cache budget, 14 MiB: about 7,900 records of 384 float32 dimensions at R 64 (BFS
    /// levels 0-2 and part of 3 on 100k rows). With the PQ codes (M = 96 bytes per row, 10 MiB in huge
    /// pages) a 100k x 384 segment opens in about 27 MB of anonymous memory, under 32 MB with room for
    /// what a process that also built the segment keeps (16 MiB measured 28.8 MB, 31.6 MB after a build).
    public static let defaultCacheBudgetBytes = 14 << 20

    /// Check the checksum of each section before the first read that uses it (search: the sections
    /// a query touches; payload reads: the column sections), once per open segment, and throw
    /// `.checksumMismatch` naming the section on a mismatch. Off by default: open is O(sections +
    /// blocks) and search trusts the section bytes it reads (payload blocks are always checked when
    /// decoded); `strata scrub` checks everything in the background instead. With it, the first query
    /// of each kind costs a pass over the sections it touches (docs/SEGMENT-FORMAT.md section 10).
    public var verify: Bool

    /// Searches run at open to choose what the node cache holds, as DiskANN fills its cache from
    /// sample queries: rows of the segment, evenly spaced, are searched (k 10, L
    /// ``cacheSampleListSize``; W 1 through the mapping, W 8 over ``directIO``, on up to 8 threads),
    /// and the records they expand most often are cached instead of BFS levels from the entry
    /// point; room they leave is filled in BFS order. 0 (the default) keeps BFS order and costs
    /// nothing at open; so does a budget that holds every record. `Segment.open` blocks while the
    /// searches run. Through the mapping the ranking is deterministic; over direct I/O which nodes
    /// a pipelined search expands depends on the order its reads complete, so it may differ
    /// slightly from one open to the next.
    ///
    /// On pypi-minilm-100k (direct I/O, W 4, 20 MiB cache) 10,000 samples cut reads per query at
    /// L 24 from 21.6 to 17.8 at the same recall; at 1M x 96, where 6 MiB holds 1.2 % of the rows,
    /// from 54.0 to 53.2 at L 48 (docs/SCALE.md). The price is paid at every open: on the 217 MB
    /// pypi segment 7.3 s (2.3 GiB read) for 10,000 samples over direct I/O, 1.4 s from a warm
    /// mapping, against 0.2 s for BFS order.
    public var cacheSampleSearches = 0

    /// The list size of the sample searches of ``cacheSampleSearches``.
    public static let cacheSampleListSize = 32
    /// The most sample searches ``cacheSampleSearches`` runs (a larger value is clamped): the
    /// counts they keep grow with the distinct nodes expanded (at most about 40 per search, in one
    /// table per thread while they run).
    public static let maximumCacheSampleSearches = 100_000

    /// Anonymous memory for the navigation graph, in bytes: a small graph over rows sampled evenly
    /// (101 bytes each), built at open from the resident PQ codes (holding at most 12 MiB of decoded
    /// vectors meanwhile, which caps the sample at 5,461 rows of 384 dimensions). Each unfiltered
    /// search walks it first and starts on disk from the sampled rows nearest the query instead of
    /// from the medoid (Starling's in-memory navigation graph), which saves the reads of the
    /// approach. nil (the default): ``defaultNavigationBudgetBytes`` with ``directIO``, none
    /// through the mapping, where the walk costs about what the hops it saves cost from the page
    /// cache. 0 disables it.
    ///
    /// On 1M x 96 under a memory cap (direct I/O, W 4) it cut reads per query at recall 0.95 from
    /// 40.5 to 37.5, and a 6 MiB node cache ranked by sample searches then adds nothing
    /// (docs/SCALE.md).
    public var navigationBudgetBytes: Int? = nil

    /// The navigation budget of a direct-I/O open, 2 MiB (20,763 rows at most).
    public static let defaultNavigationBudgetBytes = 2 << 20

    /// The navigation budget these options give.
    var effectiveNavigationBudgetBytes: Int { navigationBudgetBytes ?? (directIO ? SegmentOpenOptions.defaultNavigationBudgetBytes : 0) }

    /// Read graph records with direct I/O (O_DIRECT, through io_uring where the kernel offers it)
    /// instead of through the mapping, as DiskANN does: unfiltered searches then keep
    /// ``SearchOptions/beamWidth`` reads in flight and expand each node as its read finishes
    /// (pipelined, PipeANN's method), and the page cache holds none of the graph, so the memory a
    /// search needs is the node cache plus a few 4 KB buffers per searching thread, whatever the
    /// segment's size. For segments much larger than the RAM given to them; warm segments are
    /// faster through the mapping. Filtered searches still read through the mapping. Off by default.
    public var directIO = false
    /// With ``directIO``, use io_uring where the kernel offers it (else pread, one read at a time);
    /// tests turn it off to check the fallback.
    package var directIOUsesRing = true

    /// Leave the derived sections (pq_codebook, pq_codes, graph, payload_index, text_index)
    /// unparsed: the segment opens without an index or search sections, as long as its primary
    /// sections are sound (repair reads a segment whose derived sections are damaged this way).
    /// sparse_index is parsed: a collection keeps its sparse vectors only there.
    package var skipsDerivedSections = false

    /// Creates options.
    public init(cacheBudgetBytes: Int = SegmentOpenOptions.defaultCacheBudgetBytes, verify: Bool = false) {
        self.cacheBudgetBytes = cacheBudgetBytes
        self.verify = verify
    }
}

/// Knobs of ``Segment/search(query:options:)``.
public struct SearchOptions: Sendable, Equatable {
    /// Results wanted.
    public var k: Int = 10
    /// Search list size L (ef): larger is slower and more accurate. At least k.
    public var listSize: Int = 64
    /// Graph records read per hop (DiskANN's W); 1 is best from the page cache, 2-8 from disk.
    public var beamWidth: Int = 1
    /// Force an exact scan even when the segment has an index.
    public var exact: Bool = false
    /// Start the disk reads of each beam's uncached records together (`madvise(MADV_WILLNEED)`) before
    /// touching them: for segments not in the page cache, with ``beamWidth`` 2-8
    /// (about one device latency per hop instead of one per record). From the page cache it costs a
    /// system call per record.
    public var readAhead: Bool = false

    /// Creates options.
    public init(k: Int = 10, listSize: Int = 64, beamWidth: Int = 1, exact: Bool = false, readAhead: Bool = false) {
        self.k = k
        self.listSize = listSize
        self.beamWidth = beamWidth
        self.exact = exact
        self.readAhead = readAhead
    }

    /// Beam width that serves a segment best from the page cache. On pypi-minilm-100k (L 32, one
    /// thread): W 1 ~8,600 QPS, W 8 ~4,700; wider beams only add records read.
    public static let defaultWarmBeamWidth = 1
    /// Beam width that serves a segment best from a cold disk with ``readAhead``. On pypi-minilm-100k
    /// cold (virtio disk, ~60 us per 4 KB read): W 1 ~750 QPS at L 32; W 4 needs L 28 for recall 0.95
    /// (0.9504, ~1,400-1,600 QPS), W 8 gets 0.955 at L 28 (~1,500-1,700 QPS) with 8 hops instead of 11.
    public static let defaultColdBeamWidth = 8

    /// Reads kept in flight by a search over direct I/O (``SegmentOpenOptions/directIO``).
    public static let defaultDirectBeamWidth = 4

    /// Options for a segment that is mostly not in the page cache: read-ahead on and the cold beam width.
    public static func cold(k: Int = 10, listSize: Int = 64) -> SearchOptions {
        SearchOptions(k: k, listSize: listSize, beamWidth: defaultColdBeamWidth, readAhead: true)
    }
}

/// The opened index of a segment: codebook and codes resident, graph in the mapping, and the pool of
/// searchers every query (filtered or not) takes one from.
final class SegmentANNIndex: Sendable {
    let quantizer: ProductQuantizer
    /// Codes copied into anonymous memory (huge pages) so that they stay resident (count x M bytes).
    let codes: ResidentCodes
    let graph: DiskGraphView
    /// Records nearest the entry point in RAM; nil when the budget is 0 or too small.
    let cache: NodeCache?
    /// Sample searches run at open to rank the cache (0: BFS order).
    let cacheSamplesRun: Int
    /// The navigation graph unfiltered searches start from; nil when the budget is 0 or too small.
    let navigation: NavigationGraph?
    /// The searchers of this index.
    let searchers: BeamSearcherPool

    init(codebook: UnsafeRawBufferPointer, codes mapped: UnsafeRawBufferPointer, graph graphBytes: UnsafeRawBufferPointer,
         rowCount: Int, dimension: Int, metric: DistanceMetric, offsets: (UInt64, UInt64, UInt64),
         cacheBudgetBytes: Int = SegmentOpenOptions.defaultCacheBudgetBytes, cacheSampleSearches: Int = 0,
         navigationBudgetBytes: Int = 0, directPath: String? = nil, directUsesRing: Bool = true) throws(StrataError) {
        do {
            quantizer = try ProductQuantizer(deserializing: codebook)
        } catch { throw StrataError(error.code, error.message, section: "pq_codebook", offset: offsets.0) }
        do {
            graph = try DiskGraphView(bytes: graphBytes)
        } catch { throw StrataError(error.code, error.message, section: "graph", offset: offsets.2) }
        guard quantizer.dimension == dimension, graph.count == rowCount, graph.dimension == dimension, graph.metric == metric else {
            throw StrataError(.corrupt, "index does not match the segment (rows, dimension or metric)", section: "graph", offset: offsets.2)
        }
        guard let need = Checked.mul(UInt64(rowCount), UInt64(quantizer.codeSize)), UInt64(mapped.count) == need else {
            throw StrataError(.corrupt, "pq_codes holds \(mapped.count) bytes, expected \(rowCount) x \(quantizer.codeSize)", section: "pq_codes", offset: offsets.1)
        }
        codes = try ResidentCodes(copying: mapped, count: rowCount, codeSize: quantizer.codeSize)
        let direct = try directPath.map { (p) throws(StrataError) in try DirectGraphFile(path: p, sectionOffset: offsets.2, usesRing: directUsesRing) }
        navigation = rowCount < BeamSearcher.exactScanThreshold ? nil
            : NavigationGraph.build(quantizer: quantizer, codes: codes.bytes, rowCount: rowCount, medoid: graph.medoid,
                                    budgetBytes: navigationBudgetBytes, threads: IndexParallel.defaultThreadCount)
        var ranking: [UInt32]? = nil
        var samplesRun = 0
        let capacity = NodeCache.capacity(count: rowCount, recordSize: graph.geometry.recordSize, budgetBytes: cacheBudgetBytes).records
        // A budget that holds every record needs no ranking.
        if cacheSampleSearches > 0 && capacity > 0 && capacity < rowCount {
            // Rows of the segment, evenly spaced, stand in for the queries to come (their vectors
            // come through the mapping); the searches read as the served ones will (direct I/O
            // when asked, which keeps their records out of the page cache).
            let view = graph, samples = min(cacheSampleSearches, rowCount, SegmentOpenOptions.maximumCacheSampleSearches)
            let probe = try BeamSearcherPool(graph: graph, quantizer: quantizer, codes: codes, cache: nil, direct: direct, navigation: navigation)
            // Direct reads are latency-bound: more of them in flight (and a searcher per core) make
            // the open shorter; the ranking hardly depends on the beam width.
            let parameters = BeamSearchParameters(k: 10, listSize: SegmentOpenOptions.cacheSampleListSize, beamWidth: direct == nil ? 1 : 8)
            ranking = probe.expansionRanking(count: samples, query: { view.vector(of: $0 * rowCount / samples) }, parameters: parameters,
                                             threads: min(8, IndexParallel.defaultThreadCount)).map(\.node)
            samplesRun = samples
        }
        cacheSamplesRun = samplesRun
        let built = NodeCache(graph: graph, budgetBytes: max(0, cacheBudgetBytes), ranking: ranking)
        cache = built.cachedCount > 0 ? built : nil
        searchers = try BeamSearcherPool(graph: graph, quantizer: quantizer, codes: codes, cache: cache, direct: direct, navigation: navigation)
    }
}

extension Segment {
    /// Whether the segment carries an ANN index (else ``search(query:options:)`` scans exactly).
    public var hasIndex: Bool { annIndex != nil }

    /// The index's shape, for `strata dump`; nil without an index.
    public var indexSummary: IndexSummary? {
        guard let ix = annIndex else { return nil }
        return IndexSummary(pqSubspaces: ix.quantizer.subspaceCount, codebookBytes: ix.quantizer.serialize().count,
                            codeBytes: ix.graph.count * ix.quantizer.codeSize, maxDegree: ix.graph.maxDegree,
                            medoid: ix.graph.medoid, recordBytes: ix.graph.geometry.recordSize,
                            nodesPerSector: ix.graph.geometry.nodesPerSector)
    }

    /// Nodes held by the cache of records nearest the entry point, its bytes of anonymous memory
    /// (both 0 without an index or with a zero budget), the BFS levels it holds whole, and the
    /// sample searches that ranked its nodes (``SegmentOpenOptions/cacheSampleSearches``; 0 for
    /// BFS order).
    public var nodeCacheSummary: (nodes: Int, bytes: Int, completeLevels: Int, sampleSearches: Int) {
        guard let ix = annIndex, let c = ix.cache else { return (0, 0, 0, 0) }
        return (c.cachedCount, c.residentBytes, c.completeLevels, ix.cacheSamplesRun)
    }

    /// Rows sampled by the navigation graph that picks where unfiltered searches start, and its
    /// bytes of anonymous memory (both 0 without one, see ``SegmentOpenOptions/navigationBudgetBytes``).
    public var navigationSummary: (rows: Int, bytes: Int) {
        guard let nav = annIndex?.navigation else { return (0, 0) }
        return (nav.count, nav.residentBytes)
    }

    /// Graph invariants (degree <= R, ids in range, no self loops, reachability from the entry
    /// point, degree histogram); nil without an index.
    public func graphReport() -> DiskGraphReport? { annIndex?.graph.validate() }

    /// Sector-locality figures of the graph section (same-sector edge share, distinct sectors per
    /// expansion, padding, and with `bfs` the BFS levels around the entry point); nil without an index.
    public func graphLocality(bfs: Bool = true) -> GraphLocality? { annIndex?.graph.locality(bfs: bfs) }

    /// Mean squared PQ reconstruction error over a sample of `sample` rows (nil without an index).
    public func pqQuantizationError(sample: Int = 2_000) -> Double? {
        guard let ix = annIndex, rowCount > 0 else { return nil }
        let n = min(sample, rowCount)
        let step = max(1, rowCount / n)
        var vectors: [Float] = []
        var codes: [UInt8] = []
        for i in 0..<n {
            let row = i * step
            guard let v = try? vector(row: row) else { return nil }
            vectors += v
            codes += UnsafeRawBufferPointer(rebasing: ix.codes.bytes[(row * ix.quantizer.codeSize)..<((row + 1) * ix.quantizer.codeSize)])
        }
        return vectors.withUnsafeBufferPointer { v in
            codes.withUnsafeBytes { c in
                try? ix.quantizer.meanSquaredError(vectors: v, count: n, rowStride: schema.dimension, codes: c)
            }
        }
    }

    /// Approximate k nearest rows (graph beam search guided by PQ, exact rerank from the records it
    /// reads) when the segment has an index, otherwise an exact scan. Closest first.
    /// Throws `.dimensionMismatch`, `.nonFiniteValue` / `.invalidValue` (see `VectorLimits`), `.invalidArgument` for bad knobs.
    public func search(query: [Float], options: SearchOptions = SearchOptions()) throws(StrataError) -> [SearchHit] {
        try checkOpen()
        guard let ix = annIndex, !options.exact else { return try exactSearch(query: query, k: options.k) }
        try checkBeforeRead(Segment.graphSearchSections)
        let parameters = BeamSearchParameters(k: options.k, listSize: max(options.listSize, options.k), beamWidth: options.beamWidth,
                                              readAhead: options.readAhead)
        try parameters.validate()
        let q = try prepareQuery(query)
        let found = ix.searchers.withSearcher { s in
            q.withUnsafeBufferPointer { s.search(unsafeQuery: $0.baseAddress!, parameters: parameters) }
        }
        return found.map { SearchHit(id: unsafeId(ofRow: $0.row), row: $0.row, distance: $0.distance) }
    }

    /// Like ``search(query:options:)`` and also returns the searcher's counters (hops, records read).
    public func searchWithStats(query: [Float], options: SearchOptions) throws(StrataError) -> ([SearchHit], BeamSearchStats?) {
        try checkOpen()
        guard let ix = annIndex, !options.exact else { return (try exactSearch(query: query, k: options.k), nil) }
        try checkBeforeRead(Segment.graphSearchSections)
        let parameters = BeamSearchParameters(k: options.k, listSize: max(options.listSize, options.k), beamWidth: options.beamWidth,
                                              readAhead: options.readAhead)
        try parameters.validate()
        let q = try prepareQuery(query)
        let (found, stats) = ix.searchers.withSearcher { s in
            (q.withUnsafeBufferPointer { s.search(unsafeQuery: $0.baseAddress!, parameters: parameters) }, s.lastStats)
        }
        return (found.map { SearchHit(id: unsafeId(ofRow: $0.row), row: $0.row, distance: $0.distance) }, stats)
    }
}
