// Reciprocal rank fusion of prefetch results, as Qdrant computes it for `{"fusion": "rrf"}` and
// `{"rrf": {"k": k, "weights": [...]}}`.
//
// A point at 0-based position p in result list i scores w_i / (p + 1 + w_i (k - 1)); that is
// 1 / ((p + 1) / w_i + k - 1), summed over the lists it appears in (Qdrant's server and
// qdrant-client's local mode, qdrant_client/hybrid/fusion.py). With every weight 1 it is
// 1 / (p + k). Qdrant's default k is 2 (not the 60 of the original paper). A weight <= 0 adds
// nothing. Points are ordered by fused score, larger first; equal scores keep the order of first
// appearance (list 0 first), as the stable sort of the reference does.

/// Reciprocal rank fusion.
package enum RRF {
    /// Qdrant's default ranking constant.
    package static let defaultK = 2

    /// Fuses ranked id lists (best first) into at most `limit` (id, score) pairs, best first.
    /// `weights`, when given, has one weight per list (the parser checks the count).
    package static func fuse(_ lists: [[UInt64]], k: Int = defaultK, weights: [Double]? = nil, limit: Int) -> [(id: UInt64, score: Double)] {
        var score: [UInt64: Double] = [:]
        var order: [UInt64] = []
        for (i, list) in lists.enumerated() {
            let w = weights.flatMap { i < $0.count ? $0[i] : nil } ?? 1
            var seen = Set<UInt64>()
            for (p, id) in list.enumerated() where seen.insert(id).inserted {
                let s = w > 0 ? 1 / (Double(p + 1) / w + Double(k) - 1) : 0
                if let old = score[id] { score[id] = old + s } else { score[id] = s; order.append(id) }
            }
        }
        let ranked = order.enumerated().sorted { a, b in
            let sa = score[a.element, default: 0], sb = score[b.element, default: 0]
            return sa != sb ? sa > sb : a.offset < b.offset
        }
        return ranked.prefix(max(limit, 0)).map { (id: $0.element, score: score[$0.element, default: 0]) }
    }
}
