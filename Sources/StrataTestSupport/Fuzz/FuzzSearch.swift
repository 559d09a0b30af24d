// Filtered, sparse, BM25 and hybrid search and payload-index lookups on a fuzzed segment. The queries
// are steered by the input itself: bytes 64..<320 of the file lie in the header page's zero padding,
// which no reader check looks at, so mutations there change only the filters (columns, condition
// kinds, values, ranges, prefixes, nesting), the sparse query, the BM25 text and the knobs. Every
// filter evaluation goes through the payload indexes (possibly corrupt) and the column blocks.
import Strata

/// Choice bytes consumed in order; 0 once exhausted (so an untouched seed takes the first choices).
package struct FuzzChoices {
    let bytes: [UInt8]
    var at = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package mutating func byte() -> Int {
        defer { at += 1 }
        return at < bytes.count ? Int(bytes[at]) : 0
    }

    package mutating func u64() -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(byte()) << (8 * UInt64(i)) }
        return v
    }

    package mutating func text(maxLength: Int) -> String {
        var b: [UInt8] = []
        for _ in 0..<(byte() % (maxLength + 1)) { b.append(UInt8(byte())) }
        return String(decoding: b, as: UTF8.self)
    }
}

/// Search operations on a fuzzed segment, steered by choice bytes.
package enum FuzzSearch {
    /// The filter form of a stored value (first item of a list); nil for null.
    static func filterValue(_ v: PayloadValue?) -> FilterValue? {
        switch v {
        case .int64(let x): return .int(x)
        case .float64(let x): return .float(x)
        case .bool(let x): return .bool(x)
        case .string(let s): return .string(s)
        case .stringList(let l): return l.first.map { .string($0) }
        case .null, .none: return nil
        }
    }

    /// A value for a condition on `spec`: a stored one, a raw one of the column's type, or one of
    /// another type (a typeMismatch path).
    static func value(_ seg: Segment, _ spec: ColumnSpec, _ ch: inout FuzzChoices) -> FilterValue {
        let how = ch.byte()
        let n = seg.rowCount
        if how % 4 < 2, n > 0, let v = filterValue(try? seg.value(row: ch.byte() % n, column: spec.name)) {
            if case .string(let s) = v, how % 4 == 1 { return .string(String(s.prefix(ch.byte() % 4))) }
            return v
        }
        switch (how % 4 == 3 ? ch.byte() : Int(spec.type.rawValue)) % 5 {
        case 1: return .int(Int64(bitPattern: ch.u64()))
        case 2: return .float(Double(bitPattern: ch.u64()))
        case 3: return .bool(ch.byte() & 1 == 1)
        default: return .string(ch.text(maxLength: 6))
        }
    }

    static func condition(_ seg: Segment, _ ch: inout FuzzChoices, depth: Int) -> FilterCondition {
        let columns = seg.schema.columns
        let op = ch.byte() % 8
        if op == 7, depth < 2 { return .filter(filter(seg, &ch, depth: depth + 1)) }
        let pick = ch.byte()
        guard !columns.isEmpty, pick != 255 else { return .isNull(key: "no such column") }
        let spec = columns[pick % columns.count]
        switch op {
        case 1:
            var values: [FilterValue] = []
            for _ in 0..<(1 + ch.byte() % 3) { values.append(value(seg, spec, &ch)) }
            return .matchAny(key: spec.name, values: values)
        case 2, 3:
            let which = ch.byte()
            var r = FilterRange()
            if which & 1 != 0 { r.gt = value(seg, spec, &ch) }
            if which & 2 != 0 { r.gte = value(seg, spec, &ch) }
            if which & 4 != 0 { r.lt = value(seg, spec, &ch) }
            if which & 8 != 0 || which & 15 == 0 { r.lte = value(seg, spec, &ch) }
            return .range(key: spec.name, r)
        case 4:
            let p: String
            if case .string(let s) = value(seg, spec, &ch) { p = String(s.prefix(1 + ch.byte() % 3)) } else { p = ch.text(maxLength: 2) }
            return .prefix(key: spec.name, prefix: p, caseInsensitive: ch.byte() & 1 == 1)
        case 5:
            return .isNull(key: spec.name)
        default:
            return .match(key: spec.name, value: value(seg, spec, &ch))
        }
    }

    static func filter(_ seg: Segment, _ ch: inout FuzzChoices, depth: Int = 0) -> Filter {
        let shape = ch.byte()
        var f = Filter()
        for _ in 0..<(1 + shape % 3) { f.must.append(condition(seg, &ch, depth: depth)) }
        for _ in 0..<((shape / 4) % 3) { f.should.append(condition(seg, &ch, depth: depth)) }
        for _ in 0..<((shape / 16) % 2) { f.mustNot.append(condition(seg, &ch, depth: depth)) }
        return f
    }

    static func sparseQuery(_ ch: inout FuzzChoices) -> SparseVector {
        var indices: [UInt32] = [], values: [Float] = []
        for i in 0..<(1 + ch.byte() % 4) {
            let b = ch.byte()
            indices.append(b < 200 ? UInt32(b % 16) : b < 250 ? 1000 : UInt32(truncatingIfNeeded: ch.u64()))
            values.append(Float(Int8(truncatingIfNeeded: ch.byte() &+ 8 &* (i + 1))) * 0.25)
        }
        return SparseVector(indices: indices, values: values)
    }

    /// BM25 text: a stored value of the column (list items joined), sometimes cut, plus fuzz text.
    static func text(_ seg: Segment, column: String, _ ch: inout FuzzChoices) -> String {
        var t = ""
        if seg.rowCount > 0 {
            switch try? seg.value(row: ch.byte() % seg.rowCount, column: column) {
            case .string(let s): t = s
            case .stringList(let l): t = l.joined(separator: " ")
            default: break
            }
        }
        let cut = ch.byte()
        if cut % 4 == 3 { t = String(t.prefix(cut / 4)) }
        return t + " " + ch.text(maxLength: 8)
    }

    /// Payload-index lookups, then filters on their own and in filtered, sparse, BM25 and hybrid search.
    package static func exercise(_ seg: Segment, control: [UInt8]) {
        var ch = FuzzChoices(control)
        let columns = seg.schema.columns
        for c in columns { _ = try? seg.hasPayloadIndex(column: c.name) }
        _ = seg.payloadIndexSizes
        _ = seg.bm25IndexSizes
        let bm25 = seg.bm25Columns
        let hasSparse = seg.hasSparseIndex
        // One simple condition per column (is_null, a stored value, a range from it, its prefix), so
        // the seeds reach every index kind whatever the choice bytes.
        for c in columns.prefix(16) {
            let v = seg.rowCount > 0 ? filterValue(try? seg.value(row: seg.rowCount / 2, column: c.name)) : nil
            var conditions: [FilterCondition] = [.isNull(key: c.name)]
            if let v {
                conditions += [.match(key: c.name, value: v), .range(key: c.name, FilterRange(gte: v)), .range(key: c.name, FilterRange(gt: v, lte: v))]
                if case .string(let s) = v { conditions.append(.prefix(key: c.name, prefix: String(s.prefix(2)), caseInsensitive: true)) }
            }
            for cond in conditions {
                _ = try? seg.rows(matching: .only(cond))
                _ = try? seg.rows(matching: Filter(mustNot: [cond]))
            }
        }
        let d = seg.schema.dimension
        // Mostly small queries; sometimes one whose squared norm passes VectorLimits (refused) or
        // sits near it (accepted; distances to stored vectors may still overflow in a bad file).
        let magnitude: Float = [0.5, 0.5, 0.5, 0x1p60, 1e19, 3e38][ch.byte() % 6]
        let dense: [Float]? = d > 0 && d <= 1 << 16 ? (0..<d).map { Float(($0 % 5) - 2) * magnitude } : nil
        let plans: [FilterPlanKind?] = [.graph, nil, .exact, .unfiltered, .empty]
        for _ in 0..<3 {
            let f = filter(seg, &ch)
            _ = try? seg.rows(matching: f)
            let k = 1 + ch.byte() % 8
            var options = FilteredSearchOptions(k: k, listSize: 4 + ch.byte() % 32)
            options.plan = plans[ch.byte() % plans.count]
            if ch.byte() & 1 == 1 { options.exactThreshold = ch.byte() }
            _ = try? seg.planFilter(f, options: options)
            if let dense {
                _ = try? seg.exactSearch(query: dense, k: k, filter: f)
                _ = try? seg.search(query: dense, filter: f, options: options)
            }
            let sparse = sparseQuery(&ch)
            if hasSparse {
                _ = try? seg.sparseSearch(query: sparse, k: k)
                _ = try? seg.sparseSearch(query: sparse, k: k, filter: f)
            }
            var textQuery: (column: String, query: String)? = nil
            for c in bm25 {
                let t = text(seg, column: c, &ch)
                _ = try? seg.bm25Statistics(column: c, text: t)
                _ = try? seg.bm25Search(column: c, text: t, k: k)
                _ = try? seg.bm25Search(column: c, text: t, k: k, filter: f)
                if textQuery == nil { textQuery = (c, t) }
            }
            let weights: [Double] = [1, 0.5, 0.75, -2, 0, 1e308, .nan, .infinity]
            let fusion: HybridFusion = ch.byte() & 1 == 0 ? .rrf(k: [60, 0, -1, .nan][ch.byte() % 4])
                : .weighted(dense: weights[ch.byte() % 8], sparse: weights[ch.byte() % 8], text: weights[ch.byte() % 8])
            let q = HybridQuery(dense: dense, sparse: hasSparse ? sparse : nil, text: textQuery, filter: ch.byte() & 1 == 0 ? f : nil,
                                k: k, candidates: 1 + ch.byte() % 16, fusion: fusion, denseListSize: 8)
            _ = try? seg.hybridSearch(q)
        }
    }
}
