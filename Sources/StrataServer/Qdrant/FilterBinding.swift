// Binding a Qdrant filter to a collection's columns: the Strata `Filter` the engine evaluates,
// plus the id sets of top-level has_id conditions.
//
// Qdrant's payload is schemaless, so a filter may name a key no point has, or compare a key with a
// value of another type: Qdrant then matches nothing (and its negation everything), and so does
// the bound filter, instead of Strata's unknown-column / type-mismatch errors. Constants are
// expressed with filters the engine already evaluates: TRUE is an empty nested filter, FALSE is
// `must_not` of it.
//
// Semantics this layer fixes where typed, nullable columns differ from Qdrant's JSON:
// - a point without a key and a point whose key is null are the same (the column is null), so
//   is_null holds for both (Qdrant's is_null holds only for an explicit null);
// - is_empty holds for null/absent keys and for empty string lists;
// - match except holds when the key has a value and it is none of the values (lists: refused).
// has_id is supported directly in the top-level must (ids intersected) and must_not (excluded);
// elsewhere it is a 400.

import Strata
import StrataFormat

/// A filter bound to a collection's columns.
package struct BoundFilter: Sendable, Equatable {
    /// The payload part, valid against the columns it was bound to.
    package var filter: Filter
    /// When set, only these ids may match (top-level must has_id, intersected).
    package var ids: Set<UInt64>?
    /// Ids that may not match (top-level must_not has_id).
    package var excludedIds: Set<UInt64>

    /// A filter that admits every point.
    package static let all = BoundFilter(filter: Filter(), ids: nil, excludedIds: [])

    /// Creates a bound filter.
    package init(filter: Filter, ids: Set<UInt64>?, excludedIds: Set<UInt64>) {
        self.filter = filter; self.ids = ids; self.excludedIds = excludedIds
    }

    /// Whether the id part admits `id` (the payload part is the engine's).
    package func admits(id: UInt64) -> Bool {
        if excludedIds.contains(id) { return false }
        if let ids { return ids.contains(id) }
        return true
    }

    /// Both filters (a prefetch's filter and the query's).
    package func and(_ other: BoundFilter) -> BoundFilter {
        let payload: Filter
        if filter.isEmpty { payload = other.filter } else if other.filter.isEmpty { payload = filter } else {
            payload = Filter(must: [.filter(filter), .filter(other.filter)])
        }
        let ids: Set<UInt64>? = switch (self.ids, other.ids) {
        case (nil, nil): nil
        case (let a?, nil): a
        case (nil, let b?): b
        case (let a?, let b?): a.intersection(b)
        }
        return BoundFilter(filter: payload, ids: ids, excludedIds: excludedIds.union(other.excludedIds))
    }
}

/// Constant filters.
extension FilterCondition {
    /// Holds for every row.
    package static let alwaysTrue = FilterCondition.filter(Filter())
    /// Holds for no row.
    package static let alwaysFalse = FilterCondition.filter(Filter(mustNot: [.filter(Filter())]))
}

extension QdrantFilter {
    /// Binds the filter to `columns` (the collection's current columns). Throws 400 for has_id
    /// below the top level, match except on a list column, or a min_should that expands into more
    /// than `limits.maxMinShouldCombinations` conjunctions.
    package func bind(columns: [ColumnSpec], limits: ServerLimits) throws(QdrantError) -> BoundFilter {
        var byName: [String: ColumnType] = [:]
        for c in columns { byName[c.name] = c.type }
        let binder = Binder(columns: byName, limits: limits)
        var ids: Set<UInt64>? = nil
        var excluded = Set<UInt64>()
        var must: [QdrantCondition] = [], mustNot: [QdrantCondition] = []
        for c in self.must {
            if case .hasId(let s) = c { ids = ids.map { $0.intersection(s) } ?? s } else { must.append(c) }
        }
        for c in self.mustNot {
            if case .hasId(let s) = c { excluded.formUnion(s) } else { mustNot.append(c) }
        }
        let f = Filter(must: try must.map { c throws(QdrantError) in try binder.bind(c) },
                       should: try should.map { c throws(QdrantError) in try binder.bind(c) },
                       mustNot: try mustNot.map { c throws(QdrantError) in try binder.bind(c) })
        return BoundFilter(filter: f, ids: ids, excludedIds: excluded)
    }
}

private struct Binder {
    let columns: [String: ColumnType]
    let limits: ServerLimits

    func bind(_ filter: QdrantFilter) throws(QdrantError) -> Filter {
        Filter(must: try filter.must.map { c throws(QdrantError) in try bind(c) },
               should: try filter.should.map { c throws(QdrantError) in try bind(c) },
               mustNot: try filter.mustNot.map { c throws(QdrantError) in try bind(c) })
    }

    func bind(_ c: QdrantCondition) throws(QdrantError) -> FilterCondition {
        switch c {
        case .filter(let f): return .filter(try bind(f))
        case .hasId:
            throw .wrongInput("has_id is supported only directly in the filter's top-level must or must_not")
        case .match(let key, let v):
            guard let t = columns[key], Self.fits(v, t) else { return .alwaysFalse }
            return .match(key: key, value: v)
        case .matchAny(let key, let vs):
            guard let t = columns[key] else { return .alwaysFalse }
            let ok = vs.filter { Self.fits($0, t) }
            return ok.isEmpty ? .alwaysFalse : .matchAny(key: key, values: ok)
        case .matchExcept(let key, let vs):
            guard let t = columns[key] else { return .alwaysFalse }
            guard t != .stringList else {
                throw .wrongInput("match except on '\(key)', a list of strings, is not supported (use must_not with match any)")
            }
            let ok = vs.filter { Self.fits($0, t) }
            return .filter(Filter(mustNot: [.isNull(key: key)] + (ok.isEmpty ? [] : [.matchAny(key: key, values: ok)])))
        case .prefix(let key, let p):
            guard let t = columns[key], t == .string || t == .stringList else { return .alwaysFalse }
            return .prefix(key: key, prefix: p, caseInsensitive: false)
        case .range(let key, let r):
            guard let t = columns[key], t != .bool else { return .alwaysFalse }
            let bounds = [r.gt, r.gte, r.lt, r.lte].compactMap { $0 }
            guard bounds.allSatisfy({ Self.fits($0, t) }) else { return .alwaysFalse }
            if bounds.isEmpty { return .filter(Filter(mustNot: [.isNull(key: key)])) }   // any value
            return .range(key: key, r)
        case .isNull(let key):
            return columns[key] == nil ? .alwaysTrue : .isNull(key: key)   // absent counts as null
        case .isEmpty(let key):
            guard let t = columns[key] else { return .alwaysTrue }
            // An empty list has no item with the prefix "", and null matches no item condition.
            return t == .stringList ? .filter(Filter(mustNot: [.prefix(key: key, prefix: "", caseInsensitive: false)])) : .isNull(key: key)
        case .minShould(let conds, let k):
            return try minShould(conds.map { c throws(QdrantError) in try bind(c) }, k)
        }
    }

    /// At least `k` of `conds`: an OR over the k-subsets, each an AND.
    private func minShould(_ conds: [FilterCondition], _ k: Int) throws(QdrantError) -> FilterCondition {
        if k <= 0 { return .alwaysTrue }
        if k > conds.count { return .alwaysFalse }
        if k == 1 { return .filter(Filter(should: conds)) }
        if k == conds.count { return .filter(Filter(must: conds)) }
        guard Self.binomial(conds.count, k, cap: limits.maxMinShouldCombinations) <= limits.maxMinShouldCombinations else {
            throw .wrongInput("min_should with min_count \(k) of \(conds.count) conditions expands beyond \(limits.maxMinShouldCombinations) combinations (the limit)")
        }
        var alternatives: [FilterCondition] = []
        var pick: [Int] = Array(0..<k)
        while true {
            alternatives.append(.filter(Filter(must: pick.map { conds[$0] })))
            var i = k - 1
            while i >= 0, pick[i] == conds.count - k + i { i -= 1 }
            if i < 0 { break }
            pick[i] += 1
            for j in (i + 1)..<k { pick[j] = pick[j - 1] + 1 }
        }
        return .filter(Filter(should: alternatives))
    }

    /// C(n, k), stopping once it exceeds `cap`.
    static func binomial(_ n: Int, _ k: Int, cap: Int) -> Int {
        var r = 1
        for i in 0..<min(k, n - k) {
            r = r * (n - i) / (i + 1)
            if r > cap { return cap + 1 }
        }
        return r
    }

    /// Whether a filter value can be compared with a column of type `t` (Strata's validation rule).
    static func fits(_ v: FilterValue, _ t: ColumnType) -> Bool {
        switch (v, t) {
        case (.int, .int64), (.int, .float64), (.float, .int64), (.float, .float64): return true
        case (.string, .string), (.string, .stringList): return true
        case (.bool, .bool): return true
        default: return false
        }
    }
}
