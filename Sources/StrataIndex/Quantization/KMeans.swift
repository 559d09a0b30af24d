// k-means clustering (k-means++ seeding, Lloyd iterations) for product-quantiser training.
import StrataFormat
import CStrataKernels

/// Deterministic k-means in squared L2.
///
/// Seeding is k-means++ on a seeded sample of at most `sampleLimit` rows; then `iterations` Lloyd
/// rounds over the same sample. Sums are accumulated in `Double` in row order, so the result is the
/// same bytes for the same input and seed, whatever the machine load. Empty clusters are re-seeded
/// from the sample row farthest from its centroid (ties: lowest row).
package struct KMeans: Sendable {
    /// Number of clusters.
    public let k: Int
    /// Dimension of the points and centroids.
    public let dimension: Int
    /// `k x dimension` centroids, row-major.
    public let centroids: [Float]

    /// Trains `k` centroids.
    /// - Parameters:
    ///   - vectors: row-major float buffer; row `i` starts at `i * rowStride`.
    ///   - count: number of rows (at least 1).
    ///   - dimension: floats per row used (at least 1).
    ///   - rowStride: floats between row starts (>= dimension).
    ///   - k: number of clusters, 1...count is typical; if the sample has fewer distinct rows than `k`,
    ///     the extra centroids repeat sample rows.
    ///   - iterations: Lloyd iterations (0 keeps the k-means++ seeds).
    ///   - sampleLimit: train on at most this many rows, drawn with `seed`.
    ///   - seed: random seed.
    /// - Throws: `StrataError.Code.invalidArgument` for `k < 1`, `count < 1`, or a buffer too small.
    /// - Complexity: O((k + iterations) * sample * k * dimension) arithmetic, dominated by the
    ///   nearest-centroid kernel (AVX-512 where available).
    public init(vectors: UnsafeBufferPointer<Float>, count: Int, dimension: Int, rowStride: Int,
                k: Int, iterations: Int = 12, sampleLimit: Int = 20_000, seed: UInt64 = 0x5EED) throws(StrataError) {
        try checkVectorBuffer(vectors, count: count, dimension: dimension, rowStride: rowStride)
        if count < 1 { throw StrataError(.invalidArgument, "k-means needs at least one row") }
        if k < 1 { throw StrataError(.invalidArgument, "k-means needs k >= 1, got \(k)") }
        if iterations < 0 { throw StrataError(.invalidArgument, "k-means iterations \(iterations) is negative") }
        self.k = k
        self.dimension = dimension
        let base = vectors.baseAddress!
        var rng = IndexRandom(seed: seed)

        // Sample rows (partial Fisher-Yates over indices), copied densely.
        let n = min(count, max(sampleLimit, k))
        var rows = Array(0..<count)
        if n < count {
            for i in 0..<n {
                let j = i + rng.below(count - i)
                rows.swapAt(i, j)
            }
        }
        let d = dimension
        var sample = [Float](repeating: 0, count: n * d)
        sample.withUnsafeMutableBufferPointer { s in
            for i in 0..<n {
                let src = base + rows[i] * rowStride
                for j in 0..<d { s[i * d + j] = src[j] }
            }
        }
        var cents = [Float](repeating: 0, count: k * d)
        KMeans.seedPlusPlus(sample: sample, n: n, d: d, k: k, rng: &rng, into: &cents)
        if iterations > 0 {
            KMeans.lloyd(sample: sample, n: n, d: d, k: k, iterations: iterations, centroids: &cents)
        }
        self.centroids = cents
    }

    /// Index of the centroid nearest to `point` (squared L2), ties to the lowest index.
    public func nearest(_ point: UnsafePointer<Float>) -> Int {
        let t = KMeans.transpose(centroids, k: k, d: dimension)
        return t.withUnsafeBufferPointer { Int(strata_nearest_transposed_f32(point, $0.baseAddress!, dimension, k, nil)) }
    }

    /// `k x d` row-major to `d x k`.
    static func transpose(_ c: [Float], k: Int, d: Int) -> [Float] {
        var t = [Float](repeating: 0, count: k * d)
        for i in 0..<k { for j in 0..<d { t[j * k + i] = c[i * d + j] } }
        return t
    }

    static func seedPlusPlus(sample: [Float], n: Int, d: Int, k: Int, rng: inout IndexRandom, into cents: inout [Float]) {
        sample.withUnsafeBufferPointer { s in
            let sp = s.baseAddress!
            var minDist = [Double](repeating: .infinity, count: n)
            var chosen = rng.below(n)
            for c in 0..<k {
                for j in 0..<d { cents[c * d + j] = sp[chosen * d + j] }
                if c == k - 1 { break }
                // Update distances to the nearest chosen centre and draw the next one with
                // probability proportional to the squared distance.
                var total = 0.0
                let cp = sp + chosen * d
                for i in 0..<n {
                    let dist = Double(KMeans.l2(sp + i * d, cp, d))
                    if dist < minDist[i] { minDist[i] = dist }
                    total += minDist[i]
                }
                if total <= 0 {
                    chosen = rng.below(n)
                    continue
                }
                let target = Double(rng.next() >> 11) / Double(1 << 53) * total
                var acc = 0.0
                var pick = n - 1
                for i in 0..<n {
                    acc += minDist[i]
                    if acc > target && minDist[i] > 0 { pick = i; break }
                }
                chosen = pick
            }
        }
    }

    /// Squared L2; a plain loop for the short sub-vectors of PQ (a C call costs more than the work).
    @inline(__always)
    static func l2(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ d: Int) -> Float {
        if d >= 32 { return strata_l2sq_f32(a, b, d) }
        var s: Float = 0
        for j in 0..<d {
            let t = a[j] - b[j]
            s += t * t
        }
        return s
    }

    static func lloyd(sample: [Float], n: Int, d: Int, k: Int, iterations: Int, centroids cents: inout [Float]) {
        var assign = [UInt32](repeating: 0, count: n)
        var dists = [Float](repeating: 0, count: n)
        var sums = [Double](repeating: 0, count: k * d)
        var counts = [Int](repeating: 0, count: k)
        sample.withUnsafeBufferPointer { s in
            let sp = s.baseAddress!
            for _ in 0..<iterations {
                let t = transpose(cents, k: k, d: d)
                t.withUnsafeBufferPointer { tp in
                    for i in 0..<n {
                        var dist: Float = 0
                        assign[i] = strata_nearest_transposed_f32(sp + i * d, tp.baseAddress!, d, k, &dist)
                        dists[i] = dist
                    }
                }
                for i in 0..<sums.count { sums[i] = 0 }
                for i in 0..<k { counts[i] = 0 }
                for i in 0..<n {
                    let c = Int(assign[i])
                    counts[c] += 1
                    for j in 0..<d { sums[c * d + j] += Double(sp[i * d + j]) }
                }
                for c in 0..<k {
                    if counts[c] > 0 {
                        let inv = 1.0 / Double(counts[c])
                        for j in 0..<d { cents[c * d + j] = Float(sums[c * d + j] * inv) }
                    } else {
                        // Empty cluster: move it onto the worst-served sample row, and stop that row
                        // from being picked again this round.
                        var worst = 0
                        for i in 1..<n where dists[i] > dists[worst] { worst = i }
                        for j in 0..<d { cents[c * d + j] = sp[worst * d + j] }
                        dists[worst] = -1
                    }
                }
            }
        }
    }
}
