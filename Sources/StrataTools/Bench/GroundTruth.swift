// Ground truth for recall figures, and recall itself: the one place `bench`, `bench-filter`,
// `search --groundtruth` and `collection search` compute them.
import StrataFormat
import Strata

/// Ground truth (`.ivecs`, one record of neighbour ids or row numbers per query), checked against
/// what a recall figure needs, so that no recall is reported from a file that cannot support it.
package enum GroundTruth {
    /// Reads `path` and checks it covers the first `queries` queries, each with at least `k`
    /// neighbours, every value in `0..<rowCount` (row numbers of a segment) or at least 0 (ids of a
    /// collection, when `rowCount` is nil).
    /// - Throws: `.invalidArgument` (exit 2) when the file is too short or too narrow for the
    ///   command's `--k` / `--limit`; `.corrupt` (exit 1) for a value that names no row.
    package static func read(_ path: String, queries: Int, k: Int, rowCount: Int?) throws(StrataError) -> [[Int32]] {
        let truth = try readIvecs(path: path)
        guard truth.count >= queries else {
            throw StrataError(.invalidArgument, "ground truth has \(truth.count) records for \(queries) queries (use --limit \(truth.count))", path: path)
        }
        for q in 0..<queries {
            guard truth[q].count >= k else {
                throw StrataError(.invalidArgument, "ground truth record \(q) has \(truth[q].count) neighbours; recall@\(k) needs at least \(k) (lower --k)", path: path)
            }
            for (j, v) in truth[q].prefix(k).enumerated() where v < 0 || (rowCount.map { Int(v) >= $0 } ?? false) {
                let range = rowCount.map { "a row number 0..<\($0)" } ?? "an id >= 0"
                throw StrataError(.corrupt, "ground truth record \(q), entry \(j): \(v) is not \(range)", path: path)
            }
        }
        return truth
    }

    /// Mean recall@`depth` of result lists (ids or row numbers, in query order) against ground
    /// truth: of the first `depth` true neighbours of every query (duplicates counted once), the
    /// share found among the first `depth` results. Nil when there is nothing to compare.
    package static func recall<T: BinaryInteger>(_ found: [[T]], truth: [[Int32]], depth: Int) -> Double? {
        var hit = 0, total = 0
        for (q, results) in found.enumerated() where q < truth.count {
            let want = Set(truth[q].prefix(depth).map(Int64.init))
            hit += results.prefix(depth).filter { want.contains(Int64($0)) }.count
            total += want.count
        }
        return total > 0 ? Double(hit) / Double(total) : nil
    }
}
