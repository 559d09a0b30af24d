// BM25 over a string column (section kind 21, `text_index`, format 1.2): the writer tokenizes the
// column into term-frequency postings (the PostingLists of Sparse.swift with tf as the value), keeps
// each row's length in tokens and the corpus statistics (rows, total tokens, per-term document
// frequency). Scores use k1 = 1.2, b = 0.75 and idf = ln(1 + (N - df + 0.5) / (df + 0.5)) with N,
// df and the average length taken from ``BM25Statistics``: one segment's own, or several segments'
// combined (sum of rows, tokens and dfs) so that scores agree across a collection.
//
// Tokenizer: Unicode lower-casing, then maximal runs of letters and digits (everything else
// separates); no stemming, no stop words.
//
// text_index section (little-endian, offsets relative to the section start):
//   0 8 magic "STRATEXT"   8 4 version (1)   12 4 entry count C   16 8 row count N   24 8 reserved (0)
//   32 + 32 x C entries: 0 4 column ordinal  4 4 reserved  8 8 body offset (8-aligned)  16 8 body length  24 8 reserved
// Body: 0 8 term count T   8 8 posting count P   16 8 block count B   24 8 total tokens   32 8 term bytes K
//   40 8 reserved (0)
//   48          term byte offsets (T+1) x u64 (terms sorted by UTF-8 bytes)
//   then        document lengths N x u32, zero padded to 8
//   then        PostingLists (Sparse.swift): starts, block starts, rows, tf (f32), block max tf
//   then        K term bytes, zero padded to 8
import StrataFormat
import StrataIndex
import Foundation
import HeapModule

/// The BM25 constants and tokenizer.
public enum BM25 {
    /// Term-frequency saturation.
    public static let k1: Float = 1.2
    /// Length normalisation.
    public static let b: Float = 0.75

    /// Splits `text` into lower-cased tokens (maximal runs of letters and digits).
    public static func tokenize(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        for ch in text.lowercased().unicodeScalars {
            if CharacterSet.alphanumerics.contains(ch) { current.unicodeScalars.append(ch) }
            else if !current.isEmpty { out.append(current); current = "" }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// ln(1 + (N - df + 0.5) / (df + 0.5)).
    public static func idf(documents n: Int, documentFrequency df: Int) -> Float {
        Float(log(1 + (Double(n) - Double(df) + 0.5) / (Double(df) + 0.5)))
    }

    /// One term's contribution: idf x tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl)).
    @inline(__always)
    public static func termScore(idf: Float, tf: Float, length: Float, averageLength: Float) -> Float {
        idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / max(averageLength, 1e-9)))
    }
}

/// Corpus statistics of a BM25 column: per segment, or summed over segments.
public struct BM25Statistics: Sendable, Equatable {
    /// Rows (documents).
    public var documents: Int
    /// Tokens over all documents.
    public var totalLength: Int
    /// Documents holding each term (only the terms asked for).
    public var documentFrequency: [String: Int]

    /// Creates statistics.
    public init(documents: Int, totalLength: Int, documentFrequency: [String: Int]) {
        self.documents = documents; self.totalLength = totalLength; self.documentFrequency = documentFrequency
    }

    /// Average document length in tokens.
    public var averageLength: Float { documents == 0 ? 0 : Float(Double(totalLength) / Double(documents)) }

    /// The statistics of several segments together (sums).
    public static func combined(_ parts: [BM25Statistics]) -> BM25Statistics {
        var df: [String: Int] = [:]
        for p in parts { for (t, c) in p.documentFrequency { df[t, default: 0] += c } }
        return BM25Statistics(documents: parts.reduce(0) { $0 + $1.documents }, totalLength: parts.reduce(0) { $0 + $1.totalLength },
                              documentFrequency: df)
    }
}

/// BM25 term scores over a segment's document lengths (the term weight is the idf, times the
/// query count of the term). The bound takes the shortest possible document (length 0).
struct BM25Scorer: PostingScorer {
    let lengths: UnsafePointer<UInt32>
    /// k1 (1 - b) and k1 b / avgdl, so that the length norm is one multiply-add.
    let base: Float, perToken: Float

    init(lengths: UnsafePointer<UInt32>, averageLength: Float) {
        self.lengths = lengths
        base = BM25.k1 * (1 - BM25.b)
        perToken = BM25.k1 * BM25.b / max(averageLength, 1e-9)
    }

    @inline(__always) func score(_ w: Float, _ tf: Float, _ row: Int) -> Float {
        w * tf * (BM25.k1 + 1) / (tf + base + perToken * Float(lengths[row]))
    }
    @inline(__always) func bound(_ w: Float, _ tf: Float) -> Float { w * tf * (BM25.k1 + 1) / (tf + base) }
}

/// Tokenizes one column while rows are appended.
struct TextIndexBuilder {
    let ordinal: Int
    private var termIds: [String: UInt32] = [:]
    private var terms: [String] = []
    private var lists: [[(UInt32, Float)]] = []
    private(set) var lengths: [UInt32] = []
    private(set) var totalTokens: UInt64 = 0

    init(ordinal: Int) { self.ordinal = ordinal }

    mutating func add(_ value: PayloadValue) {
        let row = UInt32(lengths.count)
        var tokens: [String] = []
        switch value {
        case .string(let s): tokens = BM25.tokenize(s)
        case .stringList(let l): tokens = l.flatMap(BM25.tokenize)
        default: break
        }
        lengths.append(UInt32(clamping: tokens.count))
        totalTokens += UInt64(tokens.count)
        var tf: [UInt32: Float] = [:]
        for t in tokens {
            let id: UInt32
            if let x = termIds[t] { id = x } else {
                id = UInt32(terms.count); termIds[t] = id; terms.append(t); lists.append([])
            }
            tf[id, default: 0] += 1
        }
        for (id, f) in tf { lists[Int(id)].append((row, f)) }
    }

    func encoded() -> [UInt8] {
        let utf8 = terms.map { Array($0.utf8) }
        let order = terms.indices.sorted { FilterCompare.compareBytes(utf8[$0], utf8[$1]) < 0 }
        let sortedLists = order.map { lists[$0] }
        let postings = sortedLists.reduce(0) { $0 + $1.count }
        let blocks = sortedLists.reduce(0) { $0 + ($1.count + PostingLists.blockSize - 1) / PostingLists.blockSize }
        var termBytes: [UInt8] = []
        var w = ByteWriter()
        w.u64(UInt64(terms.count)); w.u64(UInt64(postings)); w.u64(UInt64(blocks)); w.u64(totalTokens)
        var offsets: [UInt64] = [0]
        for t in order { termBytes += utf8[t]; offsets.append(UInt64(termBytes.count)) }
        w.u64(UInt64(termBytes.count)); w.u64(0)
        for o in offsets { w.u64(o) }
        for l in lengths { w.u32(l) }
        w.pad(to: 8)
        PostingLists.encode(sortedLists, into: &w)
        w.raw(termBytes)
        w.pad(to: 8)
        return w.bytes
    }
}

/// Encodes the text_index section.
enum TextIndexSection {
    static let magic: [UInt8] = Array("STRATEXT".utf8)

    static func encode(_ builders: [TextIndexBuilder], rowCount: Int) -> [UInt8] {
        let bodies = builders.map { $0.encoded() }
        var w = ByteWriter()
        w.raw(magic); w.u32(1); w.u32(UInt32(builders.count)); w.u64(UInt64(rowCount)); w.u64(0)
        var offset = UInt64(32 + 32 * builders.count)
        for (b, body) in zip(builders, bodies) {
            w.u32(UInt32(b.ordinal)); w.u32(0); w.u64(offset); w.u64(UInt64(body.count)); w.u64(0)
            offset += UInt64(body.count)
        }
        for body in bodies { w.raw(body) }
        return w.bytes
    }
}

/// Read side of one column's BM25 index.
///
/// Unchecked `Sendable`: pointers into the segment's read-only mapping, never written after open; the
/// segment keeps the mapping alive.
struct TextIndexView: @unchecked Sendable {
    let column: ColumnSpec
    let ordinal: Int
    let termOffsets: UnsafeRawPointer
    let termBytes: UnsafeRawBufferPointer
    let lengths: UnsafePointer<UInt32>
    let lists: PostingLists
    let totalTokens: Int
    let rowCount: Int
    let byteCount: Int

    static func parseSection(_ bytes: UnsafeRawBufferPointer, fileOffset: UInt64, schema: SegmentSchema, rowCount: Int) throws(StrataError) -> [TextIndexView] {
        var r = ByteReader(bytes, baseOffset: fileOffset, section: "text_index")
        guard try r.slice(8).elementsEqual(TextIndexSection.magic) else { throw r.error("bad text index magic") }
        guard try r.u32() == 1 else { throw r.error("unknown text index version", code: .unsupportedFeature) }
        let count = try r.u32(), rows = try r.u64()
        try r.reservedZeros(8)
        guard rows == UInt64(rowCount), UInt64(count) * 32 <= UInt64(r.remaining) else { throw r.error("text index header does not fit the segment") }
        var out: [TextIndexView] = []
        for _ in 0..<count {
            let at = r.absoluteOffset
            let ordinal = try r.u32()
            try r.reservedZeros(4)
            let offset = try r.u64(), length = try r.u64()
            try r.reservedZeros(8)
            guard Int(ordinal) < schema.columns.count, !out.contains(where: { $0.ordinal == Int(ordinal) }),
                  offset % 8 == 0, Checked.fits(offset: offset, length: length, within: UInt64(bytes.count)) else {
                throw StrataError(.corrupt, "bad text index entry", section: "text_index", offset: at)
            }
            out.append(try TextIndexView(column: schema.columns[Int(ordinal)], ordinal: Int(ordinal),
                                         body: UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<Int(offset + length)]),
                                         fileOffset: fileOffset + offset, rowCount: rowCount))
        }
        return out
    }

    init(column: ColumnSpec, ordinal: Int, body: UnsafeRawBufferPointer, fileOffset: UInt64, rowCount: Int) throws(StrataError) {
        var r = ByteReader(body, baseOffset: fileOffset, section: "text_index")
        let t = try r.u64(), p = try r.u64(), b = try r.u64(), total = try r.u64(), k = try r.u64()
        try r.reservedZeros(8)
        let limit = UInt64(body.count)
        guard t <= limit / 8, p <= limit / 8, b <= limit / 4, k <= limit else { throw r.error("text index counts exceed the body") }
        let lengthArea = (rowCount * 4 + 7) / 8 * 8
        let postingsAt = 48 + Int(t + 1) * 8 + lengthArea
        let listBytes = PostingLists.encodedSize(terms: Int(t), postings: Int(p), blocks: Int(b))
        guard postingsAt + listBytes + Int((k + 7) / 8 * 8) == body.count else { throw r.error("text index length does not match its counts") }
        let base = body.baseAddress!
        self.column = column
        self.ordinal = ordinal
        termOffsets = base + 48
        lengths = (base + 48 + Int(t + 1) * 8).assumingMemoryBound(to: UInt32.self)
        lists = PostingLists(base: base + postingsAt, terms: Int(t), postings: Int(p), blocks: Int(b))
        termBytes = UnsafeRawBufferPointer(start: base + postingsAt + listBytes, count: Int(k))
        totalTokens = Int(clamping: total)   // a statistic: damage skews scores, never traps
        self.rowCount = rowCount
        byteCount = body.count
        let fail = { (m: String) in StrataError(.corrupt, "text index of '\(column.name)': \(m)", section: "text_index", offset: fileOffset) }
        try lists.validate(rowCount: rowCount, fail: fail)
        var prev: UInt64 = 0
        for i in 0...Int(t) {
            let o = UInt64(littleEndian: termOffsets.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
            guard o >= prev, o <= k, i > 0 || o == 0 else { throw fail("term offsets out of order") }
            prev = o
        }
    }

    func term(_ i: Int) -> UnsafeRawBufferPointer {
        let a = Int(clamping: UInt64(littleEndian: termOffsets.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
        let b = Int(clamping: UInt64(littleEndian: termOffsets.loadUnaligned(fromByteOffset: (i + 1) * 8, as: UInt64.self)))
        guard a <= b, b <= termBytes.count else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: termBytes[a..<b])
    }

    func termOrdinal(_ s: String) -> Int? {
        let key = Array(s.utf8)
        var lo = 0, hi = lists.termCount
        while lo < hi { let mid = (lo + hi) >> 1; if FilterCompare.compareBytes(term(mid), key) < 0 { lo = mid + 1 } else { hi = mid } }
        return lo < lists.termCount && FilterCompare.compareBytes(term(lo), key) == 0 ? lo : nil
    }

    func documentFrequency(_ s: String) -> Int {
        guard let t = termOrdinal(s) else { return 0 }
        return lists.start(t + 1) - lists.start(t)
    }
}

extension Segment {
    func textIndex(_ column: String) throws(StrataError) -> TextIndexView {
        let i = try schema.columnIndex(named: column)
        guard let v = searchExtras?.text.first(where: { $0.ordinal == i }) else {
            throw StrataError(.invalidArgument, "column '\(column)' has no BM25 index in this segment", path: path)
        }
        try checkBeforeRead(Segment.textSections)
        return v
    }

    /// Names of the columns with a BM25 index.
    public var bm25Columns: [String] { (searchExtras?.text ?? []).map(\.column.name) }

    /// Bytes of each BM25 index by column name.
    public var bm25IndexSizes: [String: Int] {
        var out: [String: Int] = [:]
        for v in searchExtras?.text ?? [] { out[v.column.name] = v.byteCount }
        return out
    }

    /// This segment's BM25 statistics for `column`, with document frequencies of the tokens of `text`
    /// (combine several segments' with ``BM25Statistics/combined(_:)``).
    public func bm25Statistics(column: String, text: String) throws(StrataError) -> BM25Statistics {
        try checkOpen()
        let v = try textIndex(column)
        var df: [String: Int] = [:]
        for t in Set(BM25.tokenize(text)) { df[t] = v.documentFrequency(t) }
        return BM25Statistics(documents: rowCount, totalLength: v.totalTokens, documentFrequency: df)
    }

    /// Top-k rows of `column` by BM25 score for `text` (block-max MaxScore), optionally only rows
    /// passing `filter`; `statistics` defaults to this segment's own (pass combined ones to score a
    /// collection consistently). A query token repeated counts once per occurrence.
    public func bm25Search(column: String, text: String, k: Int, filter: Filter? = nil,
                           statistics: BM25Statistics? = nil) throws(StrataError) -> [ScoredHit] {
        try checkOpen()
        guard k >= 1 else { throw StrataError(.invalidArgument, "k must be at least 1, got \(k)") }
        let v = try textIndex(column)
        let stats: BM25Statistics
        if let statistics { stats = statistics } else { stats = try bm25Statistics(column: column, text: text) }
        var compiled: CompiledFilter? = nil
        if let filter { compiled = try CompiledFilter(filter: filter, segment: self) }
        var counts: [String: Int] = [:]
        for t in BM25.tokenize(text) { counts[t, default: 0] += 1 }
        var q: [PostingLists.QueryTerm] = []
        for (t, c) in counts.sorted(by: { $0.key < $1.key }) {
            guard let o = v.termOrdinal(t) else { continue }
            let df = stats.documentFrequency[t] ?? v.documentFrequency(t)
            q.append(.init(term: o, weight: Float(c) * BM25.idf(documents: stats.documents, documentFrequency: df)))
        }
        let scorer = BM25Scorer(lengths: v.lengths, averageLength: stats.averageLength)
        let found = v.lists.search(q, k: k, rowCount: rowCount, scorer: scorer, admit: compiled.map { c in { c.test($0) } })
        return found.map { ScoredHit(id: unsafeId(ofRow: $0.row), row: $0.row, score: $0.score) }
    }
}
