// An in-memory navigation graph over a sample of the rows (Starling's memory graph): each search
// first walks it, with the ADC table it built anyway, and the disk search starts from the sampled
// rows nearest the query instead of from the medoid. The hops a disk search spends approaching the
// query's neighbourhood, each a record read or a cache slot, are made in RAM over PQ codes.
//
// Built at open from what is already resident: rows sampled evenly (the medoid first), their PQ
// codes decoded, a small Vamana graph over the decoded vectors (VamanaBuilder, squared L2). The
// ADC distance of a row from a squared-L2 table is its exact distance to the decoded vector, so the
// graph is built in the very space it is searched in (cosine codes are ranked with L2 tables too,
// ProductQuantizer.rankingMetric; for inner product the graph is the L2 graph, as the disk graph is).
//
// Memory: 4 (R + 1) + 1 bytes per sampled row (neighbour lists, the row ids, a degree byte), never
// above the budget given to `build`; the decoded copies used while building (at most
// `buildBytesLimit`, plus the builder's adjacency) are freed at the end of it.
import StrataFormat
import CStrataKernels

/// A small graph over sampled rows held in anonymous memory, searched by PQ distance to find where
/// a ``BeamSearcher`` should start. Immutable after `init`, so one is shared by all searchers of a segment.
// @unchecked Sendable: the arrays are written only in `init` and freed in `deinit`; searches only read them.
package final class NavigationGraph: @unchecked Sendable {
    /// Sampled rows (graph nodes).
    package let count: Int
    /// Out-degree bound of the navigation graph.
    package let maxDegree: Int
    /// Bytes of anonymous memory held, at most the budget given to `init`.
    package let residentBytes: Int
    /// The node searches start from (the segment's medoid, always sampled).
    let entry: Int
    /// Row of each node.
    let rows: UnsafeMutablePointer<UInt32>
    /// `count x maxDegree` neighbour nodes.
    let neighbors: UnsafeMutablePointer<UInt32>
    let degrees: UnsafeMutablePointer<UInt8>

    /// Out-degree of the navigation graph: a small graph needs few edges to stay navigable.
    package static let degree = 24
    /// Bytes per sampled row.
    package static let bytesPerNode = 4 * (degree + 1) + 1
    /// Bytes of vectors the build may hold at once, so that an open under a tight memory limit
    /// is not killed by it whatever the budget: the decoded float32 rows and VamanaBuilder's float16
    /// copy (rows padded to 32 values) together. At 384 dimensions this caps the sample at 5,461
    /// rows, at 96 at 21,845.
    package static let buildBytesLimit = 12 << 20

    /// Rows a budget of `budgetBytes` samples from `rowCount` rows of `dimension` floats (0: none;
    /// fewer than 256 rows are not worth a graph).
    package static func sampleCount(rowCount: Int, dimension: Int, budgetBytes: Int) -> Int {
        guard rowCount > 0, dimension > 0, dimension <= 1 << 20, budgetBytes > 0 else { return 0 }
        let buildBytesPerRow = 4 * dimension + 2 * ((dimension + 31) & ~31)
        let s = min(rowCount / 2, budgetBytes / bytesPerNode, buildBytesLimit / buildBytesPerRow)
        return s >= 256 ? s : 0
    }

    /// Samples rows evenly (the medoid first), decodes their codes and builds the graph over them.
    /// - Parameters:
    ///   - quantizer: the codebook of `codes`.
    ///   - codes: `rowCount x quantizer.codeSize` bytes.
    ///   - medoid: the disk graph's entry point (< rowCount), which the sample always holds.
    ///   - budgetBytes: the most anonymous memory the graph may hold (see ``sampleCount(rowCount:dimension:budgetBytes:)``).
    ///   - threads: build threads (the graph does not depend on them).
    /// - Returns: nil when the budget holds no useful sample.
    package static func build(quantizer: ProductQuantizer, codes: UnsafeRawBufferPointer, rowCount: Int, medoid: Int,
                              budgetBytes: Int, threads: Int) -> NavigationGraph? {
        let dim = quantizer.dimension, m = quantizer.codeSize
        let s = sampleCount(rowCount: rowCount, dimension: dim, budgetBytes: budgetBytes)
        guard s > 0, m > 0, medoid >= 0, medoid < rowCount, codes.count / m >= rowCount else { return nil }
        // Evenly spaced rows; the one nearest the medoid's place is replaced by the medoid.
        var sample = (0..<s).map { UInt32($0 * rowCount / s) }
        let at = min(s - 1, medoid * s / rowCount)
        if !sample.contains(UInt32(medoid)) { sample[at] = UInt32(medoid) }
        let entry = sample.firstIndex(of: UInt32(medoid))!
        var decoded = [Float](repeating: 0, count: s * dim)
        let base = codes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        decoded.withUnsafeMutableBufferPointer { out in
            for (i, row) in sample.enumerated() {
                let v = quantizer.decode(base + Int(row) * m)
                for j in 0..<dim { out[i * dim + j] = v[j] }
            }
        }
        var parameters = VamanaParameters(maxDegree: degree, buildListSize: 2 * degree)
        parameters.threads = threads
        let graph: VamanaGraph
        do {
            graph = try decoded.withUnsafeBufferPointer { (v) throws(StrataError) in
                try VamanaBuilder.build(vectors: v, count: s, dimension: dim, rowStride: dim, metric: .l2, parameters: parameters)
            }
        } catch { return nil }
        return NavigationGraph(graph: graph, rows: sample, entry: entry)
    }

    private init(graph: VamanaGraph, rows sample: [UInt32], entry: Int) {
        count = graph.count
        maxDegree = graph.maxDegree
        self.entry = entry
        rows = .allocate(capacity: count)
        rows.initialize(from: sample, count: count)
        neighbors = .allocate(capacity: count * maxDegree)
        neighbors.initialize(from: graph.neighbors, count: count * maxDegree)
        degrees = .allocate(capacity: count)
        for i in 0..<count { degrees[i] = UInt8(min(Int(graph.degrees[i]), maxDegree, 255)) }
        residentBytes = count * (4 * maxDegree + 4 + 1)
    }

    deinit {
        rows.deallocate()
        neighbors.deallocate()
        degrees.deallocate()
    }
}

/// A searcher's scratch for walking a ``NavigationGraph`` (one per ``BeamSearcher``).
struct NavigationScratch {
    var visited = VisitedTable(capacity: 1024)
    /// Candidate list: nodes, PQ distances, expanded flags; sorted by distance.
    var nodes: UnsafeMutablePointer<UInt32>
    var dists: UnsafeMutablePointer<Float>
    var expanded: UnsafeMutablePointer<Bool>
    var capacity: Int
    /// A node's unvisited neighbours, their rows and PQ distances.
    let fresh: UnsafeMutablePointer<UInt32>
    let freshRows: UnsafeMutablePointer<UInt32>
    let freshDist: UnsafeMutablePointer<Float>

    init() {
        capacity = 64
        nodes = .allocate(capacity: capacity)
        dists = .allocate(capacity: capacity)
        expanded = .allocate(capacity: capacity)
        fresh = .allocate(capacity: NavigationGraph.degree)
        freshRows = .allocate(capacity: NavigationGraph.degree)
        freshDist = .allocate(capacity: NavigationGraph.degree)
    }

    func deallocate() {
        visited.deallocate()
        nodes.deallocate(); dists.deallocate(); expanded.deallocate()
        fresh.deallocate(); freshRows.deallocate(); freshDist.deallocate()
    }

    mutating func ensure(_ size: Int) {
        guard size > capacity else { return }
        nodes.deallocate(); dists.deallocate(); expanded.deallocate()
        capacity = size
        nodes = .allocate(capacity: capacity)
        dists = .allocate(capacity: capacity)
        expanded = .allocate(capacity: capacity)
    }
}

extension NavigationGraph {
    /// List size of the walk: the disk search is seeded with up to this many rows.
    static let listSize = 16

    /// Walks the graph by ADC distance from `table` (best first, one node at a time) and leaves the
    /// `listSize` nearest sampled rows found in `s.nodes` (as rows) / `s.dists`, nearest first;
    /// returns how many. Unsafe: `table` and `codes` must belong to the graph's quantiser, with
    /// `codeSize` bytes per row.
    func nearest(table: UnsafePointer<Float>, codes: UnsafePointer<UInt8>, codeSize m: Int, listSize l: Int,
                 _ s: inout NavigationScratch) -> Int {
        s.ensure(l + 1)
        s.visited.clear()
        let nodes = s.nodes, dists = s.dists, done = s.expanded
        var start = rows[entry]
        ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: m, ids: &start, count: 1, into: dists)
        nodes[0] = UInt32(entry)
        done[0] = false
        _ = s.visited.insert(UInt32(entry))
        var size = 1, cursor = 0
        while cursor < size {
            done[cursor] = true
            let v = Int(nodes[cursor])
            let d = Int(degrees[v])
            let nb = neighbors + v * maxDegree
            s.visited.reserve(d)
            var freshCount = 0
            for j in 0..<d {
                let u = nb[j]
                if Int(u) >= count || !s.visited.insert(u) { continue }
                s.fresh[freshCount] = u
                s.freshRows[freshCount] = rows[Int(u)]
                freshCount += 1
            }
            ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: m, ids: s.freshRows, count: freshCount, into: s.freshDist)
            var next = cursor + 1
            for j in 0..<freshCount {
                let dist = s.freshDist[j]
                if size == l && dist >= dists[size - 1] { continue }
                var pos = size < l ? size : l - 1
                while pos > 0 && dists[pos - 1] > dist {
                    nodes[pos] = nodes[pos - 1]; dists[pos] = dists[pos - 1]; done[pos] = done[pos - 1]
                    pos -= 1
                }
                nodes[pos] = s.fresh[j]; dists[pos] = dist; done[pos] = false
                if size < l { size += 1 }
                if pos < next { next = pos }
            }
            cursor = next
            while cursor < size && done[cursor] { cursor += 1 }
        }
        for i in 0..<size { nodes[i] = rows[Int(nodes[i])] }
        return size
    }
}
