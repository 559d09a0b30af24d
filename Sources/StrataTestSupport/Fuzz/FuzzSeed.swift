// What the seed segments of the filter and segment harnesses share: the writer options (a small,
// fast ANN index) and the numeric payload columns, so that both cover the same layouts.
import Strata

enum FuzzSeed {
    /// 8 rows per block, `search`, and an ANN index from 16 rows on, small and single-threaded
    /// (2 PQ sub-spaces, 4 k-means iterations, graph degree 8, build list 16).
    static func writerOptions(search: SearchSectionOptions) -> SegmentWriterOptions {
        var options = SegmentWriterOptions()
        options.rowsPerBlock = 8
        var index = IndexOptions()
        index.minimumRows = 16
        index.pqSubspaces = 2
        index.pqIterations = 4
        index.graph.maxDegree = 8
        index.graph.buildListSize = 16
        index.graph.threads = 1
        options.index = index
        options.search = search
        return options
    }

    /// Row `r`'s values of the columns `count` (int64, nullable), `score` (float64, nullable) and
    /// `flag` (bool), in that order.
    static func numericValues(row r: Int) -> [PayloadValue] {
        [
            r % 5 == 2 ? .null : .int64(Int64(r * r) - 300),
            r % 4 == 1 ? .null : .float64(Double(r) * 0.75 - 10),
            .bool(r % 3 == 0),
        ]
    }
}
