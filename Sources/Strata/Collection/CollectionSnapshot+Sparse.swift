// Sparse-vector search over a collection snapshot: every sealed segment's sparse_index (through its
// live rows) and the buffer's sparse vectors, merged by (score desc, id asc).
//
// Scores are dot products, higher is better. A `CollectionHit` carries a distance, smaller is
// better: a sparse hit's distance is the negated score (0 - score), so hits sort the same way as
// dense ones (distance ascending is score descending, ties by id) and `-hit.distance` is the score.
// A row matches a query when its sparse vector shares at least one dimension with the query (both
// weights non-zero); a row without a sparse vector never matches. Scores are float32 sums of
// products; a segment and the buffer may add the products in different orders, so scores of the
// same row can differ in the last bit between a buffered and a sealed copy (values that are exact in
// float32, such as small dyadic fractions, give equal scores wherever the row lies).
import StrataFormat
import StrataIndex

extension CollectionSnapshot {
    /// The `k` live rows whose sparse vectors have the highest dot product with `query`, optionally
    /// only rows that pass `filter`: highest score first, ties by id; `distance` is the negated
    /// score (see CollectionSnapshot+Sparse.swift). Rows without a sparse vector, or sharing no
    /// dimension with the query, are not returned. Throws `.invalidArgument` / `.nonFiniteValue` /
    /// `.invalidValue` for a bad query (`SparseVector.validate()`) or k < 1, `.unknownColumn` /
    /// `.typeMismatch` for a filter that does not fit the schema.
    public func sparseSearch(query: SparseVector, k: Int, filter: Filter? = nil) throws(StrataError) -> [CollectionHit] {
        if let filter { try filter.validate(against: schema) }
        guard k >= 1 else { throw StrataError(.invalidArgument, "k must be at least 1, got \(k)") }
        try query.validate()
        guard let q = query.canonical() else { return [] }
        let terms = Array(zip(q.indices, q.values))
        var all: [CollectionHit] = []
        for s in version.segments where s.segment.hasSparseIndex {
            let live = SegmentLiveRows(s, pending: mem.sealedDeletes)
            guard live.bitmapLiveCount > 0 else { continue }
            let admit: ((Int) -> Bool)? = live.hasDeletes ? { !live.isDeleted($0) } : nil
            let found: [ScoredHit]
            switch filter?.resolved(forSegment: s.segment.schema) {
            case nil, .all?: found = try s.segment.sparseTopK(terms, k: k, filter: nil, admitRow: admit, tiesById: true)
            case .none?: continue
            case .filter(let f)?: found = try s.segment.sparseTopK(terms, k: k, filter: f, admitRow: admit, tiesById: true)
            }
            all += found.map { CollectionHit(id: $0.id, distance: 0 - $0.score) }
        }
        all += sparseSearchBuffer(q, k: k, filter: filter)
        all.sort()
        return Array(all.prefix(k))
    }

    /// The buffer's side: every live buffered row with a sparse vector, scored exactly.
    private func sparseSearchBuffer(_ q: SparseVector, k: Int, filter: Filter?) -> [CollectionHit] {
        guard !mem.index.isEmpty else { return [] }
        var hits: [CollectionHit] = []
        for (c, chunk) in mem.chunks.enumerated() where chunk.hasSparse {
            for r in 0..<chunk.ids.count {
                guard let v = chunk.sparse(r), let score = v.canonicalDot(q) else { continue }
                let id = chunk.ids[r]
                guard mem.isLive(id: id, chunk: c, row: r) else { continue }
                if let filter, !filter.matches(chunk.values[r], schema: schema) { continue }
                hits.append(CollectionHit(id: id, distance: 0 - score))
            }
        }
        hits.sort()
        return Array(hits.prefix(k))
    }
}

extension StrataCollection {
    /// Sparse-vector search of the current snapshot: see ``CollectionSnapshot/sparseSearch(query:k:filter:)``
    /// (highest dot product first, ties by id; `distance` is the negated score).
    public func sparseSearch(query: SparseVector, k: Int, filter: Filter? = nil) throws(StrataError) -> [CollectionHit] {
        try snapshot().sparseSearch(query: query, k: k, filter: filter)
    }
}
