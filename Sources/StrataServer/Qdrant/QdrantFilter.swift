// Qdrant's filter JSON, parsed into a tree that keeps what Strata's own `Filter` cannot say
// (has_id, is_empty, match except, min_should), then bound to a collection's columns
// (FilterBinding.swift) into a Strata `Filter` plus id sets.
//
// Supported (everything else is a 400 naming the condition):
//   {"must" | "should" | "must_not": [condition, ...] or one condition, "min_should": {"conditions": [...], "min_count": n}}
//   {"key": k, "match": {"value": v}}      v: string, integer, boolean (a float too)
//   {"key": k, "match": {"any": [v, ...]}} {"key": k, "match": {"except": [v, ...]}}
//   {"key": k, "match": {"prefix": "s"}}
//   {"key": k, "range": {"gt" | "gte" | "lt" | "lte": number or string}}   strings compare as bytes
//   {"key": k, "is_null": true} {"key": k, "is_empty": true}  {"is_null": {"key": k}} {"is_empty": {"key": k}}
//   {"has_id": [id, ...]}                  only directly in the top-level must / must_not
//   a nested filter as a condition
// Refused: match text / text_any / phrase / substring (full-text), geo_*, values_count, nested,
// has_vector, datetime_range objects other than plain strings, formula conditions.

import Strata
import StrataFormat

/// One condition of a Qdrant filter.
package indirect enum QdrantCondition: Sendable, Equatable {
    /// The key equals the value (any item of a list).
    case match(key: String, value: FilterValue)
    /// The key equals one of the values.
    case matchAny(key: String, values: [FilterValue])
    /// The key holds a value and it is none of the values.
    case matchExcept(key: String, values: [FilterValue])
    /// The string key starts with the prefix.
    case prefix(key: String, prefix: String)
    /// The key lies in the range (an empty range: the key holds a value).
    case range(key: String, FilterRange)
    /// The key is null or absent.
    case isNull(key: String)
    /// The key is null, absent or an empty list.
    case isEmpty(key: String)
    /// The point id is one of these.
    case hasId(Set<UInt64>)
    /// At least `minCount` of the conditions hold.
    case minShould(conditions: [QdrantCondition], minCount: Int)
    /// A nested filter.
    case filter(QdrantFilter)
}

/// A Qdrant filter: all of `must`, at least one of `should` (when not empty), none of `mustNot`.
package struct QdrantFilter: Sendable, Equatable {
    /// Conditions that must all hold.
    package var must: [QdrantCondition] = []
    /// Conditions of which one must hold (ignored when empty).
    package var should: [QdrantCondition] = []
    /// Conditions none of which may hold.
    package var mustNot: [QdrantCondition] = []
    /// The JSON it was parsed from (nodes forward it: each shard binds it to its own columns).
    package var source: JSONValue = .object([:])

    /// Creates a filter.
    package init(must: [QdrantCondition] = [], should: [QdrantCondition] = [], mustNot: [QdrantCondition] = []) {
        self.must = must; self.should = should; self.mustNot = mustNot
    }

    /// Equal conditions (the JSON's spelling aside).
    package static func == (a: QdrantFilter, b: QdrantFilter) -> Bool {
        a.must == b.must && a.should == b.should && a.mustNot == b.mustNot
    }

    /// Parses a `filter` field. `path` names it in messages (`filter`, `prefetch[1].filter`).
    package static func parse(_ v: JSONValue, _ path: String, limits: ServerLimits) throws(QdrantError) -> QdrantFilter {
        var f = try parseFilter(v, path, level: 1, limits: limits)
        f.source = v
        return f
    }

    private static func parseFilter(_ v: JSONValue, _ path: String, level: Int, limits: ServerLimits) throws(QdrantError) -> QdrantFilter {
        guard level <= limits.maxFilterDepth else {
            throw .format(path, "filters nest more than \(limits.maxFilterDepth) levels deep (the limit)")
        }
        let o = try RequestBody.object(v, path, allowed: ["must", "should", "must_not", "min_should"])
        var f = QdrantFilter()
        f.must = try list(o, "must", path, level: level, limits: limits)
        f.should = try list(o, "should", path, level: level, limits: limits)
        f.mustNot = try list(o, "must_not", path, level: level, limits: limits)
        if let ms = RequestBody.value(o, "min_should") {
            let p = "\(path).min_should"
            let m = try RequestBody.object(ms, p, allowed: ["conditions", "min_count"])
            guard let conds = try RequestBody.array(m, "conditions", p) else { throw .format(p, "missing field 'conditions'") }
            guard let count = try RequestBody.int(m, "min_count", p, in: 0...Int64(Int32.max)) else { throw .format(p, "missing field 'min_count'") }
            var parsed: [QdrantCondition] = []
            for (i, c) in conds.enumerated() { parsed.append(try condition(c, "\(p).conditions[\(i)]", level: level + 1, limits: limits)) }
            f.must.append(.minShould(conditions: parsed, minCount: count))
        }
        return f
    }

    private static func list(_ o: [String: JSONValue], _ key: String, _ path: String, level: Int, limits: ServerLimits) throws(QdrantError) -> [QdrantCondition] {
        guard let v = RequestBody.value(o, key) else { return [] }
        let p = "\(path).\(key)"
        switch v {
        case .object: return [try condition(v, p, level: level, limits: limits)]   // one condition, not a list
        case .array(let a):
            var out: [QdrantCondition] = []
            for (i, c) in a.enumerated() { out.append(try condition(c, "\(p)[\(i)]", level: level, limits: limits)) }
            return out
        default: throw .format(p, "expected a condition or a list of conditions, got \(v.kindName)")
        }
    }

    private static let filterKeys: Set<String> = ["must", "should", "must_not", "min_should"]

    private static func condition(_ v: JSONValue, _ path: String, level: Int, limits: ServerLimits) throws(QdrantError) -> QdrantCondition {
        guard case .object(let o) = v else { throw .format(path, "expected a condition object, got \(v.kindName)") }
        if o.keys.allSatisfy(filterKeys.contains) { return .filter(try parseFilter(v, path, level: level + 1, limits: limits)) }
        if o["key"] != nil { return try fieldCondition(o, path) }
        if let ids = o["has_id"] {
            guard o.count == 1 else { throw .format(path, "has_id takes no other fields") }
            return .hasId(Set(try PointFields.ids(ids, "\(path).has_id", limit: limits.maxPointsPerRequest)))
        }
        for name in ["is_null", "is_empty"] {
            if let body = o[name] {
                guard o.count == 1 else { throw .format(path, "\(name) takes no other fields") }
                let inner = try RequestBody.object(body, "\(path).\(name)", allowed: ["key"])
                guard let key = try RequestBody.string(inner, "key", "\(path).\(name)") else {
                    throw .format("\(path).\(name)", "missing field 'key'")
                }
                return name == "is_null" ? .isNull(key: key) : .isEmpty(key: key)
            }
        }
        for name in ["nested", "has_vector"] where o[name] != nil {
            throw .wrongInput("\(path): the '\(name)' condition is not supported")
        }
        throw .format(path, "unknown condition with fields \(o.keys.sorted()) (expected key, has_id, is_null, is_empty or a nested filter)")
    }

    private static func fieldCondition(_ o: [String: JSONValue], _ path: String) throws(QdrantError) -> QdrantCondition {
        _ = try RequestBody.object(.object(o), path, allowed: ["key", "match", "range", "is_null", "is_empty",
                                                             "geo_bounding_box", "geo_radius", "geo_polygon", "values_count"])
        guard let key = try RequestBody.string(o, "key", path) else { throw .format(path, "missing field 'key'") }
        for name in ["geo_bounding_box", "geo_radius", "geo_polygon", "values_count"] {
            try RequestBody.refuse(o, name, path, "this server has no geo or value-count conditions")
        }
        var parts: [QdrantCondition] = []
        if let m = RequestBody.value(o, "match") { parts.append(try match(key, m, "\(path).match")) }
        if let r = RequestBody.value(o, "range") { parts.append(.range(key: key, try range(r, "\(path).range"))) }
        if let b = try RequestBody.bool(o, "is_null", path) { parts.append(b ? .isNull(key: key) : .filter(QdrantFilter(mustNot: [.isNull(key: key)]))) }
        if let b = try RequestBody.bool(o, "is_empty", path) { parts.append(b ? .isEmpty(key: key) : .filter(QdrantFilter(mustNot: [.isEmpty(key: key)]))) }
        guard !parts.isEmpty else { throw .format(path, "condition on '\(key)' has no match, range, is_null or is_empty") }
        return parts.count == 1 ? parts[0] : .filter(QdrantFilter(must: parts))     // all set parts must hold
    }

    private static func match(_ key: String, _ v: JSONValue, _ path: String) throws(QdrantError) -> QdrantCondition {
        guard case .object(let m) = v, m.count == 1, let (name, body) = m.first else {
            throw .format(path, "expected one of {\"value\": v}, {\"any\": [...]}, {\"except\": [...]}, {\"prefix\": s}")
        }
        switch name {
        case "value": return .match(key: key, value: try scalar(body, "\(path).value"))
        case "any": return .matchAny(key: key, values: try scalars(body, "\(path).any"))
        case "except": return .matchExcept(key: key, values: try scalars(body, "\(path).except"))
        case "prefix":
            guard case .string(let s) = body else { throw .format("\(path).prefix", "expected a string, got \(body.kindName)") }
            return .prefix(key: key, prefix: s)
        case "text", "text_any", "phrase", "substring":
            throw .wrongInput("\(path).\(name): full-text and substring matching are not supported (use match value, any, except or prefix)")
        default:
            throw .format(path, "unknown field '\(name)' (value, any, except, prefix)")
        }
    }

    private static func scalars(_ v: JSONValue, _ path: String) throws(QdrantError) -> [FilterValue] {
        guard case .array(let a) = v else { throw .format(path, "expected a list of values, got \(v.kindName)") }
        var out: [FilterValue] = []
        for (i, x) in a.enumerated() { out.append(try scalar(x, "\(path)[\(i)]")) }
        return out
    }

    private static func scalar(_ v: JSONValue, _ path: String) throws(QdrantError) -> FilterValue {
        switch v {
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .float(d)
        case .string(let s): return .string(s)
        default: throw .format(path, "expected a string, number or boolean, got \(v.kindName)")
        }
    }

    private static func range(_ v: JSONValue, _ path: String) throws(QdrantError) -> FilterRange {
        let o = try RequestBody.object(v, path, allowed: ["gt", "gte", "lt", "lte"])
        var r = FilterRange()
        for (name, x) in o {
            if case .null = x { continue }
            let s = try scalar(x, "\(path).\(name)")
            if case .bool = s { throw .format("\(path).\(name)", "a range bound must be a number or a string") }
            switch name {
            case "gt": r.gt = s
            case "gte": r.gte = s
            case "lt": r.lt = s
            default: r.lte = s
            }
        }
        return r
    }
}
