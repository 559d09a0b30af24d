import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Strata

/// Ground truth (`.ivecs`, one record of neighbour ids or row numbers per query), checked against
/// what a recall figure needs, so that no recall is reported from a file that cannot support it.
enum GroundTruth {
    /// Reads `path` and checks it covers the first `queries` queries, each with at least `k`
    /// neighbours, every value in `0..<rowCount` (row numbers of a segment) or at least 0 (ids of a
    /// collection, when `rowCount` is nil).
    /// - Throws: `.invalidArgument` (exit 2) when the file is too short or too narrow for the
    ///   command's `--k` / `--limit`; `.corrupt` (exit 1) for a value that names no row.
    static func read(_ path: String, queries: Int, k: Int, rowCount: Int?) throws(StrataError) -> [[Int32]] {
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
}
