// Hybrid search: one dense query plus a sparse vector and/or BM25 text, each side searched with
// the same filter, fused by reciprocal rank fusion (score = sum over sides of 1 / (rrfK + rank),
// rank from 1, rrfK 60 as in Qdrant and the RRF paper) or by a weighted sum of per-side scores
// min-max normalised to [0, 1] over each side's candidates (dense similarity = -distance; a row
// missing from a side gets 0 there). Ties break by id.

import StrataFormat
import StrataIndex

/// How the sides of a hybrid query are combined.
public enum HybridFusion: Sendable, Equatable {
    /// Reciprocal rank fusion with constant `k` (60 by default).
    case rrf(k: Double = 60)
    /// Weighted sum of min-max normalised scores.
    case weighted(dense: Double, sparse: Double, text: Double)

    /// Throws `.invalidArgument` unless the fused score is finite for any input: the RRF constant
    /// finite and not negative, the weights finite with a finite sum of magnitudes (each side's
    /// normalised score lies in [0, 1], so the fused score is then bounded by that sum).
    public func validate() throws(StrataError) {
        switch self {
        case .rrf(let k):
            guard k.isFinite, k >= 0 else { throw StrataError(.invalidArgument, "the RRF constant must be finite and at least 0, got \(k)") }
        case .weighted(let d, let s, let t):
            guard d.isFinite, s.isFinite, t.isFinite, (abs(d) + abs(s) + abs(t)).isFinite else {
                throw StrataError(.invalidArgument, "fusion weights must be finite numbers with a finite sum, got \(d), \(s), \(t)")
            }
        }
    }

    /// Fuses ranked lists (one per side, best first, with that side's score, higher better) into one
    /// list sorted by fused score (higher first), then by id. RRF uses only the ranks: the sum over
    /// lists of 1 / (k + rank), rank from 1. Weighted sums each list's scores min-max normalised to
    /// [0, 1] (a list whose scores are all equal gives 1) times its weight, in the order dense,
    /// sparse, text; a missing list or a row missing from one contributes 0. Also usable to fuse
    /// results across segments.
    public func fuse(_ lists: [[(id: UInt64, score: Double)]]) -> [(id: UInt64, score: Double)] {
        var fused: [UInt64: Double] = [:]
        switch self {
        case .rrf(let k):
            for list in lists {
                for (i, hit) in list.enumerated() { fused[hit.id, default: 0] += 1 / (k + Double(i + 1)) }
            }
        case .weighted(let dense, let sparse, let text):
            for (list, weight) in zip(lists, [dense, sparse, text]) where !list.isEmpty {
                let lo = list.map(\.score).min()!, hi = list.map(\.score).max()!
                for (id, x) in list { fused[id, default: 0] += weight * (hi > lo ? (x - lo) / (hi - lo) : 1) }
            }
        }
        return fused.map { ($0.key, $0.value) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    }
}

/// A hybrid query.
public struct HybridQuery: Sendable {
    /// Dense query vector (optional).
    public var dense: [Float]?
    /// Sparse query (optional; needs a sparse_index).
    public var sparse: SparseVector?
    /// BM25 text and its column (optional; needs a text_index on the column).
    public var text: (column: String, query: String)?
    /// Filter applied to every side.
    public var filter: Filter?
    /// Results wanted.
    public var k: Int
    /// Candidates taken from each side before fusion.
    public var candidates: Int
    /// Fusion method.
    public var fusion: HybridFusion
    /// Dense-side knobs (list size).
    public var denseListSize: Int
    /// BM25 statistics to score with (default: this segment's own).
    public var textStatistics: BM25Statistics?

    /// Creates a query.
    public init(dense: [Float]? = nil, sparse: SparseVector? = nil, text: (column: String, query: String)? = nil,
                filter: Filter? = nil, k: Int = 10, candidates: Int = 50, fusion: HybridFusion = .rrf(),
                denseListSize: Int = 64, textStatistics: BM25Statistics? = nil) {
        self.dense = dense; self.sparse = sparse; self.text = text; self.filter = filter; self.k = k
        self.candidates = candidates; self.fusion = fusion; self.denseListSize = denseListSize; self.textStatistics = textStatistics
    }
}

/// One fused result.
public struct HybridHit: Sendable, Equatable {
    /// External id.
    public var id: UInt64
    /// Row.
    public var row: Int
    /// Fused score (higher is better).
    public var score: Double
    /// 1-based rank on the dense, sparse and text sides (nil: not among that side's candidates).
    public var denseRank: Int?, sparseRank: Int?, textRank: Int?
}

extension Segment {
    /// Runs each side of `query` (dense: filtered or plain graph search; sparse; BM25), each with the
    /// filter, and fuses them. Throws when no side is given, a side's index is missing, or the fusion
    /// parameters are not finite (``HybridFusion/validate()``).
    public func hybridSearch(_ query: HybridQuery) throws(StrataError) -> [HybridHit] {
        try checkOpen()
        guard query.k >= 1, query.candidates >= 1 else { throw StrataError(.invalidArgument, "k and candidates must be at least 1") }
        try query.fusion.validate()
        guard query.dense != nil || query.sparse != nil || query.text != nil else {
            throw StrataError(.invalidArgument, "a hybrid query needs a dense vector, a sparse vector or text")
        }
        let c = max(query.candidates, query.k)
        var dense: [(id: UInt64, row: Int, score: Double)] = []
        var sparse: [(id: UInt64, row: Int, score: Double)] = []
        var text: [(id: UInt64, row: Int, score: Double)] = []
        if let v = query.dense {
            let hits: [SearchHit]
            if let f = query.filter {
                hits = try search(query: v, filter: f, options: FilteredSearchOptions(k: c, listSize: max(query.denseListSize, c))).hits
            } else {
                hits = try search(query: v, options: SearchOptions(k: c, listSize: max(query.denseListSize, c)))
            }
            dense = hits.map { ($0.id, $0.row, -Double($0.distance)) }
        }
        if let s = query.sparse {
            sparse = try sparseSearch(query: s, k: c, filter: query.filter).map { ($0.id, $0.row, Double($0.score)) }
        }
        if let t = query.text {
            text = try bm25Search(column: t.column, text: t.query, k: c, filter: query.filter, statistics: query.textStatistics)
                .map { ($0.id, $0.row, Double($0.score)) }
        }
        let sides = [dense, sparse, text]
        let fused = query.fusion.fuse(sides.map { $0.map { ($0.id, $0.score) } })
        var rowOf: [UInt64: Int] = [:]
        var ranks: [[UInt64: Int]] = []
        for side in sides {
            var r: [UInt64: Int] = [:]
            for (i, h) in side.enumerated() { rowOf[h.id] = h.row; r[h.id] = i + 1 }
            ranks.append(r)
        }
        return fused.prefix(query.k).map {
            HybridHit(id: $0.id, row: rowOf[$0.id]!, score: $0.score, denseRank: ranks[0][$0.id], sparseRank: ranks[1][$0.id], textRank: ranks[2][$0.id])
        }
    }
}
