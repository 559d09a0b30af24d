// Binding a Filter to one segment and choosing a plan.
//
// Each leaf condition is resolved once per query:
//  - on an indexed single-valued column: an ordinal range set tested per row through the forward
//    array (one u32 load and a compare); its rows are contiguous posting slices, and its exact
//    cardinality is a difference of two posting starts (O(log D) for the lookup, O(1) to count);
//  - on an indexed string_list column: the union of its posting lists, as a row bitmap;
//  - on a column without an index: a bitmap built by scanning the column's blocks, skipping blocks
//    whose zone map (min/max) or null count shows that no row can pass.
// The planner estimates the filter's cardinality from the leaves (exact per leaf; must = product of
// selectivities, should = 1 - product of misses, must_not = complement) and picks:
//  - `exact` at or below the threshold: enumerate the passing rows (from the most selective leaf's
//    postings), score them with the PQ codes (exact distances without an index), rerank the best;
//  - `graph` above it: filtered beam search over the Vamana graph (FilteredSearch.swift).

import StrataFormat
import StrataIndex

/// A set of rows as a bitmap (one bit per row).
struct RowBitmap {
    var words: [UInt64]
    init(rowCount: Int) { words = [UInt64](repeating: 0, count: (rowCount + 63) / 64) }
    @inline(__always) func contains(_ row: Int) -> Bool { words[row >> 6] & (1 << UInt64(row & 63)) != 0 }
    @inline(__always) mutating func insert(_ row: Int) { words[row >> 6] |= 1 << UInt64(row & 63) }
    var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }
}

/// Which search a filtered query runs.
public enum FilterPlanKind: String, Sendable, Codable {
    /// No filter: plain search.
    case unfiltered
    /// No row can pass: nothing to search.
    case empty
    /// Enumerate the passing rows and score them (PQ codes then exact rerank, or exact distances).
    case exact
    /// Filtered graph search (only passing rows admitted to the results).
    case graph
}

/// The planner's decision for one filter on one segment.
public struct FilterPlan: Sendable {
    /// The chosen plan.
    public var kind: FilterPlanKind
    /// Cardinality estimated from the indexes (exact for single conditions).
    public var estimatedRows: Int
    /// Rows in the segment.
    public var rowCount: Int
    /// Threshold (rows) at or below which the exact plan is chosen.
    public var exactThreshold: Int
    /// Columns resolved through their payload index.
    public var indexedColumns: [String]
    /// Columns resolved by scanning blocks (no index), and the blocks skipped by zone maps.
    public var scannedColumns: [String]
    /// Payload blocks skipped by zone maps or null counts while scanning.
    public var blocksSkipped: Int
    /// Estimated selectivity (estimatedRows / rowCount).
    public var selectivity: Double { rowCount == 0 ? 0 : Double(estimatedRows) / Double(rowCount) }
}

/// A filter bound to one segment (see the top of this file). Immutable; one per query.
///
/// Unchecked `Sendable`: immutable after `init` (its views and bitmaps are only read); its pointers reach
/// the segment's read-only mapping.
final class CompiledFilter: @unchecked Sendable {
    indirect enum Node {
        case all
        case none
        /// forward[row] in one of the ordinal ranges (nulls are 0xFFFFFFFF, never in a range).
        case ordinals(view: PayloadIndexView, ranges: [Range<UInt32>])
        /// forward[row] == null.
        case forwardNull(view: PayloadIndexView)
        case bitmap(RowBitmap, count: Int)
        case and([Node])
        case or([Node])
        case not(Node)
    }

    let root: Node
    let rowCount: Int
    /// Estimated passing rows.
    let estimate: Int
    var indexedColumns: Set<String> = []
    var scannedColumns: Set<String> = []
    var blocksSkipped = 0

    init(filter: Filter, segment: Segment) throws(StrataError) {
        try filter.validate(against: segment.schema)
        try segment.checkBeforeRead(Segment.filterSections)
        rowCount = segment.rowCount
        var build = Builder(segment: segment)
        let node = try build.node(filter)
        root = Self.simplify(node)
        indexedColumns = build.indexed
        scannedColumns = build.scanned
        blocksSkipped = build.skipped
        estimate = Int((Self.fraction(root, rowCount) * Double(rowCount)).rounded())
        if case .ordinals(let view, let ranges) = root, ranges.count == 1, let f = view.forward {
            fastForward = f
            fastLow = ranges[0].lowerBound
            fastWidth = ranges[0].upperBound &- ranges[0].lowerBound
        }
    }

    // MARK: evaluation

    /// The common case (one range on one indexed column) without walking the node tree: a forward
    /// array load and one unsigned compare.
    private(set) var fastForward: UnsafePointer<UInt32>? = nil
    private(set) var fastLow: UInt32 = 0
    private(set) var fastWidth: UInt32 = 0

    /// Whether `row` passes (row < rowCount).
    @inline(__always) func test(_ row: Int) -> Bool {
        if let f = fastForward { return f[row] &- fastLow < fastWidth }
        return Self.test(root, row)
    }

    static func test(_ node: Node, _ row: Int) -> Bool {
        switch node {
        case .all: return true
        case .none: return false
        case .ordinals(let view, let ranges):
            let o = view.forward.unsafelyUnwrapped[row]
            for r in ranges where r.contains(o) { return true }
            return false
        case .forwardNull(let view): return view.forward.unsafelyUnwrapped[row] == .max
        case .bitmap(let b, _): return b.contains(row)
        case .and(let nodes):
            for n in nodes where !test(n, row) { return false }
            return true
        case .or(let nodes):
            for n in nodes where test(n, row) { return true }
            return false
        case .not(let n): return !test(n, row)
        }
    }

    static func fraction(_ node: Node, _ n: Int) -> Double {
        guard n > 0 else { return 0 }
        switch node {
        case .all: return 1
        case .none: return 0
        case .ordinals(let view, let ranges): return Double(view.count(ranges.map { Int($0.lowerBound)..<Int($0.upperBound) })) / Double(n)
        case .forwardNull(let view): return Double(view.nullCount) / Double(n)
        case .bitmap(_, let c): return Double(c) / Double(n)
        case .and(let ns): return ns.reduce(1) { $0 * fraction($1, n) }
        case .or(let ns): return 1 - ns.reduce(1) { $0 * (1 - fraction($1, n)) }
        case .not(let x): return 1 - fraction(x, n)
        }
    }

    static func simplify(_ node: Node) -> Node {
        switch node {
        case .and(let ns):
            var out: [Node] = []
            for n in ns.map(simplify) {
                if case .none = n { return .none }
                if case .all = n { continue }
                if case .and(let inner) = n { out += inner } else { out.append(n) }
            }
            return out.isEmpty ? .all : (out.count == 1 ? out[0] : .and(out))
        case .or(let ns):
            var out: [Node] = []
            for n in ns.map(simplify) {
                if case .all = n { return .all }
                if case .none = n { continue }
                if case .or(let inner) = n { out += inner } else { out.append(n) }
            }
            return out.isEmpty ? .none : (out.count == 1 ? out[0] : .or(out))
        case .not(let x):
            let s = simplify(x)
            if case .all = s { return .none }
            if case .none = s { return .all }
            if case .not(let y) = s { return y }
            // not(is_null) on a single-valued index: every key ordinal.
            if case .forwardNull(let view) = s { return .ordinals(view: view, ranges: [0..<UInt32(view.distinctCount)]) }
            return .not(s)
        case .ordinals(_, let ranges) where ranges.isEmpty: return .none
        case .bitmap(_, let c) where c == 0: return .none
        default: return node
        }
    }

    // MARK: candidate enumeration (exact plan)

    /// Calls `body` with batches of candidate rows (a superset of the passing rows, each row once),
    /// taken from the most selective source: a leaf's posting slices or bitmap, else all rows. The
    /// flag is true when the source is the whole filter (every candidate passes; no test needed).
    func forEachCandidateBatch(_ body: (UnsafeBufferPointer<UInt32>, Bool) -> Void) {
        var best: Node? = nil
        var bestCount = Int.max
        func consider(_ n: Node) {
            let c: Int
            switch n {
            case .ordinals(let v, let r): c = v.count(r.map { Int($0.lowerBound)..<Int($0.upperBound) })
            case .bitmap(_, let k): c = k
            default: return
            }
            if c < bestCount { best = n; bestCount = c }
        }
        var whole = false
        switch root {
        case .and(let ns): ns.forEach(consider)
        default: consider(root); whole = best != nil
        }
        var buffer = [UInt32](repeating: 0, count: 1024)
        buffer.withUnsafeMutableBufferPointer { buf in
            switch best {
            case .ordinals(let v, let ranges)?:
                for r in ranges {
                    let rows = v.rows(ordinals: Int(r.lowerBound)..<Int(r.upperBound))
                    var i = 0
                    while i < rows.count {
                        let m = min(buf.count, rows.count - i)
                        body(UnsafeBufferPointer(rebasing: rows[i..<(i + m)]), whole)
                        i += m
                    }
                }
            case .bitmap(let b, _)?:
                var m = 0
                for (w, word) in b.words.enumerated() where word != 0 {
                    var x = word
                    while x != 0 {
                        buf[m] = UInt32(w * 64 + x.trailingZeroBitCount); m += 1
                        x &= x - 1
                        if m == buf.count { body(UnsafeBufferPointer(buf), whole); m = 0 }
                    }
                }
                if m > 0 { body(UnsafeBufferPointer(rebasing: buf[0..<m]), whole) }
            default:
                var r = 0
                while r < rowCount {
                    let m = min(buf.count, rowCount - r)
                    for j in 0..<m { buf[j] = UInt32(r + j) }
                    body(UnsafeBufferPointer(rebasing: buf[0..<m]), false)
                    r += m
                }
            }
        }
    }

    /// All passing rows, ascending.
    func passingRows() -> [Int] {
        var out: [Int] = []
        forEachCandidateBatch { batch, allPass in
            for r in batch where Int(r) < rowCount && (allPass || test(Int(r))) { out.append(Int(r)) }
        }
        return out.sorted()
    }

    // MARK: building

    struct Builder {
        let segment: Segment
        var indexed: Set<String> = []
        var scanned: Set<String> = []
        var skipped = 0

        mutating func node(_ f: Filter) throws(StrataError) -> Node {
            var parts: [Node] = []
            for c in f.must { parts.append(try node(c)) }
            if !f.should.isEmpty {
                var any: [Node] = []
                for c in f.should { any.append(try node(c)) }
                parts.append(.or(any))
            }
            if !f.mustNot.isEmpty {
                var any: [Node] = []
                for c in f.mustNot { any.append(try node(c)) }
                parts.append(.not(.or(any)))
            }
            return .and(parts)
        }

        mutating func node(_ c: FilterCondition) throws(StrataError) -> Node {
            if case .filter(let f) = c { return try node(f) }
            let key = c.key!
            let ordinal = try segment.schema.columnIndex(named: key)
            if let view = segment.searchExtras?.payload?.byOrdinal[ordinal] {
                indexed.insert(key)
                return leaf(c, view)
            }
            scanned.insert(key)
            return try scan(c, ordinal: ordinal)
        }

        func ranges(_ c: FilterCondition, _ v: PayloadIndexView) -> [Range<Int>] {
            switch c {
            case .match(_, let x): return [v.ordinals(equalTo: x)]
            case .matchAny(_, let xs): return xs.map { v.ordinals(equalTo: $0) }
            case .range(_, let r): return [v.ordinals(in: r)]
            case .prefix(_, let p, let ci): return v.ordinals(prefix: p, caseInsensitive: ci)
            default: return []
            }
        }

        func leaf(_ c: FilterCondition, _ v: PayloadIndexView) -> Node {
            if case .isNull = c {
                if !v.multiValued { return .forwardNull(view: v) }
                var b = RowBitmap(rowCount: segment.rowCount)
                for r in v.nulls where Int(r) < segment.rowCount { b.insert(Int(r)) }
                return .bitmap(b, count: b.count)
            }
            // Merge overlapping / adjacent ordinal ranges (match any may repeat values).
            var rs = ranges(c, v).filter { !$0.isEmpty }.sorted { $0.lowerBound < $1.lowerBound }
            var merged: [Range<Int>] = []
            for r in rs {
                if let last = merged.last, r.lowerBound <= last.upperBound {
                    merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
                } else { merged.append(r) }
            }
            rs = merged
            if !v.multiValued {
                return .ordinals(view: v, ranges: rs.map { UInt32($0.lowerBound)..<UInt32($0.upperBound) })
            }
            var b = RowBitmap(rowCount: segment.rowCount)
            for r in rs { for row in v.rows(ordinals: r) where Int(row) < segment.rowCount { b.insert(Int(row)) } }
            return .bitmap(b, count: b.count)
        }

        /// Bitmap of the rows passing `c`, scanning the column; zone maps skip blocks.
        mutating func scan(_ c: FilterCondition, ordinal: Int) throws(StrataError) -> Node {
            let column = segment.columns[ordinal]
            var b = RowBitmap(rowCount: segment.rowCount)
            for (i, info) in column.blocks.enumerated() {
                if ZoneSkip.canSkip(c, info: info) { skipped += 1; continue }
                let block = try column.decodeBlock(i, checkChecksum: false)
                let first = Int(info.firstRow)
                for j in 0..<block.rowCount where c.matchesValue(block.value(j)) { b.insert(first + j) }
            }
            return .bitmap(b, count: b.count)
        }
    }
}

/// Whether a block's zone map (or null count) proves no row of it can pass a condition.
enum ZoneSkip {
    static func canSkip(_ c: FilterCondition, info: ColumnBlockInfo) -> Bool {
        if case .isNull = c { return info.nullCount == 0 }
        if info.nullCount == info.rowCount { return true }      // all null: only is_null passes
        switch (c, info.zoneMap) {
        case (.match(_, let v), let z): return !mayContain(z, lo: v, loStrict: false, hi: v, hiStrict: false)
        case (.matchAny(_, let vs), let z): return !vs.contains { mayContain(z, lo: $0, loStrict: false, hi: $0, hiStrict: false) }
        case (.range(_, let r), let z):
            let lo = r.gt ?? r.gte, hi = r.lt ?? r.lte
            return !mayContain(z, lo: lo, loStrict: r.gt != nil, hi: hi, hiStrict: r.lt != nil)
        case (.prefix(_, let p, false), .stringPrefix(let minP, let maxP, _)):
            // Every string of the block has its first 8 bytes <= maxP and is >= minP (a prefix of the
            // real min). A string starting with p has its first 8 bytes >= p's first 8, and its first
            // |p| bytes equal p.
            let pb = Array(p.utf8)
            return FilterCompare.compareBytes(maxP, pb.prefix(8)) < 0 || FilterCompare.compareBytes(minP.prefix(pb.count), pb) > 0
        default: return false
        }
    }

    /// Whether values in [lo, hi] (strict flags) may occur in a block summarised by `z`.
    static func mayContain(_ z: ZoneMap, lo: FilterValue?, loStrict: Bool, hi: FilterValue?, hiStrict: Bool) -> Bool {
        func num(_ v: FilterValue?) -> Double? {
            switch v { case .int(let i)?: return Double(i); case .float(let d)?: return d; default: return nil }
        }
        switch z {
        case .int64(let a, let b):
            if let h = num(hi), Double(a) > h || (hiStrict && Double(a) >= h) { return false }
            if let l = num(lo), Double(b) < l || (loStrict && Double(b) <= l) { return false }
            return true
        case .float64(let a, let b):
            if let h = num(hi), a > h || (hiStrict && a >= h) { return false }
            if let l = num(lo), b < l || (loStrict && b <= l) { return false }
            return true
        case .stringPrefix(let minP, let maxP, let truncated):
            if case .string(let h)? = hi {
                // every string >= minP; none passes when minP > hi (minP is a prefix of the min).
                if FilterCompare.compareBytes(minP, Array(h.utf8)) > 0 { return false }
            }
            if case .string(let l)? = lo {
                let lb = Array(l.utf8)
                // every string <= maxP (not truncated) or < maxP + 0xFF... (truncated).
                let c = FilterCompare.compareBytes(maxP, truncated ? Array(lb.prefix(8)) : lb)
                if c < 0 || (c == 0 && loStrict && !truncated) { return false }
            }
            return true
        case .none:
            return true
        }
    }
}

extension Segment {
    /// Whether `column` has a payload index in this segment.
    public func hasPayloadIndex(column: String) throws(StrataError) -> Bool {
        searchExtras?.payload?.byOrdinal[try schema.columnIndex(named: column)] != nil
    }

    /// Sizes of the payload indexes by column name (bytes on disk).
    public var payloadIndexSizes: [String: Int] {
        var out: [String: Int] = [:]
        for v in searchExtras?.payload?.byOrdinal ?? [] { if let v { out[v.column.name] = v.byteCount } }
        return out
    }

    /// The plan ``search(query:filter:options:)`` would run for `filter` (throws for unknown columns
    /// and type mismatches).
    public func planFilter(_ filter: Filter, options: FilteredSearchOptions = FilteredSearchOptions()) throws(StrataError) -> FilterPlan {
        try checkOpen()
        let compiled = try CompiledFilter(filter: filter, segment: self)
        return plan(compiled, filter: filter, options: options)
    }

    func plan(_ c: CompiledFilter, filter: Filter, options: FilteredSearchOptions) -> FilterPlan {
        let threshold = options.exactThreshold ?? FilteredSearchOptions.defaultExactThreshold(rowCount: rowCount)
        var kind: FilterPlanKind
        if filter.isEmpty { kind = .unfiltered }
        else if case .none = c.root { kind = .empty }
        else if annIndex == nil || c.estimate <= threshold { kind = .exact }
        else { kind = .graph }
        if let forced = options.plan, kind != .empty { kind = forced == .graph && annIndex == nil ? .exact : forced }
        return FilterPlan(kind: kind, estimatedRows: c.estimate, rowCount: rowCount, exactThreshold: threshold,
                          indexedColumns: c.indexedColumns.sorted(), scannedColumns: c.scannedColumns.sorted(),
                          blocksSkipped: c.blocksSkipped)
    }

    /// Rows passing `filter`, ascending (through the payload indexes where present).
    public func rows(matching filter: Filter) throws(StrataError) -> [Int] {
        try checkOpen()
        return try CompiledFilter(filter: filter, segment: self).passingRows()
    }
}
