// How well the graph section's sector placement matches its edges: the figures a block-aware layout
// (Starling: put a node's neighbours in its own 4 KB sector, use every node a block read brings)
// would be judged by against today's row-order packing. Read-only; one pass over the records plus
// an optional BFS from the entry point.

/// Sector-locality figures of a graph section, from `DiskGraphView.locality(bfs:)`.
///
/// A node's "sector" is the 4 KB sector holding its record (when several records share one), or
/// the group of sectors holding it alone (when a record needs several: then no two nodes share one).
public struct GraphLocality: Sendable, Equatable {
    /// Number of nodes.
    public var count: Int
    /// Node sectors of the section (excluding the header sector).
    public var sectorCount: Int
    /// Records per 4 KB sector (0 when one record spans several sectors).
    public var nodesPerSector: Int
    /// Graph layout version: 1 row order, 2 block-aware (records placed by a placement table).
    public var layoutVersion: Int
    /// Unused bytes at the end of a full sector (P > 0), or of a record's sector group (P = 0).
    public var paddingBytesPerSector: Int
    /// Unused bytes over all node sectors, including the empty record slots of the last sector (and
    /// the zero tail of a block layout's placement table).
    public var paddingBytesTotal: Int
    /// Usable directed edges (degree clamped to R; ids out of range and self loops skipped).
    public var edgeCount: Int
    /// Neighbour ids skipped because they are out of range or point to the node itself (a damaged
    /// section; `DiskGraphView.validate(maxReported:)` describes them).
    public var skippedNeighborCount: Int
    /// Edges u->v whose target v lies in u's own sector.
    public var sameSectorEdgeCount: Int
    /// `sameSectorEdgeCount / edgeCount` (0 without edges).
    public var sameSectorShare: Double
    /// The share expected if records were placed at random: (P - 1) / (n - 1) (0 when P <= 1 or n <= 1).
    public var randomSameSectorShare: Double
    /// Mean over nodes with at least one usable neighbour of the share of its neighbours that lie in
    /// its own sector: what the read that fetches its neighbour list brings "for free".
    public var meanFreeNeighborShare: Double
    /// Mean over all nodes of the number of distinct sectors holding its out-neighbours (own sector
    /// included when a neighbour is there): the most sectors that expanding the node reads.
    public var meanNeighborSectors: Double
    /// Median of that number over all nodes.
    public var p50NeighborSectors: Int
    /// 99th percentile of that number over all nodes.
    public var p99NeighborSectors: Int
    /// `edgeCount / (sum over nodes of distinct neighbour sectors)`: neighbours per sector read.
    public var neighborsPerSectorRead: Double
    /// BFS from the entry point along usable out-edges; nil when not requested or without nodes.
    public var bfs: BFSLevels?

    /// Summary of a breadth-first search from the entry point: what a DiskANN-style static cache of
    /// the levels around the medoid would hold.
    public struct BFSLevels: Sendable, Equatable {
        /// Depth of the deepest reachable node (the entry point is depth 0).
        public var maxDepth: Int
        /// `withinDepth[k]` = nodes at depth <= k, for k = 0...3 (the entry point alone at k = 0).
        public var withinDepth: [Int]
        /// Nodes reachable from the entry point (itself included).
        public var reachable: Int
    }
}

extension DiskGraphView {
    /// Sector index of node `i`'s record (its sector group when P = 0).
    @inline(__always)
    private func sectorOf(_ i: Int) -> Int {
        let s = slot(of: i)
        return geometry.nodesPerSector > 0 ? s / geometry.nodesPerSector : s
    }

    /// Computes ``GraphLocality`` in one pass over the records (and one BFS when `bfs`).
    ///
    /// Degrees are clamped to R and neighbour ids are screened with ``usableNeighbor(_:of:)``, the
    /// validator's own test, so a damaged section costs figures, never a trap or a hang.
    /// - Parameter bfs: also run a BFS from the entry point (memory: one UInt32 per node for the
    ///   queue plus one bit per node, the only per-node arrays).
    /// - Complexity: O(count * R) time; O(R) memory for the pass, plus O(count) for the BFS.
    package func locality(bfs: Bool = true) -> GraphLocality {
        let g = geometry, n = count, r = maxDegree
        let s = DiskGraphLayout.sectorSize
        let perSectorPadding: Int
        let totalPadding: Int
        if g.nodesPerSector > 0 {
            perSectorPadding = s - g.nodesPerSector * g.recordSize
            totalPadding = g.sectorCount * s - n * g.recordSize + (g.blockLayout ? g.totalBytes - g.placementOffset - 4 * n : 0)
        } else {
            perSectorPadding = g.sectorsPerNode * s - g.recordSize
            totalPadding = n * perSectorPadding
        }
        var edges = 0, skipped = 0, same = 0, totalSectors = 0
        var freeShareSum = 0.0, nodesWithEdges = 0
        // Distinct neighbour sectors per node is at most R: a histogram of R + 1 counters gives the
        // percentiles without a per-node array.
        var sectorsHistogram = [Int](repeating: 0, count: r + 1)
        var scratch = [Int]()
        scratch.reserveCapacity(r)
        for i in 0..<n {
            let own = sectorOf(i)
            let d = clampedDegree(of: i)
            scratch.removeAll(keepingCapacity: true)
            var sameHere = 0
            for j in 0..<d {
                guard let v = usableNeighbor(neighborID(of: i, slot: j), of: i) else { skipped += 1; continue }
                let sv = sectorOf(v)
                if sv == own { sameHere += 1 }
                scratch.append(sv)
            }
            let usable = scratch.count
            var distinct = 0
            if usable > 0 {
                scratch.sort()
                distinct = 1
                for k in 1..<usable where scratch[k] != scratch[k - 1] { distinct += 1 }
                nodesWithEdges += 1
                freeShareSum += Double(sameHere) / Double(usable)
            }
            edges += usable
            same += sameHere
            totalSectors += distinct
            sectorsHistogram[distinct] += 1
        }
        func percentile(_ q: Double) -> Int {
            guard n > 0 else { return 0 }
            // Smallest value v with at least ceil(q * n) nodes at or below it.
            let rank = max(1, Int((q * Double(n)).rounded(.up)))
            var seen = 0
            for (v, c) in sectorsHistogram.enumerated() {
                seen += c
                if seen >= rank { return v }
            }
            return r
        }
        let p = g.nodesPerSector
        return GraphLocality(
            count: n, sectorCount: g.sectorCount, nodesPerSector: p, layoutVersion: Int(g.version),
            paddingBytesPerSector: perSectorPadding, paddingBytesTotal: totalPadding,
            edgeCount: edges, skippedNeighborCount: skipped, sameSectorEdgeCount: same,
            sameSectorShare: edges == 0 ? 0 : Double(same) / Double(edges),
            randomSameSectorShare: (p <= 1 || n <= 1) ? 0 : Double(min(p, n) - 1) / Double(n - 1),
            meanFreeNeighborShare: nodesWithEdges == 0 ? 0 : freeShareSum / Double(nodesWithEdges),
            meanNeighborSectors: n == 0 ? 0 : Double(totalSectors) / Double(n),
            p50NeighborSectors: percentile(0.5), p99NeighborSectors: percentile(0.99),
            neighborsPerSectorRead: totalSectors == 0 ? 0 : Double(edges) / Double(totalSectors),
            bfs: bfs && n > 0 ? bfsLevels() : nil)
    }

    /// BFS from the medoid, tracking level boundaries in the queue itself (no depth array).
    private func bfsLevels() -> GraphLocality.BFSLevels {
        let n = count
        // The only per-node memory of the locality report: a visited bitset and the queue of ids.
        var seen = [UInt64](repeating: 0, count: (n + 63) / 64)
        var queue = [UInt32]()
        queue.reserveCapacity(n)
        seen[medoid >> 6] |= 1 << UInt64(medoid & 63)
        queue.append(UInt32(medoid))
        var within = [1, 1, 1, 1]
        var depth = 0, head = 0
        while head < queue.count {
            let levelEnd = queue.count
            while head < levelEnd {
                let u = Int(queue[head]); head += 1
                for j in 0..<clampedDegree(of: u) {
                    guard let v = usableNeighbor(neighborID(of: u, slot: j), of: u) else { continue }
                    if seen[v >> 6] & (1 << UInt64(v & 63)) == 0 {
                        seen[v >> 6] |= 1 << UInt64(v & 63)
                        queue.append(UInt32(v))
                    }
                }
            }
            if queue.count > levelEnd {
                depth += 1
                if depth <= 3 { for k in depth...3 { within[k] = queue.count } }
            }
        }
        return GraphLocality.BFSLevels(maxDepth: depth, withinDepth: within, reachable: queue.count)
    }
}
