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
    /// Per-candidate occlusion factors (scratch), overwritten by the prune.
    var occlusion: UnsafeMutablePointer<Float>
    /// Where each candidate's row is in the prune's rows when that is not its id (the merge gathers
    /// its candidates densely, in arrival order); sorted with the ids. nil: row = id.
    var rowKeys: UnsafeMutablePointer<UInt32>?
    /// Number of candidates.
    var count: Int

    init(ids: UnsafeMutablePointer<UInt32>, distances: UnsafeMutablePointer<Float>, occlusion: UnsafeMutablePointer<Float>,
                 rowKeys: UnsafeMutablePointer<UInt32>? = nil, count: Int) {
        self.ids = ids
        self.distances = distances
        self.occlusion = occlusion
        self.rowKeys = rowKeys
        self.count = count
    }
}

enum RobustPrune {
    /// Prunes `candidates` around `node` with `alpha`, writing at most `maxDegree` kept ids to `out`
    /// (which must not overlap the candidate arrays); returns how many.
    ///
    /// The candidates are sorted by (distance, id); `node` itself and repeated ids are dropped. Then,
    /// closest first, a candidate is kept unless an already kept one `p` is `a` times closer to it:
    /// `a * d(p, c) < d(node, c)`, with `a` = 1 in a first pass, then x1.2 per pass up to `alpha`
    /// while fewer than `maxDegree` are kept (DiskANN's progressive occlusion). `d(p, c)` is `rows.squaredDistance` from `p`'s row as
    /// float32 (widened into `scratch`, `dimension` floats, when `rows` are float16) to `c`'s row,
    /// so a float16 build prunes in the same asymmetric precision it searches with.
    /// With `saturate` (and `alpha` > 1), slots the occlusion rule leaves empty are then filled with
    /// the closest candidates not yet kept, up to `maxDegree` (DiskANN's saturated graph: a record
    /// holds R slots whether they are used or not, so the extra edges cost no read).
    @inline(__always)
    static func prune<Rows: BuildRows>(_ candidates: PruneCandidates, node: Int, alpha: Float, maxDegree r: Int,
                                               saturate: Bool = false,
                                               rows: Rows, scratch: UnsafeMutablePointer<Float>,
                                               into out: UnsafeMutablePointer<UInt32>) -> Int {
        let ids = candidates.ids, dists = candidates.distances, occlusion = candidates.occlusion
        let keys = candidates.rowKeys
        let n = candidates.count
        sortByDistance(ids: ids, distances: dists, rowKeys: keys, count: n)
        // occlusion[j]: the largest d(node, j) / d(p, j) over the neighbours p chosen so far
        // (squared distances, as alpha is applied); +infinity marks the node itself, duplicates and
        // candidates already chosen.
        for i in 0..<n { occlusion[i] = Int(ids[i]) == node || (i > 0 && ids[i] == ids[i - 1]) ? .infinity : 0 }
        @inline(__always) func row(_ i: Int) -> Int { Int(keys?[i] ?? ids[i]) }
        var kept = 0
        // DiskANN's progressive occlusion: a first pass at alpha 1 picks the most diverse
        // neighbours, later passes (alpha x 1.2 each, up to `alpha`) fill the remaining slots with
        // candidates that only a larger alpha admits, so that diverse edges come first and are
        // never crowded out by close, redundant ones.
        var level = min(1, alpha)
        while kept < r {
            var i = 0
            while i < n && kept < r {
                if occlusion[i] > level { i += 1; continue }
                occlusion[i] = .infinity
                out[kept] = ids[i]
                kept += 1
                if kept == r { break }
                let pivot = rows.float32Row(row(i), scratch: scratch)
                var j = i + 1
                while j < n {
                    if occlusion[j] <= alpha {
                        if j + 1 < n && occlusion[j + 1] <= alpha { strata_prefetch(rows.rowAddress(row(j + 1))) }
                        let d = rows.squaredDistance(pivot, row(j))
                        let ratio = d > 0 ? dists[j] / d : .infinity
                        if ratio > occlusion[j] { occlusion[j] = ratio }
                    }
                    j += 1
                }
                i += 1
            }
            if level >= alpha { break }
            level = min(alpha, level * 1.2)
        }
        if saturate, alpha > 1 {
            var i = 0
            while i < n && kept < r {
                if occlusion[i] != .infinity {
                    occlusion[i] = .infinity
                    out[kept] = ids[i]
                    kept += 1
                }
                i += 1
            }
        }
        return kept
    }

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
