// Where each node's record goes in the graph section's 4 KB sectors when the layout is block-aware
// (DiskGraphLayout, layout version 2): Starling's block shuffling, in its greedy form (block
// neighbour padding). Nodes are taken in BFS order from the entry point; a node not yet placed
// opens a block and fills it with its own out-neighbours not yet placed, closest first (pruned
// lists keep the order RobustPrune admitted them in, nearest first), then with the neighbours of
// those; only a block still not full takes the next node of the BFS order. A search that reads a
// node's sector then also holds records of nodes it is likely to expand next
// (BeamSearcher+Direct.swift expands them without another read).
//
// Every block but the last is full (the layout's 4-byte node id per record can still lower the
// records per sector, DiskGraphLayout.swift). Memory: two u32 per node (the placement and its
// inverse), the BFS queue and a visited flag.

/// A permutation of nodes to record slots (slot s lies in sector s / P at position s % P).
package struct BlockPlacement: Sendable, Equatable {
    /// `slotOf[i]`: the record slot of node i.
    package var slotOf: [UInt32]
    /// `nodeAt[s]`: the node whose record is in slot s (every slot below the node count is used).
    package var nodeAt: [UInt32]

    /// Computes the placement of `count` nodes, `nodesPerSector` to a sector.
    /// - Parameters:
    ///   - count: nodes (< 2^32 - 1).
    ///   - nodesPerSector: records per sector P (>= 1; 1 gives a BFS order with nothing shared).
    ///   - entry: the entry point, placed first.
    ///   - neighbors: node i's out-neighbours, nearest first; ids >= count are ignored.
    /// - Complexity: O(count x R) time.
    package static func compute(count: Int, nodesPerSector: Int, entry: Int,
                                neighbors: (Int) -> UnsafeBufferPointer<UInt32>) -> BlockPlacement {
        let n = count, p = max(1, nodesPerSector)
        let unplaced = UInt32.max
        var slotOf = [UInt32](repeating: unplaced, count: n)
        var nodeAt = [UInt32]()
        nodeAt.reserveCapacity(n)
        guard n > 0 else { return BlockPlacement(slotOf: [], nodeAt: []) }
        func place(_ v: Int) {
            slotOf[v] = UInt32(nodeAt.count)
            nodeAt.append(UInt32(v))
        }
        // Fills the open block (nodeAt.count % p != 0) from the neighbourhood of `seed`, breadth
        // first over at most two hops, nearest first within a list.
        func fill(from seed: Int) {
            var frontier = [seed]
            var hop = 0
            while nodeAt.count % p != 0 && hop < 2 && !frontier.isEmpty {
                var next: [Int] = []
                for v in frontier {
                    for u32 in neighbors(v) {
                        let u = Int(u32)
                        guard u < n else { continue }
                        if slotOf[u] == unplaced {
                            place(u)
                            if nodeAt.count % p == 0 { return }
                        }
                        next.append(u)
                    }
                }
                frontier = next
                hop += 1
            }
        }
        // BFS from the entry point decides who opens blocks; unreachable nodes follow in row order.
        var seen = [Bool](repeating: false, count: n)
        var queue: [UInt32] = []
        queue.reserveCapacity(n)
        var head = 0
        var sweep = 0
        let first = min(max(0, entry), n - 1)
        seen[first] = true
        queue.append(UInt32(first))
        while nodeAt.count < n {
            if head == queue.count {
                while sweep < n && seen[sweep] { sweep += 1 }
                if sweep == n { break }
                seen[sweep] = true
                queue.append(UInt32(sweep))
            }
            let v = Int(queue[head])
            head += 1
            for u32 in neighbors(v) where Int(u32) < n && !seen[Int(u32)] {
                seen[Int(u32)] = true
                queue.append(u32)
            }
            if slotOf[v] != unplaced { continue }
            place(v)
            fill(from: v)
        }
        return BlockPlacement(slotOf: slotOf, nodeAt: nodeAt)
    }
}
