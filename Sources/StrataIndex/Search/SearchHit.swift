// The result type every search returns: an id, its row in the segment and its distance.

import StrataFormat

/// One search result.
public struct SearchHit: Sendable, Equatable, Comparable {
    /// External id.
    public var id: UInt64
    /// Row within the segment.
    public var row: Int
    /// Distance under the segment's metric (smaller is closer; see `DistanceMetric`).
    public var distance: Float

    /// Creates a hit.
    public init(id: UInt64, row: Int, distance: Float) {
        self.id = id
        self.row = row
        self.distance = distance
    }

    /// Orders by distance, then by id (deterministic ties).
    public static func < (a: SearchHit, b: SearchHit) -> Bool {
        a.distance != b.distance ? a.distance < b.distance : a.id < b.id
    }
}
