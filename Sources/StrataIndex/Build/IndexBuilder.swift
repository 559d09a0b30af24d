// A segment's ANN index from its vectors: PQ trained and encoded, the Vamana graph built in memory
// (VamanaBuilder) or, when that would exceed IndexOptions.memoryBudget, out of core
// (PartitionedGraphBuilder), then written as three sections: the PQ codebook, the PQ codes and the
// graph in DiskANN's sector layout (DiskGraphLayout.writeSection), streamed sector by sector, its
// records block-aware (BlockPlacement) unless IndexOptions.blockLayout is false.
//
// The segment writer calls `build` before it writes its other sections (so bad options fail
// early) and `write` when the index sections' turn comes. Memory: the PQ codes (M B per row), plus,
// in memory, the graph being built (about 4 x 1.3R + 4R B per row and a float16 copy of the vectors,
// 2 x dimension B per row; a float32 copy too for float16 segments), or, out of core, what
// PartitionedGraphBuilder budgets; while the layout is written, a block-aware placement (13 B per
// row: the placement, its inverse, the BFS queue and a visited flag). Vectors are read from the
// caller's rows (a mapped file).
import StrataFormat

/// The index sections, in the order ``BuiltIndex/write(to:)`` produces them.
package enum IndexSection: Sendable {
    /// The serialised PQ codebook (`ProductQuantizer.serialize()`), in one piece.
    case pqCodebook
    /// M code bytes per row, row order, in one piece.
    case pqCodes
    /// The graph in sector layout, in consecutive pieces of at most a few sectors.
    case graph
}

/// Builds segment indexes (see the file comment).
package enum IndexBuilder {
    /// Trains PQ, encodes every row and builds the graph over `rows`.
    /// - Parameters:
    ///   - rows: the segment's vectors (stored normalised for `.cosine`); must stay readable until
    ///     ``BuiltIndex/write(to:)`` returns.
    ///   - metric: the segment's metric (recorded in the graph header).
    ///   - options: PQ and graph parameters, minimum rows and memory budget.
    ///   - tempPrefix: path prefix of the out-of-core build's temporary files (removed when done).
    ///   - progress: called between units of work, also by the returned index's `write`.
    ///   - shouldStop: asked after the PQ phases and between batches of the graph build; true
    ///     stops the build (nil: never).
    /// - Returns: nil when `rows` has fewer than `options.minimumRows` rows (or none).
    /// - Throws: `StrataError.Code.invalidArgument` for bad options or a budget too small;
    ///   `StrataError.Code.io` for the temporary files; ``IndexBuildCancellation/error()`` when
    ///   `shouldStop` said so.
    package static func build(rows: VectorRows, metric: DistanceMetric, options: IndexOptions, tempPrefix: String,
                              progress: (@Sendable (IndexBuildProgress) -> Void)?,
                              shouldStop: (@Sendable () -> Bool)? = nil) throws(StrataError) -> BuiltIndex? {
        let n = rows.count, dim = rows.dimension
        guard n >= max(1, options.minimumRows) else { return nil }
        let threads = options.graph.threads ?? IndexParallel.defaultThreadCount
        let m = options.pqSubspaces ?? ProductQuantizer.defaultSubspaceCount(dimension: dim)
        let plan = try PartitionedGraphBuilder.plan(count: n, dimension: dim, codeSize: m, parameters: options.graph,
                                                    memoryBudget: options.memoryBudget, rowsInPlace: rows.float32InPlace != nil)
        if !plan.isPartitioned {
            // In memory: float32 rows in place; float16 rows through a float32 copy.
            func build(_ v: UnsafeBufferPointer<Float>, _ rowStride: Int) throws(StrataError) -> BuiltIndex {
                progress?(IndexBuildProgress(phase: "pq-train", done: 0, total: n, detail: ""))
                let pq = try ProductQuantizer(training: v, count: n, dimension: dim, rowStride: rowStride,
                                              subspaceCount: options.pqSubspaces, sampleLimit: options.pqTrainingSample,
                                              iterations: options.pqIterations, seed: options.graph.seed, threads: options.graph.threads)
                let codes = try pq.encode(vectors: v, count: n, rowStride: rowStride, threads: options.graph.threads)
                try IndexBuildCancellation.check(shouldStop)
                progress?(IndexBuildProgress(phase: "graph", done: 0, total: 1, detail: "\(n) rows in memory"))
                let graph = try VamanaBuilder.build(vectors: v, count: n, dimension: dim, rowStride: rowStride,
                                                    metric: metric, parameters: options.graph, shouldStop: shouldStop)
                return BuiltIndex(codebook: pq.serialize(), codes: codes, graph: .memory(graph), rows: rows, metric: metric,
                                  blockLayout: options.blockLayout, progress: progress)
            }
            if let inPlace = rows.float32InPlace { return try build(inPlace.buffer, inPlace.rowStride) }
            let dense = rows.gather(0..<n, threads: threads)
            return try dense.withUnsafeBufferPointer { (v) throws(StrataError) in try build(v, dim) }
        }
        // Out of core: PQ trained on a sample, codes encoded row by row, partitioned graph.
        progress?(IndexBuildProgress(phase: "pq-train", done: 0, total: n, detail: ""))
        let sampleRows = PartitionedGraphBuilder.sampleRowNumbers(count: n, limit: min(n, max(options.pqTrainingSample, 256)),
                                                                  seed: options.graph.seed ^ 0x5A11)
        let sample = rows.gather(sampleRows, threads: threads)
        let pq = try sample.withUnsafeBufferPointer { (v) throws(StrataError) in
            try ProductQuantizer(training: v, count: sampleRows.count, dimension: dim, rowStride: dim,
                                 subspaceCount: options.pqSubspaces, sampleLimit: sampleRows.count,
                                 iterations: options.pqIterations, seed: options.graph.seed, threads: options.graph.threads)
        }
        let codes = encode(rows, with: pq, threads: threads, progress: progress)
        try IndexBuildCancellation.check(shouldStop)
        let merged = try PartitionedGraphBuilder.build(rows: rows, metric: metric, parameters: options.graph, plan: plan,
                                                       tempPrefix: tempPrefix, progress: progress, shouldStop: shouldStop)
        return BuiltIndex(codebook: pq.serialize(), codes: codes, graph: .merged(merged), rows: rows, metric: metric,
                          blockLayout: options.blockLayout, progress: progress)
    }

    /// PQ codes of every row, in chunks of 2^18 rows (progress after each), rows read one at a time.
    static func encode(_ rows: VectorRows, with pq: ProductQuantizer, threads: Int,
                       progress: (@Sendable (IndexBuildProgress) -> Void)?) -> [UInt8] {
        let n = rows.count, dim = rows.dimension
        var codes = [UInt8](repeating: 0, count: n * pq.codeSize)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: threads * dim)
        defer { scratch.deallocate() }
        let sp = SendablePointer(scratch)
        codes.withUnsafeMutableBufferPointer { cp in
            let out = SendablePointer(cp.baseAddress!)
            let chunk = 1 << 18
            var start = 0
            while start < n {
                let end = min(n, start + chunk)
                IndexParallel.forEach(count: end - start, threads: threads, chunk: 256) { w, k in
                    rows.copy(row: start + k, into: sp.base + w * dim)
                    pq.encode(sp.base + w * dim, into: out.base + (start + k) * pq.codeSize)
                }
                start = end
                progress?(IndexBuildProgress(phase: "pq-encode", done: end, total: n, detail: ""))
            }
        }
        return codes
    }
}

/// An index built by ``IndexBuilder/build(rows:metric:options:tempPrefix:progress:)``, ready to write.
package struct BuiltIndex {
    let codebook: [UInt8]
    let codes: [UInt8]
    let graph: BuiltGraph
    let rows: VectorRows
    let metric: DistanceMetric
    /// Place records block-aware (graph layout version 2) where two or more fit a sector.
    let blockLayout: Bool
    let progress: (@Sendable (IndexBuildProgress) -> Void)?

    /// Writes the index sections to `sink` in ``IndexSection`` order: the codebook and the codes in
    /// one call each, then the graph section in consecutive pieces (the sector layout, with each
    /// record's vector copied from the rows).
    /// - Returns: the geometry of the graph section written (its layout version among it).
    /// - Throws: what `sink` throws; `StrataError.Code.invalidArgument` if the graph does not fit
    ///   the layout's limits.
    @discardableResult
    package func write(to sink: (IndexSection, UnsafeRawBufferPointer) throws(StrataError) -> Void) throws(StrataError) -> DiskGraphLayout.Geometry {
        try codebook.withBytes { (raw) throws(StrataError) in try sink(.pqCodebook, raw) }
        try codes.withBytes { (raw) throws(StrataError) in try sink(.pqCodes, raw) }
        let n = rows.count, graph = self.graph, rows = self.rows, progress = self.progress
        func graphSink(_ chunk: UnsafeRawBufferPointer) throws(StrataError) { try sink(.graph, chunk) }
        return try graph.withNeighbors { (neighbors) throws(StrataError) in
            try DiskGraphLayout.writeSection(
                count: n, dimension: rows.dimension, elementType: rows.elementType, maxDegree: graph.maxDegree,
                metric: metric, medoid: graph.medoid, blockLayout: blockLayout, neighbors: neighbors,
                vector: { (i, scratch) in rows.copy(row: i, into: scratch); return UnsafePointer(scratch) },
                progress: { done in progress?(IndexBuildProgress(phase: "layout", done: done, total: n, detail: "")) },
                to: graphSink)
        }
    }
}

/// A graph built in memory, or merged out of core into a temporary file.
enum BuiltGraph {
    case memory(VamanaGraph)
    case merged(MergedGraph)

    var maxDegree: Int {
        switch self {
        case .memory(let g): return g.maxDegree
        case .merged(let g): return g.maxDegree
        }
    }

    var medoid: Int {
        switch self {
        case .memory(let g): return g.medoid
        case .merged(let g): return g.medoid
        }
    }

    /// Calls `body` with random access to every node's out-neighbours (valid during the call).
    func withNeighbors<R>(_ body: ((Int) -> UnsafeBufferPointer<UInt32>) throws(StrataError) -> R) throws(StrataError) -> R {
        switch self {
        case .memory(let g):
            return try g.neighbors.withUnsafeBufferPointer { (nbrs) throws(StrataError) in
                try g.degrees.withUnsafeBufferPointer { (degs) throws(StrataError) in
                    try body { i in UnsafeBufferPointer(rebasing: nbrs[(i * g.maxDegree)..<(i * g.maxDegree + Int(degs[i]))]) }
                }
            }
        case .merged(let g):
            return try body { i in g.neighbors(of: i) }
        }
    }
}
