// Qdrant's distance names and scores, against Strata's metrics and distances.
//
// Strata distances are smaller-is-closer: `.l2` is the squared Euclidean distance, `.innerProduct`
// is -dot, `.cosine` is 1 - dot of unit vectors. Qdrant scores: Cosine is the cosine similarity
// and Dot the dot product (larger is closer), Euclid the Euclidean distance, not squared (smaller
// is closer). A score_threshold keeps scores >= it for Cosine and Dot, <= it for Euclid.

import StrataFormat

/// A Qdrant distance: `Cosine`, `Euclid` or `Dot` (Manhattan is refused).
package enum QdrantDistance: String, Sendable, CaseIterable {
    /// Cosine similarity (Strata `.cosine`).
    case cosine = "Cosine"
    /// Euclidean distance (Strata `.l2`, squared).
    case euclid = "Euclid"
    /// Dot product (Strata `.innerProduct`, negated).
    case dot = "Dot"

    /// The Qdrant distance of a Strata metric.
    package init(_ metric: DistanceMetric) {
        switch metric {
        case .cosine: self = .cosine
        case .l2: self = .euclid
        case .innerProduct: self = .dot
        }
    }

    /// Parses Qdrant's spelling (`Cosine`, `Euclid`, `Dot`); `path` names the field.
    package static func parse(_ name: String, _ path: String) throws(QdrantError) -> QdrantDistance {
        if let d = QdrantDistance(rawValue: name) { return d }
        if name == "Manhattan" { throw .wrongInput("\(path): the Manhattan distance is not supported (Cosine, Euclid, Dot)") }
        throw .format(path, "unknown distance '\(name)' (Cosine, Euclid, Dot)")
    }

    /// The Strata metric.
    package var metric: DistanceMetric {
        switch self {
        case .cosine: return .cosine
        case .euclid: return .l2
        case .dot: return .innerProduct
        }
    }

    /// Whether a larger score is closer (Cosine, Dot) or a smaller one (Euclid).
    package var higherIsBetter: Bool { self != .euclid }

    /// The Qdrant score of a Strata distance.
    package func score(distance: Float) -> Float {
        switch self {
        case .cosine: return 1 - distance
        case .euclid: return max(distance, 0).squareRoot()
        case .dot: return -distance
        }
    }

    /// The Strata distance of a Qdrant score (Euclid: a negative score has no distance; it gives -1,
    /// below every distance).
    package func distance(score: Float) -> Float {
        switch self {
        case .cosine: return 1 - score
        case .euclid: return score < 0 ? -1 : score * score
        case .dot: return -score
        }
    }

    /// Whether `score` passes `score_threshold`: >= for Cosine and Dot, <= for Euclid.
    package func passes(score: Float, threshold: Float) -> Bool {
        higherIsBetter ? score >= threshold : score <= threshold
    }

    /// The largest Strata distance whose score passes `threshold` (a search may stop beyond it).
    /// Rounding may put a distance at the bound on either side: compare scores with ``passes`` for
    /// the final answer.
    package func distanceBound(threshold: Float) -> Float { distance(score: threshold) }
}
