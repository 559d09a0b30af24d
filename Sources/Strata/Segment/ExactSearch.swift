// Exact (brute-force) k-nearest-neighbour search over a segment's mapped vectors (the vectors
// section, or the graph records of a format 2.0 indexed segment): the baseline every approximate
// index is checked against.
import StrataFormat
import StrataIndex

extension Segment {
    /// Checks and prepares a query: dimension, finite values, squared norm within
    /// `VectorLimits.maximumSquaredNorm`, normalisation for cosine.
    func prepareQuery(_ query: [Float]) throws(StrataError) -> [Float] {
        guard query.count == schema.dimension else {
            throw StrataError(.dimensionMismatch, "query has \(query.count) dimensions, segment has \(schema.dimension)", path: path)
        }
        try VectorLimits.checkQuery(query, path: path)
        return try Distance(schema).prepareQuery(query, path: path)
    }

    /// Distance from a prepared query to the vector at `row` (no bounds check).
    @inline(__always)
    func unsafeDistance(_ query: UnsafePointer<Float>, row: Int) -> Float {
        Distance(metric: schema.metric, elementType: schema.elementType)
            .unsafeDistance(query, vectors.pointer(row: row), dimension: schema.dimension)
    }

    /// Exact k nearest rows to `query` under the segment's metric, closest first (ties by id).
    /// `filter`, when given, admits a row only if it returns true. O(rows x dimension).
    /// Throws `.dimensionMismatch`, `.nonFiniteValue` / `.invalidValue` (see `VectorLimits`), or `.invalidArgument` for k < 1.
    public func exactSearch(query: [Float], k: Int, filter: ((Int) -> Bool)? = nil) throws(StrataError) -> [SearchHit] {
        try checkOpen()
        guard k >= 1 else { throw StrataError(.invalidArgument, "k must be at least 1, got \(k)") }
        try checkBeforeRead(exactScanSections)
        let q = try prepareQuery(query)
        var top = TopK(k: k)
        let distance = Distance(metric: schema.metric, elementType: schema.elementType)
        let dim = schema.dimension
        q.withUnsafeBufferPointer { qp in
            let query = qp.baseAddress!
            if let filter {
                vectors.forEachRow(in: 0..<rowCount) { row, v in
                    guard filter(row) else { return }
                    let d = distance.unsafeDistance(query, v, dimension: dim)
                    if d <= top.threshold { top.offer(distance: d, id: unsafeId(ofRow: row), row: row) }
                }
            } else {
                vectors.forEachRow(in: 0..<rowCount, prefetchBytes: dim * schema.elementType.byteWidth) { row, v in
                    let d = distance.unsafeDistance(query, v, dimension: dim)
                    if d <= top.threshold { top.offer(distance: d, id: unsafeId(ofRow: row), row: row) }
                }
            }
        }
        return top.sorted().map { SearchHit(id: unsafeId(ofRow: $0.row), row: $0.row, distance: $0.distance) }
            .sorted()
    }
}

extension Segment {
    /// Exact k nearest rows for many queries at once, each result closest first.
    ///
    /// The vectors are scanned once per batch rather than once per query: rows are taken in tiles
    /// that stay in the L2 cache while every query of the batch is scored against them, so a large
    /// segment costs memory bandwidth once per batch instead of once per query.
    public func exactSearch(queries: [[Float]], k: Int) throws(StrataError) -> [[SearchHit]] {
        try checkOpen()
        guard k >= 1 else { throw StrataError(.invalidArgument, "k must be at least 1, got \(k)") }
        try checkBeforeRead(exactScanSections)
        var prepared: [Float] = []
        prepared.reserveCapacity(queries.count * schema.dimension)
        for q in queries { prepared += try prepareQuery(q) }
        var tops = [TopK](repeating: TopK(k: k), count: queries.count)
        let dim = schema.dimension
        // ~256 KiB of vectors per tile.
        let tileRows = max(16, (256 * 1024) / vectors.bytesPerRow)
        let distance = Distance(metric: schema.metric, elementType: schema.elementType)
        prepared.withUnsafeBufferPointer { qs in
            var tileStart = 0
            while tileStart < rowCount {
                let tileEnd = min(rowCount, tileStart + tileRows)
                for qi in 0..<queries.count {
                    let query = qs.baseAddress! + qi * dim
                    var threshold = tops[qi].threshold
                    vectors.forEachRow(in: tileStart..<tileEnd) { row, v in
                        let d = distance.unsafeDistance(query, v, dimension: dim)
                        if d <= threshold {
                            tops[qi].offer(distance: d, id: unsafeId(ofRow: row), row: row)
                            threshold = tops[qi].threshold
                        }
                    }
                }
                tileStart = tileEnd
            }
        }
        return tops.map { top in
            top.sorted().map { SearchHit(id: unsafeId(ofRow: $0.row), row: $0.row, distance: $0.distance) }.sorted()
        }
    }
}

/// Information about the build.
public enum StrataRuntime {
    /// The instruction set the distance kernels dispatched to on this CPU ("avx512", "avx2", "scalar").
    public static var kernelInstructionSet: String { DistanceKernels.instructionSet }
}
