// Graph invariants checked over a whole graph section, for `strata verify` and `strata dump`.
import StrataFormat

/// Result of `DiskGraphView.validate(maxReported:)`.
public struct DiskGraphReport: Sendable, Equatable {
    /// Number of nodes.
    public var count: Int
    /// Maximum degree R.
    public var maxDegree: Int
    /// Entry point.
    public var medoid: Int
    /// `degreeHistogram[d]` = nodes with out-degree d, for d in 0...R.
    public var degreeHistogram: [Int]
    /// Total directed edges.
    public var edgeCount: Int
    /// Nodes not reachable from the medoid along out-edges.
    public var unreachableCount: Int
    /// Problems found (degree > R, id out of range, self loop, non-zero padding), at most `maxReported`.
    public var problems: [String]
    /// Total number of problems (may exceed `problems.count`).
    public var problemCount: Int
    /// True when there are no problems (unreachable nodes are reported separately, not a problem).
    public var isValid: Bool { problemCount == 0 }
}

extension DiskGraphView {
    /// Node `i`'s stored degree clamped to R (`i < count`).
    @inline(__always)
    package func clampedDegree(of i: Int) -> Int {
        min(maxDegree, Int(UInt32(littleEndian: unsafeRecord(i).loadUnaligned(fromByteOffset: geometry.vectorBytes, as: UInt32.self))))
    }

    /// The id stored in neighbour slot `j < R` of node `i < count`, unchecked.
    @inline(__always)
    package func neighborID(of i: Int, slot j: Int) -> UInt32 {
        UInt32(littleEndian: unsafeRecord(i).loadUnaligned(fromByteOffset: geometry.vectorBytes + 4 + 4 * j, as: UInt32.self))
    }

    /// The validator's test of a stored neighbour id of node `i`: the id as an index when it is
    /// below the node count and not `i` itself, else nil (a problem ``validate(maxReported:)`` reports).
    @inline(__always)
    package func usableNeighbor(_ id: UInt32, of i: Int) -> Int? {
        let v = Int(id)
        return v < count && v != i ? v : nil
    }

    /// Walks every record: degree <= R, ids < count, no self loops, zero padding; in a block layout,
    /// that the placement table is a permutation and each record names its node; then a BFS from
    /// the medoid counts unreachable nodes; and builds the degree histogram.
    /// - Parameter maxReported: how many problem descriptions to keep.
    /// - Complexity: O(count * R) time, O(count) memory.
    package func validate(maxReported: Int = 20) -> DiskGraphReport {
        let n = count, r = maxDegree
        var hist = [Int](repeating: 0, count: r + 1)
        var problems: [String] = []
        var problemCount = 0
        var edges = 0
        func report(_ s: String) {
            problemCount += 1
            if problems.count < maxReported { problems.append(s) }
        }
        for i in 0..<n {
            let stored = storedDegree(of: i) ?? 0
            if stored > r { report("node \(i): degree \(stored) > R \(r)") }
            let d = min(stored, r)
            hist[d] += 1
            edges += d
            for j in 0..<r {
                let id = neighborID(of: i, slot: j)
                if j < d {
                    if usableNeighbor(id, of: i) == nil { report(Int(id) == i ? "node \(i): self loop" : "node \(i): neighbour \(id) out of range") }
                } else if id != 0 {
                    report("node \(i): non-zero unused neighbour slot \(j)")
                }
            }
        }
        if let placement {
            // Block layout: the table is a permutation of the slots in use, each record names its
            // node, and the slots past the last node are zero.
            var taken = [Bool](repeating: false, count: n)
            for i in 0..<n {
                let raw = Int(UInt32(littleEndian: placement.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                if raw >= n { report("node \(i): placement slot \(raw) out of range"); continue }
                if taken[raw] { report("node \(i): placement slot \(raw) taken twice"); continue }
                taken[raw] = true
                if let stored = storedNode(of: unsafeRecord(i)), stored != i { report("node \(i): its record in slot \(raw) names node \(stored)") }
            }
            let base = bytes.baseAddress!
            for s in n..<geometry.slotCount {
                let rec = base + geometry.slotOffset(s)
                if (0..<geometry.recordSize).contains(where: { rec.load(fromByteOffset: $0, as: UInt8.self) != 0 }) {
                    report("empty record slot \(s) is not zero")
                }
            }
            for k in (geometry.placementOffset + 4 * n)..<geometry.totalBytes where bytes[k] != 0 {
                report("placement table padding is not zero at section offset \(k)")
                break
            }
        }
        var unreachable = 0
        if n > 0 {
            var seen = [Bool](repeating: false, count: n)
            var queue = [Int]()
            queue.reserveCapacity(n)
            seen[medoid] = true
            queue.append(medoid)
            var head = 0
            while head < queue.count {
                let v = queue[head]; head += 1
                for j in 0..<clampedDegree(of: v) {
                    if let id = usableNeighbor(neighborID(of: v, slot: j), of: v), !seen[id] { seen[id] = true; queue.append(id) }
                }
            }
            unreachable = n - queue.count
        }
        return DiskGraphReport(count: n, maxDegree: r, medoid: medoid, degreeHistogram: hist, edgeCount: edges,
                               unreachableCount: unreachable, problems: problems, problemCount: problemCount)
    }
}
