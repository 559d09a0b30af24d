// A naive exact-search reference: the distances as the library defines them, in Double.
import Foundation
import Strata

/// Distance as the library defines it (smaller is closer), in Double, over the stored vectors.
package func referenceDistance(_ query: [Float], _ v: [Float], metric: DistanceMetric) -> Double {
    switch metric {
    case .l2:
        return zip(query, v).reduce(0.0) { let d = Double($1.0) - Double($1.1); return $0 + d * d }
    case .innerProduct:
        return -zip(query, v).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    case .cosine:
        let n = query.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        return 1 - zip(query, v).reduce(0.0) { $0 + Double($1.0) / n * Double($1.1) }
    }
}

/// Naive top-k: every admitted row's distance, sorted by (distance, id), first k.
package func referenceSearch(vectors: [[Float]], ids: [UInt64], query: [Float], k: Int, metric: DistanceMetric,
                     filter: (Int) -> Bool = { _ in true }) -> [(row: Int, id: UInt64, distance: Double)] {
    var all: [(row: Int, id: UInt64, distance: Double)] = []
    for (r, v) in vectors.enumerated() where filter(r) {
        all.append((r, ids[r], referenceDistance(query, v, metric: metric)))
    }
    all.sort { $0.distance != $1.distance ? $0.distance < $1.distance : $0.id < $1.id }
    return Array(all.prefix(k))
}
