// The filter language: a Swift value type and its JSON form (Qdrant's shape).
//
//   {"must":     [ condition, ... ],      every one must hold
//    "should":   [ condition, ... ],      at least one must hold (when the list is not empty)
//    "must_not": [ condition, ... ]}      none may hold
//
// A condition is a nested filter (an object with must/should/must_not) or one of
//   {"key": "month", "match": {"value": "2024-05"}}           equality (string, int, float, bool)
//   {"key": "tags",  "match": {"any": ["a", "b"]}}             any of the values
//   {"key": "month", "range": {"gte": "2024-01", "lte": "2024-12"}}   gt / gte / lt / lte; numbers,
//                                                              or strings compared as UTF-8 bytes
//   {"key": "name",  "prefix": "py"}   or   {"key": "name", "prefix": {"value": "py", "case_insensitive": true}}
//   {"is_null": {"key": "rank"}}       or   {"key": "rank", "is_null": true}
//
// Semantics per row: a null value matches nothing but is_null (so must_not match keeps null rows);
// for string_list columns a condition holds when it holds for any item. Unknown fields, unknown
// columns and values of the wrong type are errors (`.invalidArgument`, `.unknownColumn`,
// `.typeMismatch`), never silently ignored.

import StrataFormat
import StrataIndex

/// A scalar in a filter condition.
public enum FilterValue: Sendable, Hashable, CustomStringConvertible {
    /// An integer.
    case int(Int64)
    /// A float.
    case float(Double)
    /// A string (compared as UTF-8 bytes).
    case string(String)
    /// A boolean.
    case bool(Bool)

    /// JSON-like text of the value.
    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .float(let v): return String(v)
        case .string(let s): return "\"\(s)\""
        case .bool(let b): return String(b)
        }
    }
}

/// Bounds of a range condition; nil bounds are open.
public struct FilterRange: Sendable, Hashable {
    /// Strictly greater than.
    public var gt: FilterValue?
    /// Greater than or equal.
    public var gte: FilterValue?
    /// Strictly less than.
    public var lt: FilterValue?
    /// Less than or equal.
    public var lte: FilterValue?

    /// Creates a range.
    public init(gt: FilterValue? = nil, gte: FilterValue? = nil, lt: FilterValue? = nil, lte: FilterValue? = nil) {
        self.gt = gt; self.gte = gte; self.lt = lt; self.lte = lte
    }

    var bounds: [FilterValue] { [gt, gte, lt, lte].compactMap { $0 } }
}

/// One condition of a filter.
public indirect enum FilterCondition: Sendable, Hashable {
    /// The column equals the value (any item, for string lists).
    case match(key: String, value: FilterValue)
    /// The column equals one of the values.
    case matchAny(key: String, values: [FilterValue])
    /// The column lies in the range.
    case range(key: String, FilterRange)
    /// The string column starts with the prefix (ASCII case folded when `caseInsensitive`).
    case prefix(key: String, prefix: String, caseInsensitive: Bool)
    /// The column is null.
    case isNull(key: String)
    /// A nested filter.
    case filter(Filter)

    /// The column this condition reads (nil for a nested filter).
    public var key: String? {
        switch self {
        case .match(let k, _), .matchAny(let k, _), .range(let k, _), .prefix(let k, _, _), .isNull(let k): return k
        case .filter: return nil
        }
    }
}

/// A boolean combination of conditions (Qdrant's filter): all of ``must``, at least one of
/// ``should`` (if any), none of ``mustNot``. The empty filter admits every row.
public struct Filter: Sendable, Hashable {
    /// Conditions that must all hold.
    public var must: [FilterCondition]
    /// Conditions of which at least one must hold (ignored when empty).
    public var should: [FilterCondition]
    /// Conditions none of which may hold.
    public var mustNot: [FilterCondition]

    /// Creates a filter.
    public init(must: [FilterCondition] = [], should: [FilterCondition] = [], mustNot: [FilterCondition] = []) {
        self.must = must; self.should = should; self.mustNot = mustNot
    }

    /// A filter of one condition.
    public static func only(_ c: FilterCondition) -> Filter { Filter(must: [c]) }

    /// Whether the filter admits every row.
    public var isEmpty: Bool { must.isEmpty && should.isEmpty && mustNot.isEmpty }
}

// MARK: - JSON

extension Filter {
    /// The deepest nesting of filters the JSON form may have: the top-level filter is level 1, and
    /// each nested filter (a condition with must / should / must_not) one more. Deeper filters are
    /// rejected with a message naming this limit.
    public static let maximumNesting = 64

    /// JSON arrays and objects a filter within ``maximumNesting`` can need: an object and an array
    /// per level, then a condition object, its operator object and a `match.any` array.
    static let maximumJSONDepth = 2 * maximumNesting + 3

    /// Parses the JSON form (see the top of Filter.swift) in time linear in its length. Throws
    /// `.invalidArgument` naming the path of the offending element (and, for JSON errors, the byte
    /// offset), e.g. `filter.must[0].range: unknown field 'gtee' (gt, gte, lt, lte)`, or
    /// `filter.must[0].match.value: number 1e400 is out of the range of a 64-bit float (byte 40)`.
    public init(json: String) throws(StrataError) {
        let value = try JSONValue.parse(json, what: "filter", maximumDepth: Self.maximumJSONDepth,
                                        depthNote: "a filter may nest at most \(Self.maximumNesting) levels")
        self = try Filter.parse(value, path: "filter", level: 1)
    }

    static func bad(_ path: String, _ message: String) -> StrataError {
        StrataError(.invalidArgument, "\(path): \(message)")
    }

    static func parse(_ v: JSONValue, path: String, level: Int) throws(StrataError) -> Filter {
        guard level <= maximumNesting else {
            throw bad(path, "filters nest more than \(maximumNesting) levels deep (the limit)")
        }
        guard case .object(let o) = v else { throw bad(path, "expected an object with must, should or must_not, got \(v.kindName)") }
        var f = Filter()
        for (field, value) in o.sorted(by: { $0.key < $1.key }) {
            let p = "\(path).\(field)"
            let list: [JSONValue]
            switch value {
            case .array(let a): list = a
            case .object: list = [value]          // Qdrant also accepts a single condition
            default: throw bad(p, "expected a list of conditions, got \(value.kindName)")
            }
            var conditions: [FilterCondition] = []
            for (i, c) in list.enumerated() { conditions.append(try parseCondition(c, path: "\(p)[\(i)]", level: level)) }
            switch field {
            case "must": f.must = conditions
            case "should": f.should = conditions
            case "must_not": f.mustNot = conditions
            default: throw bad(path, "unknown field '\(field)' (must, should, must_not)")
            }
        }
        return f
    }

    /// One condition of a filter at nesting `level`.
    static func parseCondition(_ v: JSONValue, path: String, level: Int) throws(StrataError) -> FilterCondition {
        guard case .object(let o) = v else { throw bad(path, "expected a condition object, got \(v.kindName)") }
        let boolKeys: Set<String> = ["must", "should", "must_not"]
        if !o.isEmpty, o.keys.allSatisfy(boolKeys.contains) { return .filter(try parse(v, path: path, level: level + 1)) }
        if let n = o["is_null"], o["key"] == nil {
            guard o.count == 1, case .object(let inner) = n, inner.count == 1, case .string(let k)? = inner["key"] else {
                throw bad(path, "is_null takes {\"key\": \"column\"}")
            }
            return .isNull(key: k)
        }
        guard case .string(let key)? = o["key"] else { throw bad(path, "a condition needs \"key\" (a column name) or must/should/must_not") }
        let ops = o.keys.filter { $0 != "key" }.sorted()
        guard ops.count == 1 else {
            throw bad(path, ops.isEmpty ? "condition on '\(key)' has no operator (match, range, prefix, is_null)"
                                       : "condition on '\(key)' has several operators (\(ops.joined(separator: ", "))): nest them in must")
        }
        let op = ops[0], body = o[op]!, p = "\(path).\(op)"
        switch op {
        case "match":
            guard case .object(let m) = body, m.count == 1 else { throw bad(p, "expected {\"value\": v} or {\"any\": [v, ...]}") }
            if let value = m["value"] { return .match(key: key, value: try scalar(value, path: "\(p).value")) }
            if case .array(let a)? = m["any"] {
                var values: [FilterValue] = []
                for (i, x) in a.enumerated() { values.append(try scalar(x, path: "\(p).any[\(i)]")) }
                return .matchAny(key: key, values: values)
            }
            throw bad(p, "unknown field '\(m.keys.first!)' (value, any)")
        case "range":
            guard case .object(let m) = body, !m.isEmpty else { throw bad(p, "expected an object with gt, gte, lt or lte") }
            var r = FilterRange()
            for (name, x) in m.sorted(by: { $0.key < $1.key }) {
                let s = try scalar(x, path: "\(p).\(name)")
                if case .bool = s { throw bad("\(p).\(name)", "a range bound must be a number or a string") }
                switch name {
                case "gt": r.gt = s
                case "gte": r.gte = s
                case "lt": r.lt = s
                case "lte": r.lte = s
                default: throw bad(p, "unknown field '\(name)' (gt, gte, lt, lte)")
                }
            }
            return .range(key: key, r)
        case "prefix":
            switch body {
            case .string(let s): return .prefix(key: key, prefix: s, caseInsensitive: false)
            case .object(let m):
                guard case .string(let s)? = m["value"] else { throw bad(p, "expected {\"value\": \"...\", \"case_insensitive\": bool}") }
                var ci = false
                for (name, x) in m where name != "value" {
                    guard name == "case_insensitive" else { throw bad(p, "unknown field '\(name)' (value, case_insensitive)") }
                    guard case .bool(let b) = x else { throw bad("\(p).case_insensitive", "expected a boolean") }
                    ci = b
                }
                return .prefix(key: key, prefix: s, caseInsensitive: ci)
            default: throw bad(p, "expected a string or {\"value\": ..., \"case_insensitive\": ...}")
            }
        case "is_null":
            guard case .bool(let b) = body else { throw bad(p, "expected true or false") }
            return b ? .isNull(key: key) : .filter(Filter(mustNot: [.isNull(key: key)]))
        default:
            throw bad(path, "unknown operator '\(op)' (match, range, prefix, is_null)")
        }
    }

    static func scalar(_ v: JSONValue, path: String) throws(StrataError) -> FilterValue {
        switch v {
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .float(d)
        case .string(let s): return .string(s)
        default: throw bad(path, "expected a string, number or boolean, got \(v.kindName)")
        }
    }
}

// MARK: - Binding to a schema and reference evaluation

extension Filter {
    /// Checks every condition against `schema`: unknown columns throw `.unknownColumn`, values of
    /// the wrong type for their column throw `.typeMismatch` (e.g. a string bound on an int64
    /// column, a prefix on a number, a range on a bool).
    public func validate(against schema: SegmentSchema) throws(StrataError) {
        for c in must + should + mustNot { try c.validate(against: schema) }
    }

    /// Reference evaluation on one row's values (schema order). Slow and simple: the tests compare
    /// every index-driven plan with it.
    public func matches(_ values: [PayloadValue], schema: SegmentSchema) -> Bool {
        if !must.allSatisfy({ $0.matches(values, schema: schema) }) { return false }
        if !should.isEmpty, !should.contains(where: { $0.matches(values, schema: schema) }) { return false }
        return !mustNot.contains { $0.matches(values, schema: schema) }
    }
}

extension FilterCondition {
    func validate(against schema: SegmentSchema) throws(StrataError) {
        guard let key else {
            if case .filter(let f) = self { try f.validate(against: schema) }
            return
        }
        let spec = schema.columns[try schema.columnIndex(named: key)]
        func check(_ v: FilterValue, _ what: String) throws(StrataError) {
            let ok: Bool
            switch (v, spec.type) {
            case (.int, .int64), (.int, .float64), (.float, .int64), (.float, .float64): ok = true
            case (.string, .string), (.string, .stringList): ok = true
            case (.bool, .bool): ok = true
            default: ok = false
            }
            guard ok else {
                throw StrataError(.typeMismatch, "filter \(what) on '\(key)': column is \(spec.type), value \(v) is not")
            }
        }
        switch self {
        case .match(_, let v): try check(v, "match")
        case .matchAny(_, let vs): for v in vs { try check(v, "match any") }
        case .range(_, let r):
            guard spec.type != .bool else { throw StrataError(.typeMismatch, "filter range on '\(key)': a bool column has no order") }
            guard !r.bounds.isEmpty else { throw StrataError(.invalidArgument, "filter range on '\(key)' has no bound") }
            for v in r.bounds { try check(v, "range") }
        case .prefix:
            guard spec.type == .string || spec.type == .stringList else {
                throw StrataError(.typeMismatch, "filter prefix on '\(key)': column is \(spec.type), prefix needs a string column")
            }
        case .isNull, .filter: break
        }
    }

    func matches(_ values: [PayloadValue], schema: SegmentSchema) -> Bool {
        if case .filter(let f) = self { return f.matches(values, schema: schema) }
        guard let key, let i = schema.columns.firstIndex(where: { $0.name == key }) else { return false }
        return matchesValue(values[i])
    }

    /// Whether the condition holds for one value of its column (not for nested filters).
    func matchesValue(_ value: PayloadValue) -> Bool {
        if case .isNull = self { if case .null = value { return true }; return false }
        switch value {
        case .null: return false
        case .stringList(let items): return items.contains { itemMatches(.string($0)) }
        default: return itemMatches(value)
        }
    }

    private func itemMatches(_ v: PayloadValue) -> Bool {
        switch self {
        case .match(_, let x): return FilterCompare.compare(v, x) == 0
        case .matchAny(_, let xs): return xs.contains { FilterCompare.compare(v, $0) == 0 }
        case .range(_, let r):
            if let b = r.gt { guard let c = FilterCompare.compare(v, b), c > 0 else { return false } }
            if let b = r.gte { guard let c = FilterCompare.compare(v, b), c >= 0 else { return false } }
            if let b = r.lt { guard let c = FilterCompare.compare(v, b), c < 0 else { return false } }
            if let b = r.lte { guard let c = FilterCompare.compare(v, b), c <= 0 else { return false } }
            return true
        case .prefix(_, let p, let ci):
            guard case .string(let s) = v else { return false }
            return FilterCompare.hasPrefix(Array(s.utf8), Array(p.utf8), caseInsensitive: ci)
        case .isNull, .filter: return false
        }
    }
}

/// Comparisons shared by the reference evaluator and the index lookups.
enum FilterCompare {
    /// -1 / 0 / 1, or nil when the two are not comparable (different kinds, NaN).
    static func compare(_ v: PayloadValue, _ x: FilterValue) -> Int? {
        switch (v, x) {
        case (.int64(let a), .int(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.int64(let a), .float(let b)): return compareDouble(Double(a), b, exactInt: a)
        case (.float64(let a), .float(let b)): return compareDouble(a, b, exactInt: nil)
        case (.float64(let a), .int(let b)): return compareDouble(a, Double(b), exactInt: nil)
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (a ? 1 : -1)
        case (.string(let a), .string(let b)): return compareBytes(Array(a.utf8), Array(b.utf8))
        default: return nil
        }
    }

    static func compareDouble(_ a: Double, _ b: Double, exactInt: Int64?) -> Int? {
        if a.isNaN || b.isNaN { return nil }
        if let i = exactInt, b.rounded() == b, abs(b) < 9.2e18 { let bi = Int64(b); return i < bi ? -1 : (i > bi ? 1 : 0) }
        return a < b ? -1 : (a > b ? 1 : 0)
    }

    static func compareBytes<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Int {
        var i = a.makeIterator(), j = b.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let x?, let y?): if x != y { return x < y ? -1 : 1 }
            }
        }
    }

    static func hasPrefix<A: Collection<UInt8>>(_ s: A, _ p: [UInt8], caseInsensitive: Bool) -> Bool {
        guard s.count >= p.count else { return false }
        var k = 0
        for c in s.prefix(p.count) {
            let d = p[k]
            if caseInsensitive ? lower(c) != lower(d) : c != d { return false }
            k += 1
        }
        return true
    }

    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { (c >= 65 && c <= 90) ? c + 32 : c }
}
