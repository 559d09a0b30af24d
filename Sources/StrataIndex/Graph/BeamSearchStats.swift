// Work counters of one beam search, reported by `strata bench` and `Segment.searchWithStats`.

/// Counters of the last search, for `strata bench` and tuning.
public struct BeamSearchStats: Sendable, Equatable {
    /// Hops (beams expanded).
    public var hops = 0
    /// Records read (nodes expanded, each with one exact distance when it passes the row filter).
    public var recordsRead = 0
    /// Of ``recordsRead``, those served by the node cache.
    public var cachedRecords = 0
    /// Nodes expanded from a sector read for another node (block-aware layout, direct I/O); not in ``recordsRead``.
    public var blockExpansions = 0
    /// Nodes a sector read brought that did not make the list: reranked exactly, not expanded.
    package var blockReranked = 0
    /// PQ distances computed.
    public var pqDistances = 0
    /// Rows tested against the row filter (0 without one).
    package var rowsTested = 0
    /// Exact distances computed (the records read of passing nodes).
    package var exactDistances = 0
    /// Of ``recordsRead``, nodes failing the row filter expanded to keep the traversal connected.
    package var nonPassingExpanded = 0
}
