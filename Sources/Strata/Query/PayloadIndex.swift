// Payload indexes (section kind 19, `payload_index`, format 1.2): per indexed column, the sorted
// distinct keys, a posting list (sorted row ids) per key, the null rows and, for single-valued
// columns, a forward array row -> key ordinal. One structure serves as the inverted index
// (key -> rows) of keyword and string-list columns and as the ordered index of int64, float64 and
// strings compared as ordered keys (a key range is an ordinal range, whose rows are one contiguous
// slice of the postings). docs/SEGMENT-FORMAT.md section 7.10 is the byte-level specification.
//
// Section (little-endian, offsets relative to the section start):
//   0  8  magic "STRAPIDX"     8 4 version (1)     12 4 entry count E     16 8 row count N   24 8 reserved (0)
//   32 + 32 x E: entries: 0 4 column ordinal  4 1 key type (1 int64, 2 float64, 3 bool, 4 string)
//                4+1 flags (bit 0: multi-valued, no forward array)  6 2 reserved  8 8 body offset (8-aligned)
//                16 8 body length  24 8 reserved (0)
// Body:
//   0 8 distinct keys D   8 8 postings P   16 8 null rows Z   24 8 key bytes K (strings; else 0)
//   32             keys: D x 8 B (int64 / float64 bits / bool 0-1), or (D+1) x u64 byte offsets (strings)
//   then           posting starts (D+1) x u64 (starts[0] = 0, starts[D] = P)
//   then           postings P x u32 (rows of key 0, then key 1, ...; each run ascending)
//   then           null rows Z x u32 (ascending)
//   then           forward N x u32 (key ordinal per row, 0xFFFFFFFF = null; single-valued only)
//   then           zero padding to 8, then K key bytes (strings only)

import StrataFormat
import StrataIndex

/// Which columns get payload indexes, and which text columns get BM25 at write time.
public struct SearchSectionOptions: Sendable, Equatable {
    /// Names of columns to index (any type). Unknown names make the writer throw `.unknownColumn`.
    public var indexedColumns: [String] = []
    /// Names of string columns tokenized into a BM25 text index (section `text_index`).
    public var bm25Columns: [String] = []

    /// Nothing indexed.
    public init(indexedColumns: [String] = [], bm25Columns: [String] = []) {
        self.indexedColumns = indexedColumns
        self.bm25Columns = bm25Columns
    }
}

/// Key type of a payload index.
enum PayloadKeyType: UInt8 { case int64 = 1, float64 = 2, bool = 3, string = 4 }

/// Builds the payload index of one column while rows are appended.
struct PayloadIndexBuilder {
    let ordinal: Int
    let spec: ColumnSpec
    private var stringIds: [String: UInt32] = [:]
    private var strings: [String] = []
    private var numbers: [UInt64] = []          // int64 / float64 bits / bool, by temp id
    private var numberIds: [UInt64: UInt32] = [:]
    /// (temp key id, row) for every non-null value (items of lists).
    private var pairs: [(UInt32, UInt32)] = []
    private var nulls: [UInt32] = []
    private var rows: UInt32 = 0

    init(ordinal: Int, spec: ColumnSpec) { self.ordinal = ordinal; self.spec = spec }

    var keyType: PayloadKeyType {
        switch spec.type {
        case .int64: return .int64
        case .float64: return .float64
        case .bool: return .bool
        case .string, .stringList: return .string
        }
    }

    private mutating func stringId(_ s: String) -> UInt32 {
        if let id = stringIds[s] { return id }
        let id = UInt32(strings.count)
        strings.append(s); stringIds[s] = id
        return id
    }

    private mutating func numberId(_ bits: UInt64) -> UInt32 {
        if let id = numberIds[bits] { return id }
        let id = UInt32(numbers.count)
        numbers.append(bits); numberIds[bits] = id
        return id
    }

    mutating func add(_ value: PayloadValue) {
        let row = rows
        rows += 1
        switch value {
        case .null: nulls.append(row)
        case .int64(let v): pairs.append((numberId(UInt64(bitPattern: v)), row))
        case .float64(let v):
            if v.isNaN { return }                     // NaN is in no range and equals nothing
            pairs.append((numberId((v == 0 ? 0.0 : v).bitPattern), row))   // -0 and +0 are one key
        case .bool(let b): pairs.append((numberId(b ? 1 : 0), row))
        case .string(let s): pairs.append((stringId(s), row))
        case .stringList(let l):
            var seen = Set<UInt32>()
            for s in l { let id = stringId(s); if seen.insert(id).inserted { pairs.append((id, row)) } }
        }
    }

    /// The body bytes (layout at the top of this file).
    func encoded() -> [UInt8] {
        let multi = spec.type == .stringList
        // Sort the distinct keys; map temp ids to ordinals.
        let d: Int
        var order: [Int]
        switch keyType {
        case .string:
            d = strings.count
            let utf8 = strings.map { Array($0.utf8) }
            order = Array(0..<d)
            order.sort { FilterCompare.compareBytes(utf8[$0], utf8[$1]) < 0 }
        case .int64, .bool:
            d = numbers.count
            order = Array(0..<d)
            order.sort { Int64(bitPattern: numbers[$0]) < Int64(bitPattern: numbers[$1]) }
        case .float64:
            d = numbers.count
            order = Array(0..<d)
            order.sort { Double(bitPattern: numbers[$0]) < Double(bitPattern: numbers[$1]) }
        }
        var ordinalOf = [UInt32](repeating: 0, count: d)
        for (o, t) in order.enumerated() { ordinalOf[t] = UInt32(o) }
        // Counting sort of the pairs by ordinal; rows stay ascending within a key (pairs are in row order).
        var starts = [UInt64](repeating: 0, count: d + 1)
        for (t, _) in pairs { starts[Int(ordinalOf[Int(t)]) + 1] += 1 }
        for i in 0..<d { starts[i + 1] += starts[i] }
        var fill = Array(starts[0..<d])
        var postings = [UInt32](repeating: 0, count: pairs.count)
        var forward = multi ? [] : [UInt32](repeating: .max, count: Int(rows))
        for (t, row) in pairs {
            let o = Int(ordinalOf[Int(t)])
            postings[Int(fill[o])] = row
            fill[o] += 1
            if !multi { forward[Int(row)] = UInt32(o) }
        }
        var keyBytes: [UInt8] = []
        var w = ByteWriter()
        w.u64(UInt64(d)); w.u64(UInt64(pairs.count)); w.u64(UInt64(nulls.count))
        if keyType == .string {
            var offsets: [UInt64] = [0]
            for t in order { keyBytes.append(contentsOf: strings[t].utf8); offsets.append(UInt64(keyBytes.count)) }
            w.u64(UInt64(keyBytes.count))
            for o in offsets { w.u64(o) }
        } else {
            w.u64(0)
            for t in order { w.u64(numbers[t]) }
        }
        for s in starts { w.u64(s) }
        for p in postings { w.u32(p) }
        for z in nulls { w.u32(z) }
        for f in forward { w.u32(f) }
        w.pad(to: 8)
        w.raw(keyBytes)
        w.pad(to: 8)
        return w.bytes
    }
}

/// Encodes the payload_index section from finished builders.
enum PayloadIndexSection {
    static let magic: [UInt8] = Array("STRAPIDX".utf8)
    static let version: UInt32 = 1

    static func encode(_ builders: [PayloadIndexBuilder], rowCount: UInt64) -> [UInt8] {
        let bodies = builders.map { $0.encoded() }
        var w = ByteWriter()
        w.raw(magic); w.u32(version); w.u32(UInt32(builders.count)); w.u64(rowCount); w.u64(0)
        var offset = UInt64(32 + 32 * builders.count)
        for (b, body) in zip(builders, bodies) {
            w.u32(UInt32(b.ordinal)); w.u8(b.keyType.rawValue); w.u8(b.spec.type == .stringList ? 1 : 0); w.u16(0)
            w.u64(offset); w.u64(UInt64(body.count)); w.u64(0)
            offset += UInt64(body.count)
        }
        for body in bodies { w.raw(body) }
        return w.bytes
    }
}

/// Read side of one column's payload index, over the mapping. Structure (counts and region sizes)
/// is checked at open in O(1); per-entry values (offsets, ordinals, rows) are checked where they
/// are used, so a corrupt index yields errors or fewer rows, never a trap.
///
/// Unchecked `Sendable`: pointers into the segment's read-only mapping, never written after open; the
/// segment keeps the mapping alive.
public struct PayloadIndexView: @unchecked Sendable {
    /// The column.
    public let column: ColumnSpec
    /// Column ordinal.
    public let ordinal: Int
    let keyType: PayloadKeyType
    /// Whether rows may hold several keys (string lists): no forward array.
    public let multiValued: Bool
    /// Distinct keys.
    public let distinctCount: Int
    /// Total postings (rows x keys).
    public let postingCount: Int
    /// Null rows.
    public let nullCount: Int
    let rowCount: Int
    let keys: UnsafeRawPointer          // D x 8 B, or (D+1) x u64 offsets for strings
    let starts: UnsafeRawPointer        // (D+1) x u64
    let postings: UnsafePointer<UInt32> // P (unaligned-safe: 4-aligned because the body is 8-aligned)
    let nullRows: UnsafePointer<UInt32>
    let forward: UnsafePointer<UInt32>? // N
    let keyBytes: UnsafeRawBufferPointer
    /// Bytes of the index on disk.
    public let byteCount: Int

    init(column: ColumnSpec, ordinal: Int, keyType: UInt8, flags: UInt8, body: UnsafeRawBufferPointer,
         rowCount: Int, at fileOffset: UInt64) throws(StrataError) {
        func bad(_ m: String) -> StrataError { StrataError(.corrupt, "payload index of '\(column.name)': \(m)", section: "payload_index", offset: fileOffset) }
        guard let kt = PayloadKeyType(rawValue: keyType) else {
            throw StrataError(.unsupportedFeature, "payload index key type \(keyType) is unknown", section: "payload_index", offset: fileOffset)
        }
        let expectedType: PayloadKeyType
        switch column.type {
        case .int64: expectedType = .int64
        case .float64: expectedType = .float64
        case .bool: expectedType = .bool
        case .string, .stringList: expectedType = .string
        }
        guard kt == expectedType, flags & ~1 == 0, (flags & 1 != 0) == (column.type == .stringList) else { throw bad("key type or flags do not match the column") }
        guard body.count >= 32, Int(bitPattern: body.baseAddress!) % 8 == 0 else { throw bad("body too short or unaligned") }
        var r = ByteReader(body, baseOffset: fileOffset, section: "payload_index")
        let d = try r.u64(), p = try r.u64(), z = try r.u64(), k = try r.u64()
        let limit = UInt64(body.count)
        guard d < limit, p <= limit / 4, z <= UInt64(rowCount), k <= limit else { throw bad("counts exceed the body") }
        let keyArea = (kt == .string ? d + 1 : d) * 8
        let forwardCount = flags & 1 != 0 ? 0 : UInt64(rowCount)
        let fixedPart = 32 + keyArea + (d + 1) * 8 + (p + z + forwardCount) * 4
        let padded = alignUp(fixedPart, 8)
        guard let total = Checked.add(padded, alignUp(k, 8)), total == limit else { throw bad("body is \(limit) bytes, its counts need \(padded) + \(k)") }
        let base = body.baseAddress!
        self.column = column
        self.ordinal = ordinal
        self.keyType = kt
        self.multiValued = flags & 1 != 0
        self.distinctCount = Int(d)
        self.postingCount = Int(p)
        self.nullCount = Int(z)
        self.rowCount = rowCount
        keys = base + 32
        starts = base + 32 + Int(keyArea)
        let postingsAt = 32 + Int(keyArea) + Int(d + 1) * 8
        postings = (base + postingsAt).assumingMemoryBound(to: UInt32.self)
        nullRows = (base + postingsAt + Int(p) * 4).assumingMemoryBound(to: UInt32.self)
        forward = forwardCount > 0 ? (base + postingsAt + Int(p + z) * 4).assumingMemoryBound(to: UInt32.self) : nil
        keyBytes = UnsafeRawBufferPointer(start: base + Int(padded), count: Int(k))
        byteCount = body.count
        if kt == .string {
            guard stringOffset(Int(d)) == k, stringOffset(0) == 0 else { throw bad("key byte offsets do not cover the key bytes") }
        }
        guard start(0) == 0, start(Int(d)) == p else { throw bad("posting starts do not cover the postings") }
    }

    @inline(__always) func start(_ i: Int) -> UInt64 { UInt64(littleEndian: starts.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
    @inline(__always) func stringOffset(_ i: Int) -> UInt64 { UInt64(littleEndian: keys.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
    @inline(__always) func numberBits(_ i: Int) -> UInt64 { UInt64(littleEndian: keys.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }

    /// Key `i`'s UTF-8 bytes (empty when the offsets are corrupt).
    func stringKey(_ i: Int) -> UnsafeRawBufferPointer {
        let a = stringOffset(i), b = stringOffset(i + 1)
        guard a <= b, b <= UInt64(keyBytes.count) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: keyBytes[Int(a)..<Int(b)])
    }

    /// Posting slice bounds of ordinals `lo..<hi` (checked: corrupt starts give an empty slice).
    @inline(__always) func postingRange(_ r: Range<Int>) -> Range<Int> {
        guard !r.isEmpty else { return 0..<0 }
        let a = start(r.lowerBound), b = start(r.upperBound)
        guard a <= b, b <= UInt64(postingCount) else { return 0..<0 }
        return Int(a)..<Int(b)
    }

    /// Rows holding keys of ordinals in `r` (a contiguous slice; rows ascending within each key).
    func rows(ordinals r: Range<Int>) -> UnsafeBufferPointer<UInt32> {
        let p = postingRange(r)
        return UnsafeBufferPointer(start: postings + p.lowerBound, count: p.count)
    }

    /// The null rows, ascending.
    var nulls: UnsafeBufferPointer<UInt32> { UnsafeBufferPointer(start: nullRows, count: nullCount) }

    // MARK: lookups (ordinal ranges)

    /// First ordinal whose key is not less than (`strict`: greater than) the bound; nil when the
    /// bound's type cannot compare with the keys.
    func lowerOrdinal(_ bound: FilterValue, strict: Bool) -> Int? {
        var lo = 0, hi = distinctCount
        while lo < hi {
            let mid = (lo + hi) >> 1
            guard let c = compareKey(mid, bound) else { return nil }
            if c < 0 || (strict && c == 0) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// -1/0/1 of key `i` against `v`, nil when not comparable.
    func compareKey(_ i: Int, _ v: FilterValue) -> Int? {
        switch keyType {
        case .string:
            guard case .string(let s) = v else { return nil }
            var s2 = s
            return s2.withUTF8 { FilterCompare.compareBytes(stringKey(i), $0) }
        case .int64: return FilterCompare.compare(.int64(Int64(bitPattern: numberBits(i))), v)
        case .float64:
            guard let c = FilterCompare.compare(.float64(Double(bitPattern: numberBits(i))), v) else { return nil }
            return c
        case .bool: return FilterCompare.compare(.bool(numberBits(i) != 0), v)
        }
    }

    /// Ordinals of keys equal to `v` (empty when none or incomparable).
    func ordinals(equalTo v: FilterValue) -> Range<Int> {
        guard let a = lowerOrdinal(v, strict: false), let b = lowerOrdinal(v, strict: true) else { return 0..<0 }
        return a..<max(a, b)
    }

    /// Ordinals of keys inside a range.
    func ordinals(in r: FilterRange) -> Range<Int> {
        var lo = 0, hi = distinctCount
        if let g = r.gt { guard let o = lowerOrdinal(g, strict: true) else { return 0..<0 }; lo = max(lo, o) }
        if let g = r.gte { guard let o = lowerOrdinal(g, strict: false) else { return 0..<0 }; lo = max(lo, o) }
        if let l = r.lt { guard let o = lowerOrdinal(l, strict: false) else { return 0..<0 }; hi = min(hi, o) }
        if let l = r.lte { guard let o = lowerOrdinal(l, strict: true) else { return 0..<0 }; hi = min(hi, o) }
        return lo..<max(lo, hi)
    }

    /// Ordinal ranges of string keys starting with `prefix` (several for case-insensitive ASCII:
    /// one per case variant when there are at most 64, else a scan of the keys).
    func ordinals(prefix: String, caseInsensitive: Bool) -> [Range<Int>] {
        guard keyType == .string else { return [] }
        let p = Array(prefix.utf8)
        let letters = p.filter { ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }.count
        if !caseInsensitive || letters == 0 { return [range(forPrefix: p)].filter { !$0.isEmpty } }
        if letters <= 6 {
            var out: [Range<Int>] = []
            for mask in 0..<(1 << letters) {
                var v = p, bit = 0
                for j in 0..<v.count where (v[j] >= 65 && v[j] <= 90) || (v[j] >= 97 && v[j] <= 122) {
                    let lowerC = FilterCompare.lower(v[j])
                    v[j] = mask & (1 << bit) != 0 ? lowerC - 32 : lowerC
                    bit += 1
                }
                let r = range(forPrefix: v)
                if !r.isEmpty { out.append(r) }
            }
            return out.sorted { $0.lowerBound < $1.lowerBound }
        }
        var out: [Range<Int>] = []
        for i in 0..<distinctCount where FilterCompare.hasPrefix(stringKey(i), p, caseInsensitive: true) {
            if let last = out.last, last.upperBound == i { out[out.count - 1] = last.lowerBound..<(i + 1) } else { out.append(i..<(i + 1)) }
        }
        return out
    }

    /// Keys starting with the exact bytes `p`: [first key >= p, first key > p + 0xFF...).
    private func range(forPrefix p: [UInt8]) -> Range<Int> {
        func firstNotBelow(_ strictPrefix: Bool) -> Int {
            var lo = 0, hi = distinctCount
            while lo < hi {
                let mid = (lo + hi) >> 1
                let k = stringKey(mid)
                let c = FilterCompare.compareBytes(k.prefix(p.count), p)
                let below = strictPrefix ? c <= 0 : FilterCompare.compareBytes(k, p) < 0
                if below { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
        let a = firstNotBelow(false), b = firstNotBelow(true)
        return a..<max(a, b)
    }

    /// Rows in ordinal ranges (summed).
    func count(_ ranges: [Range<Int>]) -> Int { ranges.reduce(0) { $0 + postingRange($1).count } }
}

/// The parsed payload_index section: one view per indexed column.
struct PayloadIndexes: Sendable {
    /// Views by column ordinal (nil: column not indexed).
    let byOrdinal: [PayloadIndexView?]

    init(bytes: UnsafeRawBufferPointer, fileOffset: UInt64, schema: SegmentSchema, rowCount: Int) throws(StrataError) {
        var r = ByteReader(bytes, baseOffset: fileOffset, section: "payload_index")
        guard try r.slice(8).elementsEqual(PayloadIndexSection.magic) else { throw r.error("bad payload index magic") }
        let version = try r.u32(), count = try r.u32(), rows = try r.u64()
        try r.reservedZeros(8)
        guard version == PayloadIndexSection.version else { throw r.error("payload index version \(version) is unknown", code: .unsupportedFeature) }
        guard rows == UInt64(rowCount) else { throw r.error("payload index covers \(rows) rows, segment has \(rowCount)") }
        guard UInt64(count) * 32 <= UInt64(r.remaining) else { throw r.error("entry count \(count) exceeds the section") }
        var views = [PayloadIndexView?](repeating: nil, count: schema.columns.count)
        for _ in 0..<count {
            let at = r.absoluteOffset
            let ordinal = try r.u32(), keyType = try r.u8(), flags = try r.u8()
            try r.reservedZeros(2)
            let offset = try r.u64(), length = try r.u64()
            try r.reservedZeros(8)
            guard Int(ordinal) < schema.columns.count, views[Int(ordinal)] == nil else {
                throw StrataError(.corrupt, "payload index entry for bad or repeated column \(ordinal)", section: "payload_index", offset: at)
            }
            guard offset % 8 == 0, Checked.fits(offset: offset, length: length, within: UInt64(bytes.count)) else {
                throw StrataError(.corrupt, "payload index entry out of range", section: "payload_index", offset: at + 8)
            }
            let body = UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<Int(offset + length)])
            views[Int(ordinal)] = try PayloadIndexView(column: schema.columns[Int(ordinal)], ordinal: Int(ordinal), keyType: keyType,
                                                       flags: flags, body: body, rowCount: rowCount, at: fileOffset + offset)
        }
        byOrdinal = views
    }
}
