// Small indexed segments for the search tests (node cache, direct I/O): clustered rows and a writer
// with the small test index.
import Foundation
@testable import Strata
@testable import StrataFormat

extension StrataTestCase {
    /// `count` rows of `dimension` floats around `clusters` random centres (spread 3, unit noise),
    /// row i with id `i * idStride + idBase`; the same seed gives the same rows.
    func clusteredRows(count: Int, dimension: Int, clusters: Int, seed: UInt64, idStride: UInt64, idBase: UInt64) -> [SegmentRow] {
        var rng = SplitMix64(seed: seed)
        let centers = (0..<clusters).map { _ in (0..<dimension).map { _ in rng.gaussianish() * 3 } }
        return (0..<count).map { i in
            let c = centers[rng.int(centers.count)]
            return SegmentRow(id: UInt64(i) * idStride + idBase, vector: c.map { $0 + rng.gaussianish() })
        }
    }

    /// Writes `rows` at `path` as an L2 segment of `dimension` floats with the small test index
    /// (graph records block-aware unless `blockLayout` is false).
    func writeIndexedSegment(_ path: String, rows: [SegmentRow], dimension: Int, blockLayout: Bool = true) throws {
        var options = SegmentWriterOptions()
        options.index = .smallTestIndex
        options.index!.blockLayout = blockLayout
        let writer = try SegmentWriter(path: path, schema: SegmentSchema(dimension: dimension, metric: .l2), options: options)
        try writer.append(rows)
        try writer.finish()
    }
}
