// Sparse vectors (section kind 20, `sparse_index`, format 1.2) and the posting-list machinery that
// the BM25 text index (BM25.swift) shares: per term, a posting list of (row u32 ascending, value f32)
// cut into blocks of 128 postings, each block with the maximum value it holds.
//
// Search is document-at-a-time MaxScore with block-max bounds (non-negative values): query terms
// sorted by upper bound; the terms whose bounds together cannot beat the current k-th score are
// "non-essential": candidates come only from the essential terms' postings, and a non-essential
// term is looked up for a candidate only while the candidate's score plus the remaining bounds
// (the block maximum for the block the lookup lands in) can still enter the top k.
//
// sparse_index section (little-endian, offsets relative to the section start):
//   0 8 magic "STRASPRS"   8 4 version (1)   12 4 block size (128)   16 8 row count N   24 8 term count T
//   32 8 posting count P   40 8 block count B   48 16 reserved (0)
//   64          terms T x u32 (dimension indices, strictly ascending), zero padded to 8
//   then        posting starts (T+1) x u64     then block starts (T+1) x u64
//   then        rows P x u32                    then values P x f32
//   then        block maxima B x f32            then zero padding to 8
import StrataFormat
import StrataIndex
import HeapModule

/// One hit of a sparse or text search: higher scores are better.
public struct ScoredHit: Sendable, Equatable {
    /// External id.
    public var id: UInt64
    /// Row in the segment.
    public var row: Int
    /// Score (dot product, or BM25).
    public var score: Float

    /// Creates a hit.
    public init(id: UInt64, row: Int, score: Float) { self.id = id; self.row = row; self.score = score }
}

/// Posting lists with block maxima over mapped bytes (shared by sparse_index and text_index).
///
/// Unchecked `Sendable`: pointers into the segment's read-only mapping, never written after open; the
/// segment keeps the mapping alive.
struct PostingLists: @unchecked Sendable {
    static let blockSize = 128
    let termCount: Int
    let postingCount: Int
    let starts: UnsafeRawPointer       // (T+1) u64
    let blockStarts: UnsafeRawPointer  // (T+1) u64
    let rows: UnsafePointer<UInt32>
    let values: UnsafePointer<Float>
    let blockMax: UnsafePointer<Float>
    let blockCount: Int

    // Values read from the file: clamped, never trapping, so that `validate` can reject them.
    @inline(__always) func start(_ t: Int) -> Int { Int(clamping: UInt64(littleEndian: starts.loadUnaligned(fromByteOffset: t * 8, as: UInt64.self))) }
    @inline(__always) func blockStart(_ t: Int) -> Int { Int(clamping: UInt64(littleEndian: blockStarts.loadUnaligned(fromByteOffset: t * 8, as: UInt64.self))) }

    /// Checks the starts once (O(T)) so that the hot loops can trust them.
    func validate(rowCount: Int, fail: (String) -> StrataError) throws(StrataError) {
        var prev = 0, prevB = 0
        guard start(0) == 0, blockStart(0) == 0 else { throw fail("posting starts do not begin at 0") }
        for t in 1...max(1, termCount) where termCount > 0 {
            let s = start(t), b = blockStart(t)
            guard s >= prev, s <= postingCount, b >= prevB, b <= blockCount else { throw fail("bad posting or block starts at term \(t)") }
            guard b - prevB == (s - prev + Self.blockSize - 1) / Self.blockSize else { throw fail("block starts disagree with posting starts at term \(t)") }
            prev = s; prevB = b
        }
        guard termCount == 0 || (prev == postingCount && prevB == blockCount) else { throw fail("posting starts do not cover the postings") }
    }

    /// Writes the starts, rows, values and block maxima of `lists` (one list per term, rows ascending).
    static func encode(_ lists: [[(UInt32, Float)]], into w: inout ByteWriter) {
        var s: UInt64 = 0, b: UInt64 = 0
        w.u64(0)
        for l in lists { s += UInt64(l.count); w.u64(s) }
        w.u64(0)
        for l in lists { b += UInt64((l.count + blockSize - 1) / blockSize); w.u64(b) }
        for l in lists { for (r, _) in l { w.u32(r) } }
        for l in lists { for (_, v) in l { w.u32(v.bitPattern) } }
        for l in lists {
            var i = 0
            while i < l.count {
                let m = l[i..<min(l.count, i + blockSize)].reduce(-Float.infinity) { max($0, $1.1) }
                w.u32(m.bitPattern)
                i += blockSize
            }
        }
        w.pad(to: 8)
    }

    static func encodedSize(terms: Int, postings: Int, blocks: Int) -> Int {
        let raw = 2 * (terms + 1) * 8 + postings * 8 + blocks * 4
        return (raw + 7) / 8 * 8
    }

    init(base: UnsafeRawPointer, terms: Int, postings: Int, blocks: Int) {
        termCount = terms; postingCount = postings; blockCount = blocks
        starts = base
        blockStarts = base + (terms + 1) * 8
        rows = (base + 2 * (terms + 1) * 8).assumingMemoryBound(to: UInt32.self)
        values = (base + 2 * (terms + 1) * 8 + postings * 4).assumingMemoryBound(to: Float.self)
        blockMax = (base + 2 * (terms + 1) * 8 + postings * 8).assumingMemoryBound(to: Float.self)
    }

    /// A query term's position in its posting list during ``search``.
    struct Cursor { var pos: Int; var end: Int; var first: Int; var firstBlock: Int; var weight: Float; var ub: Float }

    /// One query term for ``search``.
    struct QueryTerm {
        var term: Int
        /// Multiplies every posting value (query weight; for BM25 the idf).
        var weight: Float
    }

    /// Top-k rows by sum over terms of `score(term weight, value, row)` with MaxScore + block-max
    /// pruning. `score` must be non-decreasing in value and `bound(weight, value)` must bound it from
    /// above for any row; `admit` filters rows (tested before scoring). Equal scores are ordered by
    /// `tieKey(row)` ascending (default: the row): pruning only skips a row whose bound is below the
    /// k-th score, so a row that ties it and sorts first still enters.
    func search<S: PostingScorer>(_ query: [QueryTerm], k: Int, rowCount: Int, scorer: S,
                                  admit: ((Int) -> Bool)?, tieKey: ((Int) -> UInt64)? = nil) -> [(row: Int, score: Float)] {
        @inline(__always) func key(_ r: Int) -> UInt64 { tieKey?(r) ?? UInt64(r) }
        @inline(__always) func score(_ w: Float, _ v: Float, _ r: Int) -> Float { scorer.score(w, v, r) }
        @inline(__always) func bound(_ w: Float, _ v: Float) -> Float { scorer.bound(w, v) }
        var cursors: [Cursor] = []
        for q in query where q.term >= 0 && q.term < termCount && q.weight > 0 {
            let a = start(q.term), e = start(q.term + 1)
            guard a < e else { continue }
            var m: Float = 0
            for b in blockStart(q.term)..<blockStart(q.term + 1) { m = max(m, blockMax[b]) }
            cursors.append(Cursor(pos: a, end: e, first: a, firstBlock: blockStart(q.term), weight: q.weight, ub: bound(q.weight, m)))
        }
        cursors.sort { $0.ub < $1.ub }
        let t = cursors.count
        var prefix = [Float](repeating: 0, count: t + 1)
        for i in 0..<t { prefix[i + 1] = prefix[i] + cursors[i].ub }
        var heap = Heap<MinScore>()
        var theta = -Float.infinity
        var firstEssential = 0
        while true {
            // Next candidate: the smallest current row among essential cursors.
            var r = Int.max
            for i in firstEssential..<t where cursors[i].pos < cursors[i].end { r = min(r, Int(rows[cursors[i].pos])) }
            if r == Int.max { break }
            let skip = r >= rowCount || !(admit?(r) ?? true)   // a corrupt row id, or filtered out
            var s: Float = 0
            for i in firstEssential..<t where cursors[i].pos < cursors[i].end && Int(rows[cursors[i].pos]) == r {
                if !skip { s += score(cursors[i].weight, values[cursors[i].pos], r) }
                cursors[i].pos += 1
            }
            if skip { continue }
            var i = firstEssential - 1
            while i >= 0 {
                if s + prefix[i + 1] < theta { break }
                // Seek cursor i to the first row >= r: gallop from the current position (seeks are
                // mostly short), then binary search the last step.
                var lo = cursors[i].pos, hi = cursors[i].end
                var step = 1
                while lo + step < hi && Int(rows[lo + step]) < r { lo += step; step <<= 1 }
                hi = min(hi, lo + step + 1)
                while lo < hi { let mid = (lo + hi) >> 1; if Int(rows[mid]) < r { lo = mid + 1 } else { hi = mid } }
                cursors[i].pos = lo
                if lo < cursors[i].end && Int(rows[lo]) == r {
                    // Block-max: this block's maximum bounds the contribution more tightly than the term's.
                    let blockBound = bound(cursors[i].weight, blockMax[cursors[i].firstBlock + (lo - cursors[i].first) / Self.blockSize])
                    if s + prefix[i] + blockBound >= theta { s += score(cursors[i].weight, values[lo], r) }
                }
                i -= 1
            }
            if heap.count < k { heap.insert(MinScore(score: s, row: r, key: key(r))) }
            else if s >= heap.min!.score {
                let candidate = MinScore(score: s, row: r, key: key(r))
                if heap.min! < candidate { _ = heap.replaceMin(with: candidate) }
            }
            if heap.count == k {
                theta = heap.min!.score
                while firstEssential < t && prefix[firstEssential + 1] < theta { firstEssential += 1 }
            }
        }
        return heap.unordered.sorted { $0.score != $1.score ? $0.score > $1.score : $0.key < $1.key }.map { ($0.row, $0.score) }
    }
}

/// How ``PostingLists/search`` scores a posting: `score(term weight, value, row)`, non-decreasing
/// in value, and `bound(term weight, value)` >= score for every row (generic, so specialised).
protocol PostingScorer {
    func score(_ weight: Float, _ value: Float, _ row: Int) -> Float
    func bound(_ weight: Float, _ value: Float) -> Float
}

/// Dot product: weight x value.
struct DotScorer: PostingScorer {
    @inline(__always) func score(_ w: Float, _ v: Float, _ row: Int) -> Float { w * v }
    @inline(__always) func bound(_ w: Float, _ v: Float) -> Float { w * v }
}

/// A heap entry: the heap's minimum is the worst hit kept (lowest score, then highest tie key).
struct MinScore: Comparable {
    var score: Float
    var row: Int
    var key: UInt64
    static func < (a: MinScore, b: MinScore) -> Bool { a.score != b.score ? a.score < b.score : a.key > b.key }
    static func == (a: MinScore, b: MinScore) -> Bool { a.score == b.score && a.key == b.key }
}

/// Encodes the sparse_index section.
enum SparseIndexSection {
    static let magic: [UInt8] = Array("STRASPRS".utf8)

    static func encode(_ vectors: [Int: SparseVector], rowCount: Int) -> [UInt8] {
        var byTerm: [UInt32: [(UInt32, Float)]] = [:]
        for row in vectors.keys.sorted() {
            for (i, v) in vectors[row]!.normalized() where v != 0 { byTerm[i, default: []].append((UInt32(row), v)) }
        }
        let terms = byTerm.keys.sorted()
        let lists = terms.map { byTerm[$0]! }
        let postings = lists.reduce(0) { $0 + $1.count }
        let blocks = lists.reduce(0) { $0 + ($1.count + PostingLists.blockSize - 1) / PostingLists.blockSize }
        var w = ByteWriter()
        w.raw(magic); w.u32(1); w.u32(UInt32(PostingLists.blockSize)); w.u64(UInt64(rowCount)); w.u64(UInt64(terms.count))
        w.u64(UInt64(postings)); w.u64(UInt64(blocks)); w.zeros(16)
        for t in terms { w.u32(t) }
        w.pad(to: 8)
        PostingLists.encode(lists, into: &w)
        return w.bytes
    }
}

/// Read side of the sparse_index section.
///
/// Unchecked `Sendable`: pointers into the segment's read-only mapping, never written after open; the
/// segment keeps the mapping alive.
struct SparseIndexView: @unchecked Sendable {
    let terms: UnsafePointer<UInt32>
    let lists: PostingLists
    let rowCount: Int
    let byteCount: Int

    init(bytes: UnsafeRawBufferPointer, fileOffset: UInt64, rowCount: Int) throws(StrataError) {
        var r = ByteReader(bytes, baseOffset: fileOffset, section: "sparse_index")
        guard try r.slice(8).elementsEqual(SparseIndexSection.magic) else { throw r.error("bad sparse index magic") }
        guard try r.u32() == 1 else { throw r.error("unknown sparse index version", code: .unsupportedFeature) }
        guard try r.u32() == UInt32(PostingLists.blockSize) else { throw r.error("unsupported block size", code: .unsupportedFeature) }
        let rows = try r.u64(), t = try r.u64(), p = try r.u64(), b = try r.u64()
        try r.reservedZeros(16)
        let limit = UInt64(bytes.count)
        guard rows == UInt64(rowCount), t <= limit / 4, p <= limit / 8, b <= limit / 4 else { throw r.error("sparse index counts exceed the section") }
        let termArea = (Int(t) * 4 + 7) / 8 * 8
        guard 64 + termArea + PostingLists.encodedSize(terms: Int(t), postings: Int(p), blocks: Int(b)) == bytes.count else {
            throw r.error("sparse index length does not match its counts")
        }
        let base = bytes.baseAddress!
        terms = (base + 64).assumingMemoryBound(to: UInt32.self)
        lists = PostingLists(base: base + 64 + termArea, terms: Int(t), postings: Int(p), blocks: Int(b))
        self.rowCount = rowCount
        byteCount = bytes.count
        try lists.validate(rowCount: rowCount) { StrataError(.corrupt, "sparse index: \($0)", section: "sparse_index", offset: fileOffset) }
    }

    func termOrdinal(_ dim: UInt32) -> Int? {
        var lo = 0, hi = lists.termCount
        while lo < hi { let mid = (lo + hi) >> 1; if terms[mid] < dim { lo = mid + 1 } else { hi = mid } }
        return lo < lists.termCount && terms[lo] == dim ? lo : nil
    }
}

extension Segment {
    /// Whether the segment has a sparse-vector index.
    public var hasSparseIndex: Bool { searchExtras?.sparse != nil }

    /// Top-k rows by dot product with `query` over the sparse vectors (rows without one score 0 and
    /// are not returned), optionally only rows passing `filter`. Block-max MaxScore pruning when
    /// every query weight is >= 0 and the stored weights are >= 0; an exhaustive scan of the query
    /// terms' postings otherwise.
    public func sparseSearch(query: SparseVector, k: Int, filter: Filter? = nil) throws(StrataError) -> [ScoredHit] {
        try checkOpen()
        try query.validate()
        guard k >= 1 else { throw StrataError(.invalidArgument, "k must be at least 1, got \(k)") }
        guard searchExtras?.sparse != nil else { throw StrataError(.invalidArgument, "segment has no sparse_index section", path: path) }
        return try sparseTopK(query.normalized(), k: k, filter: filter, admitRow: nil)
    }

    /// The search behind ``sparseSearch(query:k:filter:)``, for a checked, normalised query (query
    /// terms of weight 0 are skipped: they add nothing and match nothing), over the rows that pass
    /// `filter` and `admitRow` (a collection's live rows). A segment without a sparse_index has no
    /// hits.
    /// With `tiesById`, equal scores are ordered by id (a collection merges segments that way),
    /// else by row.
    func sparseTopK(_ q: [(UInt32, Float)], k: Int, filter: Filter?, admitRow: ((Int) -> Bool)?,
                    tiesById: Bool = false) throws(StrataError) -> [ScoredHit] {
        try checkOpen()
        guard let ix = searchExtras?.sparse else { return [] }
        try checkBeforeRead(Segment.sparseSections)
        var compiled: CompiledFilter? = nil
        if let filter { compiled = try CompiledFilter(filter: filter, segment: self) }
        let admit: ((Int) -> Bool)?
        switch (compiled, admitRow) {
        case (nil, nil): admit = nil
        case (let c?, nil): admit = { c.test($0) }
        case (nil, let a?): admit = a
        case (let c?, let a?): admit = { a($0) && c.test($0) }
        }
        var qterms: [PostingLists.QueryTerm] = []
        var negative = false
        for (dim, w) in q where w != 0 {
            guard let t = ix.termOrdinal(dim) else { continue }
            if w < 0 { negative = true }
            qterms.append(.init(term: t, weight: w))
        }
        for qt in qterms {
            for b in ix.lists.blockStart(qt.term)..<ix.lists.blockStart(qt.term + 1) where ix.lists.blockMax[b] < 0 { negative = true }
        }
        let tieKey: ((Int) -> UInt64)? = tiesById ? { self.unsafeId(ofRow: $0) } : nil
        let found: [(row: Int, score: Float)]
        if negative {
            found = exhaustiveSparse(ix.lists, qterms, k: k, admit: admit, tieKey: tieKey)
        } else {
            found = ix.lists.search(qterms, k: k, rowCount: rowCount, scorer: DotScorer(), admit: admit, tieKey: tieKey)
        }
        return found.map { ScoredHit(id: unsafeId(ofRow: $0.row), row: $0.row, score: $0.score) }
    }

    func exhaustiveSparse(_ lists: PostingLists, _ q: [PostingLists.QueryTerm], k: Int, admit: ((Int) -> Bool)?,
                          tieKey: ((Int) -> UInt64)? = nil) -> [(row: Int, score: Float)] {
        var acc: [Int: Float] = [:]
        for qt in q {
            for p in lists.start(qt.term)..<lists.start(qt.term + 1) {
                let r = Int(lists.rows[p])
                if r < rowCount { acc[r, default: 0] += qt.weight * lists.values[p] }
            }
        }
        return acc.filter { admit?($0.key) ?? true }
            .sorted { $0.value != $1.value ? $0.value > $1.value : (tieKey?($0.key) ?? UInt64($0.key)) < (tieKey?($1.key) ?? UInt64($1.key)) }
            .prefix(k).map { ($0.key, $0.value) }
    }
}
