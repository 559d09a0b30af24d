// RobustPrune (DiskANN, Subramanya et al. 2019, algorithm 2), the one implementation that both
// graph builders use: the in-memory Vamana build (search pools, reverse-edge overflow, the final
// prune) and the out-of-core merge (united partition lists longer than R).
import CStrataKernels

/// The candidate list of one prune, in caller-owned scratch of at least `count` entries each.
struct PruneCandidates {
    /// Candidate ids; sorted in place by (distance, id).
    var ids: UnsafeMutablePointer<UInt32>
    /// Each candidate's squared L2 distance to the node being pruned; sorted with the ids.
    var distances: UnsafeMutablePointer<Float>
    /// Per-candidate flags, overwritten by the prune.
    var removed: UnsafeMutablePointer<Bool>
    /// Where each candidate's row is in the prune's rows when that is not its id (the merge gathers
    /// its candidates densely, in arrival order); sorted with the ids. nil: row = id.
    var rowKeys: UnsafeMutablePointer<UInt32>?
    /// Number of candidates.
    var count: Int

    init(ids: UnsafeMutablePointer<UInt32>, distances: UnsafeMutablePointer<Float>, removed: UnsafeMutablePointer<Bool>,
                 rowKeys: UnsafeMutablePointer<UInt32>? = nil, count: Int) {
        self.ids = ids
        self.distances = distances
        self.removed = removed
        self.rowKeys = rowKeys
        self.count = count
    }
}

enum RobustPrune {
    /// Prunes `candidates` around `node` with `alpha`, writing at most `maxDegree` kept ids to `out`
    /// (which must not overlap the candidate arrays); returns how many.
    ///
    /// The candidates are sorted by (distance, id); `node` itself and repeated ids are dropped. Then,
    /// closest first, a candidate is kept unless an already kept one `p` is alpha times closer to
    /// it: `alpha * d(p, c) <= d(node, c)`. `d(p, c)` is `rows.squaredDistance` from `p`'s row as
    /// float32 (widened into `scratch`, `dimension` floats, when `rows` are float16) to `c`'s row,
    /// so a float16 build prunes in the same asymmetric precision it searches with.
    @inline(__always)
    static func prune<Rows: BuildRows>(_ candidates: PruneCandidates, node: Int, alpha: Float, maxDegree r: Int,
                                               rows: Rows, scratch: UnsafeMutablePointer<Float>,
                                               into out: UnsafeMutablePointer<UInt32>) -> Int {
        let ids = candidates.ids, dists = candidates.distances, removed = candidates.removed
        let keys = candidates.rowKeys
        let n = candidates.count
        sortByDistance(ids: ids, distances: dists, rowKeys: keys, count: n)
        for i in 0..<n { removed[i] = Int(ids[i]) == node || (i > 0 && ids[i] == ids[i - 1]) }
        @inline(__always) func row(_ i: Int) -> Int { Int(keys?[i] ?? ids[i]) }
        var kept = 0
        for i in 0..<n {
            if removed[i] { continue }
            out[kept] = ids[i]
            kept += 1
            if kept == r { break }
            let pivot = rows.float32Row(row(i), scratch: scratch)
            var j = i + 1
            while j < n {
                if !removed[j] {
                    if j + 1 < n && !removed[j + 1] { strata_prefetch(rows.rowAddress(row(j + 1))) }
                    let d = rows.squaredDistance(pivot, row(j))
                    if alpha * d <= dists[j] { removed[j] = true }
                }
                j += 1
            }
        }
        return kept
    }

    /// Insertion sort by (distance, id), carrying `rowKeys` along when given: candidate lists are
    /// short (about L, or overlap x R in the merge) and search pools arrive nearly sorted.
    @inline(__always)
    static func sortByDistance(ids: UnsafeMutablePointer<UInt32>, distances dists: UnsafeMutablePointer<Float>,
                               rowKeys keys: UnsafeMutablePointer<UInt32>?, count n: Int) {
        if n < 2 { return }
        for i in 1..<n {
            let id = ids[i], d = dists[i], key = keys?[i]
            var j = i
            while j > 0 && (dists[j - 1] > d || (dists[j - 1] == d && ids[j - 1] > id)) {
                ids[j] = ids[j - 1]; dists[j] = dists[j - 1]
                if let keys { keys[j] = keys[j - 1] }
                j -= 1
            }
            ids[j] = id; dists[j] = d
            if let keys, let key { keys[j] = key }
        }
    }
}
