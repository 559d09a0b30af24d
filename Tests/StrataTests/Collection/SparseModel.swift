// The reference for sparse-vector tests of collections (local and remote): which rows carry which
// sparse vector, and a brute-force top-k over the live ones. Weights are small dyadic fractions
// (k/4, some negative, some duplicate indices) so that every float32 dot product is exact whatever
// the order of its additions: a search must then equal the reference exactly, ties by id.
import XCTest
@testable import Strata
@testable import StrataFormat
import StrataTestSupport

extension CollectionTestCase {
    /// Row `id` in `version`'s sparse vector: nil for every fourth row, else 1 to 6 entries over
    /// dimensions 0..<40 (repeated indices now and then, summed when stored), weights in
    /// {0.25, 0.5, ..., 2} (negative for a few rows).
    static func sparse(_ id: UInt64, _ version: Int64) -> SparseVector? {
        var rng = SplitMix64(seed: id &* 7_919 &+ UInt64(bitPattern: version) &* 104_729 &+ 17)
        if (id &+ UInt64(bitPattern: version)) % 4 == 3 { return nil }
        let n = Int(rng.next() % 6) + 1
        var indices: [UInt32] = [], values: [Float] = []
        for _ in 0..<n {
            indices.append(UInt32(rng.next() % 40))
            let w = Float(Int(rng.next() % 8) + 1) / 4
            values.append(id % 13 == 5 ? -w : w)
        }
        return SparseVector(indices: indices, values: values)
    }

    /// Rows with payload (`ver`, `tag`) and, per `CollectionTestCase.sparse`, a sparse vector
    /// (`withSparse: false`: none at all).
    func sparseRows(_ ids: some Sequence<UInt64>, version: Int64 = 0, withSparse: Bool = true) -> [SegmentRow] {
        rows(ids, version: version).map { r in
            var r = r
            r.sparse = withSparse ? Self.sparse(r.id, version) : nil
            return r
        }
    }

    /// The live content of a sparse test: id -> (version, whether the row was written with its sparse vector).
    typealias SparseModel = [UInt64: (version: Int64, sparse: Bool)]

    /// The query `n`: 1 to 5 dimensions, dyadic weights, one negative now and then.
    static func sparseQuery(_ n: UInt64) -> SparseVector {
        var rng = SplitMix64(seed: n &+ 99)
        let count = Int(rng.next() % 5) + 1
        var indices: [UInt32] = [], values: [Float] = []
        for _ in 0..<count {
            indices.append(UInt32(rng.next() % 40))
            values.append(Float(Int(rng.next() % 8) + 1) / 4 * (n % 5 == 4 ? -1 : 1))
        }
        return SparseVector(indices: indices, values: values)
    }

    /// Brute force over `model`: rows whose sparse vector shares a dimension (both weights non-zero,
    /// duplicates summed) with `query`, and that pass `keep(id, version)`; by score (in Double, exact
    /// for these weights) descending, then id.
    func sparseReference(_ model: SparseModel, query: SparseVector, k: Int,
                         keep: (UInt64, Int64) -> Bool = { _, _ in true }) -> [(id: UInt64, score: Double)] {
        func summed(_ v: SparseVector) -> [UInt32: Double] {
            var d: [UInt32: Double] = [:]
            for (i, x) in zip(v.indices, v.values) { d[i, default: 0] += Double(x) }
            return d.filter { $0.value != 0 }
        }
        let q = summed(query)
        var all: [(id: UInt64, score: Double)] = []
        for (id, entry) in model where entry.sparse && keep(id, entry.version) {
            guard let v = Self.sparse(id, entry.version) else { continue }
            let row = summed(v)
            let shared = row.keys.filter { q[$0] != nil }
            guard !shared.isEmpty else { continue }
            all.append((id, shared.reduce(0.0) { $0 + row[$1]! * q[$1]! }))
        }
        all.sort { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
        return Array(all.prefix(k))
    }

    /// Asserts that `hits` equal the reference exactly: the same ids in the same order, and scores
    /// (negated distances) equal.
    func assertSparseMatches(_ hits: [CollectionHit], _ want: [(id: UInt64, score: Double)], _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(hits.map(\.id), want.map(\.id), what, file: file, line: line)
        XCTAssertEqual(hits.map { Double(-$0.distance) }, want.map(\.score), what, file: file, line: line)
    }
}
