// A segment's sparse vectors by row: the posting lists of its sparse_index section transposed
// (compressed sparse rows), for a compaction that copies rows into a new segment. The section's
// checksum is checked before anything is read: nothing damaged is carried into a sound file.
import StrataFormat
import StrataIndex

/// The sparse vectors of one segment, row by row (each canonical: indices ascending).
struct SparseRows {
    /// Row r's entries are `indices[starts[r]..<starts[r + 1]]` and the same range of `values`.
    let starts: [Int]
    let indices: [UInt32]
    let values: [Float]

    /// Row `row`'s sparse vector, or nil when it has none.
    func vector(row: Int) -> SparseVector? {
        let a = starts[row], b = starts[row + 1]
        guard a < b else { return nil }
        return SparseVector(indices: Array(indices[a..<b]), values: Array(values[a..<b]))
    }
}

extension Segment {
    /// The segment's sparse vectors by row; nil without a sparse_index. Checks the section's
    /// checksum first (`.checksumMismatch`), then that the lists make canonical rows: terms strictly
    /// ascending, rows strictly ascending within a term and below the row count, weights finite
    /// (`.corrupt`). O(postings) time, 8 B per posting and per row.
    func sparseRows() throws(StrataError) -> SparseRows? {
        try checkOpen()
        guard let ix = searchExtras?.sparse else { return nil }
        try checkSectionChecksums(Segment.sparseSections)
        let lists = ix.lists
        func corrupt(_ why: String) -> StrataError {
            StrataError(.corrupt, "sparse index: \(why)", path: path, section: "sparse_index")
        }
        var counts = [Int](repeating: 0, count: rowCount + 1)
        for t in 0..<lists.termCount {
            guard t == 0 || ix.terms[t - 1] < ix.terms[t] else { throw corrupt("terms do not ascend at term \(t)") }
            var previous = -1
            for p in lists.start(t)..<lists.start(t + 1) {
                let r = Int(lists.rows[p])
                guard r > previous, r < rowCount else { throw corrupt("rows do not ascend below \(rowCount) in term \(ix.terms[t])") }
                guard lists.values[p].isFinite else { throw corrupt("a weight of term \(ix.terms[t]) is not finite") }
                previous = r
                counts[r + 1] += 1
            }
        }
        for r in 0..<rowCount { counts[r + 1] += counts[r] }
        var fill = counts
        var indices = [UInt32](repeating: 0, count: lists.postingCount)
        var values = [Float](repeating: 0, count: lists.postingCount)
        // Terms ascend, so each row's entries are written in ascending index order.
        for t in 0..<lists.termCount {
            for p in lists.start(t)..<lists.start(t + 1) {
                let r = Int(lists.rows[p])
                indices[fill[r]] = ix.terms[t]
                values[fill[r]] = lists.values[p]
                fill[r] += 1
            }
        }
        return SparseRows(starts: counts, indices: indices, values: values)
    }
}
