// The bounds the Qdrant request parsers enforce, so that a small body never asks for unbounded
// work or memory: each is checked while parsing and reported as a 400 naming the field.

/// Limits on what one request may ask for. The defaults suit one node; `strata serve` flags may
/// change them.
package struct ServerLimits: Sendable, Equatable {
    /// The most points one upsert (list or batch form), delete-by-ids or retrieve may name.
    package var maxPointsPerRequest: Int
    /// The largest `limit` (and `limit + offset`) of a search, query, prefetch or scroll.
    package var maxLimit: Int
    /// The most searches in one `search/batch` or `query/batch`, and prefetches in one query.
    package var maxBatchSearches: Int
    /// The deepest nesting of filters (the top-level filter is level 1; each nested
    /// must/should/must_not filter, `min_should` or condition list adds one).
    package var maxFilterDepth: Int
    /// The most shards a collection may be created with.
    package var maxShardNumber: Int
    /// The most conditions a `min_should` may expand into (it becomes an OR of ANDs).
    package var maxMinShouldCombinations: Int
    /// The most payload keys (columns) a collection may have: every key is a column of every row,
    /// so a small body of many distinct keys would otherwise allocate points x keys values.
    package var maxPayloadKeys: Int

    /// Creates limits; every default is the documented one.
    package init(maxPointsPerRequest: Int = 10_000, maxLimit: Int = 10_000, maxBatchSearches: Int = 100,
                 maxFilterDepth: Int = 32, maxShardNumber: Int = 256, maxMinShouldCombinations: Int = 256,
                 maxPayloadKeys: Int = 1024) {
        self.maxPointsPerRequest = maxPointsPerRequest
        self.maxLimit = maxLimit
        self.maxBatchSearches = maxBatchSearches
        self.maxFilterDepth = maxFilterDepth
        self.maxShardNumber = maxShardNumber
        self.maxMinShouldCombinations = maxMinShouldCombinations
        self.maxPayloadKeys = maxPayloadKeys
    }

    /// The JSON nesting (arrays and objects) a body within these limits can need: two per filter
    /// level, plus the request's own structure (query -> prefetch -> filter, points -> payload).
    package var maxJSONDepth: Int { 2 * maxFilterDepth + 16 }
}
