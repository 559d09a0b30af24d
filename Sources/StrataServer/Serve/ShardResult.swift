// What one shard answers to the coordinating node: points with their payload values in the
// shard's column order (a prefix of the collection's: columns are only ever appended), and the
// manifest generation the shard answered at. Between nodes it travels as compact JSON
// (`ShardWire.swift`); on the node that owns the shard it is passed as is.
import StrataFormat

/// One shard's answer.
package struct ShardResult: Sendable {
    /// Manifest generation of the shard's snapshot.
    package var generation: UInt64
    /// The points (search: best first; scroll: by id).
    package var points: [PointOut]
    /// Search: each point's Strata distance (smaller is closer), which the merge orders by: scores
    /// are a rounding of it (`1 - d`, `sqrt(d)` in Float) and may tie where distances do not.
    package var distances: [Float] = []
    /// A count (count requests), or rows deleted (delete requests).
    package var count: Int = 0
    /// Segments of the shard's snapshot (collection info).
    package var segments: Int = 0
    /// Whether a read was answered by a read-only handle (or a writer that can no longer write)
    /// rather than the shard's live writer: `strata-shards` marks it `(cache)`.
    package var fromCache = false

    package init(generation: UInt64, points: [PointOut] = [], count: Int = 0, segments: Int = 0) {
        self.generation = generation
        self.points = points
        self.count = count
        self.segments = segments
    }

    /// The points with payloads padded with nulls to `columnCount` columns.
    package func padded(to columnCount: Int) -> [PointOut] {
        points.map { p in
            guard var values = p.payload, values.count < columnCount else { return p }
            values += Array(repeating: .null, count: columnCount - values.count)
            var q = p
            q.payload = values
            return q
        }
    }
}
