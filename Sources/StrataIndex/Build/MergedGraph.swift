// The out-of-core build's merged graph: fixed-size adjacency records in a temporary file, made
// reachable from the medoid in place (PartitionedGraphBuilder.swift, step 4).
import StrataFormat

/// A merged graph in a temporary file of fixed-size records (degree u32, R ids u32), row order.
/// The file is removed when this object is released.
///
/// Unchecked `Sendable`: written by one thread while the merge builds it, then only read (by the parallel
/// layout writer) through its read-only mapping.
package final class MergedGraph: @unchecked Sendable {
    let path: String
    package let count: Int
    package let maxDegree: Int
    package private(set) var medoid: Int
    private var map: MappedFile
    /// Edges ``connect()`` added to make every node reachable.
    private(set) var repairedEdges = 0

    init(path: String, count: Int, maxDegree: Int, medoid: Int) throws(StrataError) {
        self.path = path
        self.count = count
        self.maxDegree = maxDegree
        self.medoid = medoid
        map = try MappedFile(path: path)
        if map.bytes.count != count * (1 + maxDegree) * 4 {
            throw StrataError(.io, "merged graph is \(map.bytes.count) bytes, expected \(count * (1 + maxDegree) * 4)", path: path)
        }
    }

    deinit { FileSystem.removeIfPresent(path) }

    @inline(__always) private func record(_ i: Int) -> UnsafePointer<UInt32> {
        map.bytes.baseAddress!.assumingMemoryBound(to: UInt32.self) + i * (1 + maxDegree)
    }

    /// Node `i`'s out-neighbours (in place in the mapping; ids were checked < count at merge).
    package func neighbors(of i: Int) -> UnsafeBufferPointer<UInt32> {
        let rec = record(i)
        return UnsafeBufferPointer(start: rec + 1, count: min(maxDegree, Int(UInt32(littleEndian: rec[0]))))
    }

    /// Makes every node reachable from the medoid: BFS; each unreachable node u (in row order) gets
    /// an in-edge from its first reachable out-neighbour (or the medoid), appended when that node has
    /// room, else replacing its last edge; sweeps repeat until nothing is unreachable (a replaced edge
    /// can orphan a node). Patches go to the file with pwrite, which the shared mapping sees.
    func connect() throws(StrataError) {
        let n = count, r = maxDegree
        if n <= 1 { return }
        let file = try SystemFile.openForWriting(path)
        defer { file.close() }
        var seen = [Bool](repeating: false, count: n)
        var queue = [UInt32]()
        queue.reserveCapacity(n)
        func mark(from startNode: Int) {
            if seen[startNode] { return }
            seen[startNode] = true
            queue.removeAll(keepingCapacity: true)
            queue.append(UInt32(startNode))
            var head = 0
            while head < queue.count {
                let v = Int(queue[head]); head += 1
                for id in neighbors(of: v) where !seen[Int(id)] {
                    seen[Int(id)] = true
                    queue.append(id)
                }
            }
        }
        for _ in 0..<8 {
            for i in 0..<n { seen[i] = false }
            mark(from: medoid)
            var orphaned = false
            var changed = false
            for u in 0..<n where !seen[u] {
                var from = medoid
                for v in neighbors(of: u) where seen[Int(v)] { from = Int(v); break }
                var list = Array(neighbors(of: from))
                if list.count < r {
                    list.append(UInt32(u))
                } else {
                    orphaned = true
                    list[r - 1] = UInt32(u)
                }
                var rec = [UInt32](repeating: 0, count: 1 + r)
                rec[0] = UInt32(list.count).littleEndian
                for (j, id) in list.enumerated() { rec[1 + j] = id.littleEndian }
                try rec.withBytes { (raw) throws(StrataError) in try file.write(raw, atAbsoluteOffset: UInt64(from * (1 + r) * 4)) }
                repairedEdges += 1
                changed = true
                mark(from: u)
            }
            if !orphaned || !changed { return }
        }
    }
}
