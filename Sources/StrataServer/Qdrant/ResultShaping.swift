// From merged engine results to what a Qdrant request asked for: the search list size, the score
// threshold, offset and limit, reciprocal-rank fusion of prefetches, and scroll pages. Pure
// functions, so that the cluster code only merges shard answers and calls these.

/// A hit as the engine ranks it: an id and a Strata distance (smaller is closer).
package typealias EngineHit = (id: UInt64, distance: Float)

/// A hit as Qdrant reports it: an id and a Qdrant score.
package typealias ScoredHit = (id: UInt64, score: Float)

extension VectorSearch {
    /// Results every shard must return so that the merged list can skip `offset` and fill `limit`.
    package var candidates: Int { offset + limit }

    /// The search list size: `params.hnsw_ef` when given, else `defaultListSize`, and never
    /// fewer than ``candidates`` (a beam narrower than the answer cannot fill it).
    package func listSize(default defaultListSize: Int) -> Int {
        max(params.hnswEf ?? defaultListSize, candidates)
    }

    /// The answer from `hits`, merged over shards and sorted by (distance, id): scores in Qdrant's
    /// terms, those failing `score_threshold` dropped, then `offset` skipped and `limit` kept.
    package func select(_ hits: [EngineHit], distance: QdrantDistance) -> [ScoredHit] {
        var out: [ScoredHit] = []
        var skipped = 0
        for h in hits {
            let s = distance.score(distance: h.distance)
            if let t = scoreThreshold, !distance.passes(score: s, threshold: t) { continue }
            if skipped < offset { skipped += 1; continue }
            out.append((id: h.id, score: s))
            if out.count == limit { break }
        }
        return out
    }
}

extension FusionQuery {
    /// The fused answer from each prefetch's ids (best first, as its search returned them):
    /// reciprocal rank fusion with `k` and `weights`, fused scores failing `score_threshold`
    /// (>=) dropped, `offset` skipped, `limit` kept.
    package func fuse(_ prefetchResults: [[UInt64]]) -> [(id: UInt64, score: Double)] {
        let fused = RRF.fuse(prefetchResults, k: k, weights: weights, limit: Int.max)
        let kept = fused.filter { hit in scoreThreshold.map { hit.score >= $0 } ?? true }
        return Array(kept.dropFirst(offset).prefix(limit))
    }
}

extension ScrollRequest {
    /// A page from the admitted points with id >= `offset` in id order, of which the caller read
    /// up to `limit + 1`: the first `limit`, and the next page's offset (the id after them), nil on
    /// the last page.
    package func paginate<T>(_ sorted: [T], id: (T) -> UInt64) -> (page: [T], nextPageOffset: UInt64?) {
        guard sorted.count > limit else { return (sorted, nil) }
        return (Array(sorted.prefix(limit)), id(sorted[limit]))
    }
}
