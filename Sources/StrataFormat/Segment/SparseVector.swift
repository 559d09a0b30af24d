// A sparse vector (dimension indices and weights): what a row may carry besides its dense vector,
// and what a sparse query is. Segments index them in `sparse_index` (Strata, Query/Sparse.swift);
// collections log them in the WAL (format 3.0, docs/COLLECTION-FORMAT.md C.4).
//
// Canonical form (``SparseVector/canonical()``): indices strictly ascending, duplicates summed (in
// float32, in the order given), zero weights dropped. Every stored form is canonical: the WAL holds
// the canonical vector, a segment's posting lists hold exactly its entries, and a dot product is the
// sum, over the dimensions both vectors hold, of the products. An empty vector is the same as none.

/// A sparse vector: dimension indices and their weights.
public struct SparseVector: Sendable, Equatable {
    /// Dimension indices (any order; duplicates are summed when stored).
    public var indices: [UInt32]
    /// Weights, one per index (finite).
    public var values: [Float]

    /// The most entries (indices as given, before duplicates are summed) one vector may have: 65,536.
    public static let maximumNonZeros = 65_536
    /// The largest dimension index: `UInt32.max - 1` (`UInt32.max` is reserved).
    public static let maximumIndex = UInt32.max - 1

    /// Creates a sparse vector.
    public init(indices: [UInt32], values: [Float]) {
        self.indices = indices
        self.values = values
    }

    /// Throws `.invalidArgument` when the counts differ, when there are more than
    /// ``maximumNonZeros`` entries or an index is over ``maximumIndex``; `.nonFiniteValue` when a
    /// weight is not finite; `.invalidValue` when the squared norm (duplicate indices summed, in
    /// Double) exceeds `VectorLimits.maximumSquaredNorm`, so that sums of duplicates and sparse dot
    /// products stay finite in float32.
    public func validate() throws(StrataError) {
        guard indices.count == values.count else {
            throw StrataError(.invalidArgument, "sparse vector has \(indices.count) indices and \(values.count) values")
        }
        guard indices.count <= Self.maximumNonZeros else {
            throw StrataError(.invalidArgument, "sparse vector has \(indices.count) entries, over the limit of \(Self.maximumNonZeros)")
        }
        if let bad = indices.first(where: { $0 > Self.maximumIndex }) {
            throw StrataError(.invalidArgument, "sparse vector index \(bad) is over the largest index \(Self.maximumIndex)")
        }
        guard values.allSatisfy(\.isFinite) else { throw StrataError(.nonFiniteValue, "sparse vector holds NaN or infinity") }
        // Duplicates are summed in Double for the norm, and in float32 (as stored) to check that
        // no stored weight overflows on the way (3e38 + 3e38 - 3e38).
        var summed: [UInt32: (Double, Float)] = [:]
        for (i, v) in zip(indices, values) {
            let s = summed[i, default: (0, 0)]
            summed[i] = (s.0 + Double(v), s.1 + v)
        }
        guard summed.values.allSatisfy({ $0.1.isFinite }) else {
            throw StrataError(.invalidValue, "sparse vector: duplicate indices sum to infinity in float32")
        }
        try VectorLimits.check(squaredNorm: summed.values.reduce(0) { $0 + $1.0 * $1.0 }, what: "sparse vector")
    }

    /// Parses `index:weight,index:weight,...` (the CLI form).
    public init(parsing text: String) throws(StrataError) {
        var idx: [UInt32] = [], val: [Float] = []
        for part in text.split(separator: ",") {
            let f = part.split(separator: ":")
            guard f.count == 2, let i = UInt32(f[0].trimmingSpaces()), let v = Float(f[1].trimmingSpaces()), v.isFinite else {
                throw StrataError(.invalidArgument, "bad sparse entry '\(part)': expected index:weight")
            }
            idx.append(i); val.append(v)
        }
        self.init(indices: idx, values: val)
    }

    /// Sorted, duplicate-free (summed in float32, in the order given) entries; zero weights kept.
    package func normalized() -> [(UInt32, Float)] {
        var d: [UInt32: Float] = [:]
        for (i, v) in zip(indices, values) { d[i, default: 0] += v }
        return d.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// The canonical form (see the top of SparseVector.swift): ``normalized()`` without zero
    /// weights; nil when nothing is left. Call on a validated vector.
    package func canonical() -> SparseVector? {
        // Already canonical (the common case for a client that sends sorted entries): no copy.
        var sorted = true
        for i in indices.indices where values[i] == 0 || (i > 0 && indices[i - 1] >= indices[i]) { sorted = false; break }
        if sorted { return indices.isEmpty ? nil : self }
        let entries = normalized().filter { $0.1 != 0 }
        guard !entries.isEmpty else { return nil }
        return SparseVector(indices: entries.map(\.0), values: entries.map(\.1))
    }

    /// Whether the indices strictly ascend and every weight is finite and non-zero (the form
    /// stored in a WAL record).
    package var isCanonical: Bool {
        guard indices.count == values.count, !indices.isEmpty else { return false }
        for i in indices.indices {
            guard values[i].isFinite, values[i] != 0, i == 0 || indices[i - 1] < indices[i] else { return false }
        }
        return true
    }

    /// Dot product of two canonical vectors: the sum of the products over the dimensions both hold,
    /// accumulated in float32 in ascending dimension order; nil when they share no dimension (a row
    /// that shares none with a query does not match it).
    package func canonicalDot(_ o: SparseVector) -> Float? {
        var i = 0, j = 0
        var sum: Float = 0
        var shared = false
        while i < indices.count, j < o.indices.count {
            let a = indices[i], b = o.indices[j]
            if a == b {
                sum += values[i] * o.values[j]
                shared = true
                i += 1; j += 1
            } else if a < b {
                i += 1
            } else {
                j += 1
            }
        }
        return shared ? sum : nil
    }

    /// Dot product with another sparse vector.
    public func dot(_ o: SparseVector) -> Float {
        let a = normalized(), b = Dictionary(uniqueKeysWithValues: o.normalized())
        return a.reduce(0) { $0 + $1.1 * (b[$1.0] ?? 0) }
    }
}
