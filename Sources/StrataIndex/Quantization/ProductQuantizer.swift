// Product quantisation: M sub-spaces x 256 centroids, one byte per sub-space per vector.
//
// Serialised form (little-endian), produced by `serialize()` and checked by `init(deserializing:)`:
//
// | Offset | Size             | Type  | Meaning                                             |
// | -----: | ---------------- | ----- | --------------------------------------------------- |
// |      0 | 8                | ASCII | magic `STRATAPQ`                                    |
// |      8 | 4                | u32   | version, 1                                          |
// |     12 | 4                | u32   | dimension D                                         |
// |     16 | 4                | u32   | sub-space count M (D % M == 0)                      |
// |     20 | 4                | u32   | centroids per sub-space, 256                        |
// |     24 | 8                | -     | reserved, zero                                      |
// |     32 | 4 * 256 * D      | f32[] | centroids: sub-space s, centroid c, coordinate j at |
// |        |                  |       | index (s * 256 + c) * (D / M) + j                   |
//
// Codes (not part of this blob) are M bytes per row, row-major: byte s of row i is the centroid
// index of sub-vector s of row i.
import StrataFormat
import CStrataKernels

/// A trained product quantiser with 256 centroids per sub-space (8-bit codes).
package struct ProductQuantizer: Sendable, Equatable {
    /// Centroids per sub-space (codes are bytes).
    public static let centroidCount = 256
    static let magic = "STRATAPQ"
    static let version: UInt32 = 1

    /// Dimension of the vectors.
    public let dimension: Int
    /// Number of sub-spaces M, which is also the code size in bytes.
    public let subspaceCount: Int
    /// Dimensions per sub-space, `dimension / subspaceCount`.
    public var subspaceDimension: Int { dimension / subspaceCount }
    /// Code size in bytes per vector (= M).
    public var codeSize: Int { subspaceCount }
    /// Centroids, sub-space-major: `(s * 256 + c) * subspaceDimension + j`.
    public let centroids: [Float]
    /// The same centroids transposed per sub-space, `(s * dsub + j) * 256 + c`, for the C kernels.
    let transposed: [Float]

    /// The default M for a dimension: the divisor of `dimension` nearest to `dimension / 4`
    /// (4 dimensions per byte), preferring the larger code when two are equally near.
    /// 384 -> 96, 768 -> 192, 128 -> 32, 100 -> 25.
    public static func defaultSubspaceCount(dimension: Int) -> Int {
        precondition(dimension > 0)
        let target = max(1, dimension / 4)
        var best = 1
        for m in 1...dimension where dimension % m == 0 {
            if abs(m - target) < abs(best - target) || (abs(m - target) == abs(best - target) && m > best) { best = m }
        }
        return best
    }

    /// Trains a quantiser on the rows of `vectors`.
    /// - Parameters:
    ///   - vectors: row-major floats, row `i` at `i * rowStride`.
    ///   - count: rows (at least 1).
    ///   - dimension: floats per row.
    ///   - rowStride: floats between row starts.
    ///   - subspaceCount: M; `nil` picks ``defaultSubspaceCount(dimension:)``.
    ///   - sampleLimit: rows sampled for k-means per sub-space.
    ///   - iterations: Lloyd iterations.
    ///   - seed: random seed (sub-space s uses stream s).
    ///   - threads: worker threads (sub-spaces train in parallel); the result does not depend on it.
    /// - Throws: `StrataError.Code.invalidArgument` when M is 0 or does not divide the dimension,
    ///   or the buffer is too small.
    public init(training vectors: UnsafeBufferPointer<Float>, count: Int, dimension: Int, rowStride: Int,
                subspaceCount: Int? = nil, sampleLimit: Int = 20_000, iterations: Int = 12,
                seed: UInt64 = 0x5EED, threads: Int? = nil) throws(StrataError) {
        try checkVectorBuffer(vectors, count: count, dimension: dimension, rowStride: rowStride)
        let m = subspaceCount ?? ProductQuantizer.defaultSubspaceCount(dimension: dimension)
        if m <= 0 { throw StrataError(.invalidArgument, "PQ sub-space count must be positive, got \(m)") }
        if dimension % m != 0 {
            throw StrataError(.invalidArgument, "PQ sub-space count \(m) does not divide the dimension \(dimension)")
        }
        if count < 1 { throw StrataError(.invalidArgument, "PQ training needs at least one row") }
        let dsub = dimension / m
        let k = ProductQuantizer.centroidCount
        var cents = [Float](repeating: 0, count: m * k * dsub)
        // Gather a shared sample once, then each sub-space clusters its slice of it.
        let n = min(count, max(sampleLimit, k))
        var rng = IndexRandom(seed: seed)
        var rows = Array(0..<count)
        if n < count { for i in 0..<n { rows.swapAt(i, i + rng.below(count - i)) } }
        var sample = [Float](repeating: 0, count: n * dimension)
        let base = vectors.baseAddress!
        for i in 0..<n {
            let src = base + rows[i] * rowStride
            for j in 0..<dimension { sample[i * dimension + j] = src[j] }
        }
        cents.withUnsafeMutableBufferPointer { cp in
            let out = SendablePointer(cp.baseAddress!)
            sample.withUnsafeBufferPointer { sp in
                let sbase = sp.baseAddress!
                IndexParallel.forEach(count: m, threads: threads ?? IndexParallel.defaultThreadCount) { _, s in
                    // The slice of sub-space s: rows of the sample, offset s * dsub, stride = dimension.
                    let slice = UnsafeBufferPointer(start: sbase + s * dsub, count: (n - 1) * dimension + dsub)
                    guard let km = try? KMeans(vectors: slice, count: n, dimension: dsub, rowStride: dimension,
                                               k: k, iterations: iterations, sampleLimit: n,
                                               seed: IndexRandom(seed: seed, stream: UInt64(s)).state)
                    else { return }
                    for i in 0..<(k * dsub) { out.base[s * k * dsub + i] = km.centroids[i] }
                }
            }
        }
        self.init(dimension: dimension, subspaceCount: m, centroids: cents)
    }

    /// Builds a quantiser from known centroids (layout as ``centroids``). Internal: callers go through
    /// training or deserialisation, which validate.
    init(dimension: Int, subspaceCount m: Int, centroids: [Float]) {
        self.dimension = dimension
        self.subspaceCount = m
        self.centroids = centroids
        let dsub = dimension / m
        var t = [Float](repeating: 0, count: centroids.count)
        for s in 0..<m {
            for c in 0..<256 {
                for j in 0..<dsub { t[(s * dsub + j) * 256 + c] = centroids[(s * 256 + c) * dsub + j] }
            }
        }
        self.transposed = t
    }

    /// Equal when the shapes and every centroid match.
    public static func == (a: ProductQuantizer, b: ProductQuantizer) -> Bool {
        a.dimension == b.dimension && a.subspaceCount == b.subspaceCount && a.centroids == b.centroids
    }

    /// Encodes one vector into `code` (M bytes).
    public func encode(_ vector: UnsafePointer<Float>, into code: UnsafeMutablePointer<UInt8>) {
        let dsub = subspaceDimension
        transposed.withUnsafeBufferPointer { t in
            for s in 0..<subspaceCount {
                code[s] = UInt8(truncatingIfNeeded: strata_nearest_transposed_f32(
                    vector + s * dsub, t.baseAddress! + s * dsub * 256, dsub, 256, nil))
            }
        }
    }

    /// Encodes `count` rows into a new `count x M` byte array, rows in parallel.
    /// - Throws: `StrataError.Code.invalidArgument` when the buffer is too small or the dimension differs.
    /// - Complexity: O(count * 256 * dimension).
    public func encode(vectors: UnsafeBufferPointer<Float>, count: Int, rowStride: Int, threads: Int? = nil) throws(StrataError) -> [UInt8] {
        try checkVectorBuffer(vectors, count: count, dimension: dimension, rowStride: rowStride)
        var codes = [UInt8](repeating: 0, count: count * subspaceCount)
        if count == 0 { return codes }
        let base = vectors.baseAddress!
        let m = subspaceCount
        codes.withUnsafeMutableBufferPointer { cp in
            let out = SendablePointer(cp.baseAddress!)
            IndexParallel.forEach(count: count, threads: threads ?? IndexParallel.defaultThreadCount, chunk: 256) { _, i in
                self.encode(base + i * rowStride, into: out.base + i * m)
            }
        }
        return codes
    }

    /// Reconstructs the vector a code stands for.
    public func decode(_ code: UnsafePointer<UInt8>) -> [Float] {
        let dsub = subspaceDimension
        var out = [Float](repeating: 0, count: dimension)
        for s in 0..<subspaceCount {
            let c = Int(code[s])
            for j in 0..<dsub { out[s * dsub + j] = centroids[(s * 256 + c) * dsub + j] }
        }
        return out
    }

    /// Mean over rows of the squared reconstruction error `|x - decode(encode(x))|^2` (for `strata dump`).
    /// - Parameters:
    ///   - vectors: `count` rows of `dimension` floats, `rowStride` floats apart.
    ///   - count: Rows to compare.
    ///   - rowStride: Floats from the start of one row to the start of the next (at least `dimension`).
    ///   - codes: `count x M` codes of the same rows.
    public func meanSquaredError(vectors: UnsafeBufferPointer<Float>, count: Int, rowStride: Int,
                                 codes: UnsafeRawBufferPointer) throws(StrataError) -> Double {
        try checkVectorBuffer(vectors, count: count, dimension: dimension, rowStride: rowStride)
        if codes.count < count * subspaceCount {
            throw StrataError(.invalidArgument, "codes hold \(codes.count) bytes, \(count) rows need \(count * subspaceCount)")
        }
        if count == 0 { return 0 }
        let base = vectors.baseAddress!
        let dsub = subspaceDimension
        var total = 0.0
        for i in 0..<count {
            let x = base + i * rowStride
            var e = 0.0
            for s in 0..<subspaceCount {
                let c = Int(codes[i * subspaceCount + s])
                for j in 0..<dsub {
                    let t = Double(x[s * dsub + j]) - Double(centroids[(s * 256 + c) * dsub + j])
                    e += t * t
                }
            }
            total += e
        }
        return total / Double(count)
    }

    /// Number of floats in a distance table: M x 256.
    public var distanceTableCount: Int { subspaceCount * 256 }

    /// Fills the per-query ADC table (`M x 256` floats) so that the distance of a row with code `c`
    /// is `sum_s table[s * 256 + c[s]]` plus ``distanceTableBias(metric:)``, in Strata's convention:
    /// squared L2 for `.l2`, `-dot` for `.innerProduct`, `1 - dot` for `.cosine` (bias 1).
    /// - Complexity: O(256 * dimension), AVX-512 where available.
    public func computeDistanceTable(query: UnsafePointer<Float>, metric: DistanceMetric,
                                     into table: UnsafeMutablePointer<Float>) {
        transposed.withUnsafeBufferPointer { t in
            strata_pq_table_f32(query, t.baseAddress!, subspaceCount, subspaceDimension,
                                metric == .l2 ? 0 : 1, table)
        }
    }

    /// The metric whose ADC table ranks candidates best in a search by `metric`: squared L2 for
    /// `.cosine` as well. Cosine segments store unit vectors, where squared L2 is `2 (1 - dot)` and
    /// ranks exactly as cosine does; over codes it ranks better, because it also charges each code
    /// word's error in length, which `1 - dot` ignores. PQ distances only rank (every answer is
    /// reranked exactly), so the scale does not matter.
    public static func rankingMetric(for metric: DistanceMetric) -> DistanceMetric {
        metric == .cosine ? .l2 : metric
    }

    /// The constant added to the table sum: 1 for cosine, else 0.
    public static func distanceTableBias(metric: DistanceMetric) -> Float { metric == .cosine ? 1 : 0 }

    /// ADC distances of rows `ids` (each < rows in `codes`) from a table made by
    /// ``computeDistanceTable(query:metric:into:)``, without the bias. Unchecked: ids must be in range.
    @inlinable
    public static func unsafeDistances(table: UnsafePointer<Float>, codes: UnsafePointer<UInt8>, codeSize: Int,
                                       ids: UnsafePointer<UInt32>, count: Int, into out: UnsafeMutablePointer<Float>) {
        strata_pq_adc_f32(table, codes, codeSize, ids, count, out)
    }

    /// The serialised form (layout at the top of this file).
    public func serialize() -> [UInt8] {
        var w = ByteWriter()
        w.raw(ProductQuantizer.magic.utf8)
        w.u32(ProductQuantizer.version)
        w.u32(UInt32(dimension))
        w.u32(UInt32(subspaceCount))
        w.u32(UInt32(256))
        w.u64(UInt64(0))
        w.f32s(centroids)
        return w.bytes
    }

    /// Reads a serialised quantiser, checking every field against the byte count.
    /// - Throws: `StrataError.Code.corrupt` (section "pq codebook") for bad magic, version, shape,
    ///   length or non-finite centroids.
    public init(deserializing bytes: UnsafeRawBufferPointer) throws(StrataError) {
        var r = ByteReader(bytes, section: "pq codebook", truncationCode: .corrupt)
        try r.expectMagic(ProductQuantizer.magic)
        let version = try r.u32()
        if version != ProductQuantizer.version { throw r.error("unsupported PQ version \(version)") }
        let dim = Int(try r.u32())
        let m = Int(try r.u32())
        let k = try r.u32()
        if dim == 0 || m == 0 || dim % m != 0 { throw r.error("bad PQ shape: dimension \(dim), sub-spaces \(m)") }
        if k != 256 { throw r.error("PQ centroid count \(k), expected 256") }
        if try r.u64() != 0 { throw r.error("reserved bytes are not zero") }
        let (n, o) = dim.multipliedReportingOverflow(by: 256)
        if o { throw r.error("PQ dimension \(dim) too large") }
        let cents = try r.f32s(n, "PQ centroids")
        try r.expectEnd()
        if cents.contains(where: { !$0.isFinite }) { throw r.error("non-finite PQ centroid") }
        self.init(dimension: dim, subspaceCount: m, centroids: cents)
    }
}
