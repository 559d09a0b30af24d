// How large a vector may be: the bound that keeps every float32 distance finite.
//
// Distances are float32. A vector can hold only finite components and still make a distance
// overflow: [3e38, 0] has a squared norm of 9e76, and its l2 distance to anything far away or its
// inner product with itself is +inf, which would sort, print and fuse as garbage. So stored vectors
// and queries must keep their squared L2 norm at or below 2^124 (about 2.13e37; a norm of 2^62).
// Then, for any two such vectors a and b:
//   l2:     |a - b|^2 <= (|a| + |b|)^2 <= 4 * 2^124 = 2^126
//   ip:     |a . b|   <= |a| |b|          <= 2^124
//   cosine: stored and queried vectors are normalised first; the bound only keeps one rule for all
//           metrics (a vector accepted by one collection is accepted by every one).
// 2^126 is a quarter of float32's largest finite value (about 2^128), a margin far larger than the
// rounding error of a float32 sum of a few thousand terms, and of the partial sums of any kernel
// (SIMD lanes, PQ look-up tables, whose centroids are means of admitted vectors).

/// Limits on vector magnitudes (see the top of VectorLimits.swift).
public enum VectorLimits {
    /// The largest squared L2 norm of a stored vector or a query: 2^124 (about 2.13e37). Any l2 or
    /// inner-product distance between two vectors within it is finite in float32.
    public static let maximumSquaredNorm: Double = 0x1p124

    /// The squared L2 norm of `vector`, accumulated in Double (exact enough, never overflows for
    /// finite float32 components). O(count).
    @inlinable
    public static func squaredNorm<V: Sequence<Float>>(_ vector: V) -> Double {
        var sum: Double = 0
        for x in vector { sum += Double(x) * Double(x) }
        return sum
    }

    /// Throws `.invalidValue` when `squaredNorm` (of finite components) exceeds
    /// ``maximumSquaredNorm``. `what` names the vector in the message ("row 3 (id 7)", "query").
    public static func check(squaredNorm: Double, what: String, path: String? = nil) throws(StrataError) {
        guard squaredNorm <= maximumSquaredNorm else {
            throw StrataError(.invalidValue, "\(what): squared norm \(squaredNorm) exceeds the limit 2^124 (about 2.13e37, a norm of about "
                              + "4.6e18); distances to such a vector overflow float32", path: path)
        }
    }

    /// Checks a query: every component finite (`.nonFiniteValue`) and the squared norm within
    /// ``maximumSquaredNorm`` (`.invalidValue`). Returns the squared norm. O(count). Inlinable so
    /// that callers in other modules get it specialised for their collection: unspecialised, it walks
    /// the query through generic iterator calls (about 20 us per 384-dimension query).
    @inlinable @discardableResult
    public static func checkQuery<V: Collection<Float>>(_ query: V, path: String? = nil) throws(StrataError) -> Double {
        guard query.allSatisfy(\.isFinite) else { throw StrataError(.nonFiniteValue, "query holds NaN or infinity", path: path) }
        let norm = squaredNorm(query)
        try check(squaredNorm: norm, what: "query", path: path)
        return norm
    }

    /// Writes `vector` divided by its L2 norm into `out` (same count) and returns the norm: the one
    /// cosine normalisation, used for stored vectors (`SegmentWriter`, the collection's write buffer)
    /// and for queries (``cosineUnitQuery(_:path:)``). The squared norm is accumulated and the
    /// division done in Double, then rounded once to float: a float sum of squares overflows for
    /// large components, and a float 1/norm overflows for tiny ones. A zero vector gives NaNs (the
    /// callers reject it first). O(count).
    @inlinable @discardableResult
    package static func unitVector(_ vector: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>) -> Double {
        precondition(out.count == vector.count, "unit vector of a different length")
        let norm = squaredNorm(vector).squareRoot()
        for d in 0..<vector.count { out[d] = Float(Double(vector[d]) / norm) }
        return norm
    }

    /// `query` divided by its L2 norm, as a cosine search compares it, normalised exactly as stored
    /// vectors are (``unitVector(_:into:)``), so a query that would be accepted as a row is never
    /// taken for a zero vector through float32 underflow.
    /// Throws `.invalidValue` for a zero query. O(count).
    package static func cosineUnitQuery(_ query: [Float], path: String? = nil) throws(StrataError) -> [Float] {
        var out = query
        let norm = query.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { dst in unitVector(src, into: dst) } }
        guard norm > 0 else { throw StrataError(.invalidValue, "a zero query has no cosine direction", path: path) }
        return out
    }
}
