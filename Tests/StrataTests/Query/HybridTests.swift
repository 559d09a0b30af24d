// Sparse vectors, BM25 and hybrid fusion.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class HybridTests: StrataTestCase {
    static let corpus = [
        "Fast vector search for Python",
        "A python library for fast JSON parsing",
        "Vector database with hybrid search",
        "Search, search and search again: a search engine",
        "",
        "Rust bindings for the vector search library",
    ]

    func writeText(_ path: String, _ docs: [String], firstId: UInt64 = 0) throws {
        let schema = SegmentSchema(dimension: 4, metric: .l2, columns: [ColumnSpec(name: "text", type: .string)])
        var options = SegmentWriterOptions()
        options.search = SearchSectionOptions(bm25Columns: ["text"])
        let w = try SegmentWriter(path: path, schema: schema, options: options)
        try w.append(docs.enumerated().map { i, d in
            SegmentRow(id: firstId + UInt64(i), vector: [Float(i), 1, 0, 0], payload: ["text": .string(d)])
        })
        try w.finish()
    }

    /// BM25 computed directly from the definition (k1 1.2, b 0.75, idf ln(1 + (N - df + .5)/(df + .5))).
    func referenceBM25(_ docs: [String], query: String) -> [Double] {
        let tokenized = docs.map(BM25.tokenize)
        let n = Double(docs.count)
        let avg = Double(tokenized.reduce(0) { $0 + $1.count }) / n
        return tokenized.map { doc in
            var score = 0.0
            for t in BM25.tokenize(query) {
                let df = Double(tokenized.filter { $0.contains(t) }.count)
                guard df > 0 else { continue }
                let idf = log(1 + (n - df + 0.5) / (df + 0.5))
                let tf = Double(doc.filter { $0 == t }.count)
                score += idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * Double(doc.count) / avg))
            }
            return score
        }
    }

    func testTokenizer() {
        XCTAssertEqual(BM25.tokenize("Search, search-ENGINE: v2.0 Größe"), ["search", "search", "engine", "v2", "0", "größe"])
        XCTAssertEqual(BM25.tokenize("  "), [])
    }

    func testBM25ScoresEqualTheReference() throws {
        let path = tmpPath("t.seg")
        try writeText(path, Self.corpus)
        let seg = try Segment.open(path: path)
        XCTAssertTrue(seg.sections.contains { $0.kind == .textIndex && !$0.required })
        XCTAssertEqual(seg.bm25Columns, ["text"])
        for q in ["vector search", "python", "search search", "fast json", "nothing here", "library"] {
            let want = referenceBM25(Self.corpus, query: q)
            let got = try seg.bm25Search(column: "text", text: q, k: 10)
            let expected = want.enumerated().filter { $0.element > 0 }.sorted { $0.element != $1.element ? $0.element > $1.element : $0.offset < $1.offset }
            XCTAssertEqual(got.map(\.row), expected.map(\.offset), q)
            for h in got { XCTAssertEqual(Double(h.score), want[h.row], accuracy: 1e-4, q) }
        }
        // Filter on the text side.
        let f = try Filter(json: #"{"must":[{"key":"text","prefix":"Vector"}]}"#)
        XCTAssertEqual(try seg.bm25Search(column: "text", text: "search", k: 10, filter: f).map(\.row), [2])
    }

    func testBM25StatisticsCombineAcrossSegments() throws {
        let a = tmpPath("a.seg"), b = tmpPath("b.seg")
        try writeText(a, Array(Self.corpus[0..<3]))
        try writeText(b, Array(Self.corpus[3...]), firstId: 3)
        let segs = [try Segment.open(path: a), try Segment.open(path: b)]
        let q = "vector search library"
        let stats = BM25Statistics.combined(try segs.map { try $0.bm25Statistics(column: "text", text: q) })
        XCTAssertEqual(stats.documents, Self.corpus.count)
        let want = referenceBM25(Self.corpus, query: q)
        var merged: [(UInt64, Float)] = []
        for s in segs { merged += try s.bm25Search(column: "text", text: q, k: 10, statistics: stats).map { ($0.id, $0.score) } }
        for (id, score) in merged { XCTAssertEqual(Double(score), want[Int(id)], accuracy: 1e-4, "id \(id)") }
        XCTAssertEqual(merged.count, want.filter { $0 > 0 }.count)
    }

    func testRRFOnAHandCheckedExample() {
        // a: 1/61 + 1/62 = 0.032522, c: 1/63 + 1/61 = 0.032266, b: 1/62 = 0.016129, d: 1/63 = 0.015873.
        let ranked: ([UInt64]) -> [(id: UInt64, score: Double)] = { ids in ids.map { ($0, 0) } }
        let fused = HybridFusion.rrf(k: 60).fuse([ranked([1, 2, 3]), ranked([3, 1, 4])])   // a=1 b=2 c=3 d=4
        XCTAssertEqual(fused.map(\.id), [1, 3, 2, 4])
        XCTAssertEqual(fused[0].score, 1.0 / 61 + 1.0 / 62, accuracy: 1e-12)
        XCTAssertEqual(fused[1].score, 1.0 / 63 + 1.0 / 61, accuracy: 1e-12)
        // Ties break by id.
        XCTAssertEqual(HybridFusion.rrf().fuse([ranked([7, 5]), ranked([5, 7])]).map(\.id), [5, 7])
        // Weighted: min-max per list.
        let w = HybridFusion.weighted(dense: 1, sparse: 2, text: 5).fuse([[(1, 10), (2, 5), (3, 0)], [(3, 1.0), (1, 0.5)], []])
        XCTAssertEqual(w.map(\.id), [3, 1, 2])   // 3: 0 + 2, 1: 1 + 0, 2: 0.5
        XCTAssertEqual(w[0].score, 2, accuracy: 1e-12)
    }

    func sparseRows(_ n: Int, seed: UInt64) -> [SparseVector] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            let k = 1 + rng.int(12)
            return SparseVector(indices: (0..<k).map { _ in UInt32(rng.int(300)) }, values: (0..<k).map { _ in rng.unitFloat() + 0.01 })
        }
    }

    static func bruteForce(_ rows: [Int], _ vectors: [SparseVector], _ q: SparseVector, k: Int) -> [(row: Int, score: Float)] {
        var scored: [(row: Int, score: Float)] = []
        for r in rows {
            let d = vectors[r].dot(q)
            if d != 0 { scored.append((r, d)) }
        }
        scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.row < $1.row }
        return Array(scored.prefix(k))
    }

    func testSparseSearchRecallVersusBruteForce() throws {
        let n = 3000
        let vectors = sparseRows(n, seed: 3)
        let path = tmpPath("s.seg")
        let schema = SegmentSchema(dimension: 2, metric: .l2, columns: [ColumnSpec(name: "flag", type: .bool)])
        let w = try SegmentWriter(path: path, schema: schema)
        for i in 0..<n {
            try w.append([SegmentRow(id: UInt64(i) + 100, vector: [1, Float(i)], payload: ["flag": .bool(i % 3 == 0)])])
            if i % 10 != 7 { try w.setSparseVector(row: i, vectors[i]) }   // some rows have no sparse vector
        }
        try w.finish()
        let seg = try Segment.open(path: path)
        XCTAssertTrue(seg.hasSparseIndex)
        XCTAssertTrue(seg.verify().isSound)
        var found = 0, total = 0
        let flag = try Filter(json: #"{"must":[{"key":"flag","match":{"value":true}}]}"#)
        for (qi, q) in sparseRows(40, seed: 77).enumerated() {
            let filtered = qi % 2 == 1
            let rowsWanted: [Int] = (0..<n).filter { $0 % 10 != 7 && (!filtered || $0 % 3 == 0) }
            let brute = Self.bruteForce(rowsWanted, vectors, q, k: 10)
            let got = try seg.sparseSearch(query: q, k: 10, filter: filtered ? flag : nil)
            if filtered { for h in got { XCTAssertEqual(h.row % 3, 0) } }
            let want = Set(brute.map { $0.row })
            found += got.filter { want.contains($0.row) }.count
            total += want.count
            // Scores are dot products.
            for h in got { XCTAssertEqual(h.score, vectors[h.row].dot(q), accuracy: 1e-4) }
            // The k-th score matches (ties may swap rows of equal score).
            if let last = brute.last, got.count == brute.count { XCTAssertEqual(got.last!.score, last.score, accuracy: 1e-4) }
        }
        XCTAssertEqual(Double(found) / Double(total), 1.0, accuracy: 0.01, "MaxScore with block-max bounds is exact")
        // Negative weights take the exhaustive path and stay exact.
        let neg = SparseVector(indices: [1, 2, 3], values: [1, -2, 0.5])
        let all: [Int] = (0..<n).filter { $0 % 10 != 7 }
        let negBrute = Self.bruteForce(all, vectors, neg, k: 5)
        XCTAssertEqual(try seg.sparseSearch(query: neg, k: 5).map(\.score), negBrute.map { $0.score })
    }

    func testHybridQueryFusesDenseSparseAndText() throws {
        let n = 2500
        var rng = SplitMix64(seed: 11)
        let words = ["vector", "search", "python", "fast", "json", "database", "web", "async"]
        let schema = SegmentSchema(dimension: 8, metric: .cosine, columns: [
            ColumnSpec(name: "text", type: .string), ColumnSpec(name: "year", type: .int64)])
        var options = SegmentWriterOptions()
        var index = IndexOptions()
        index.minimumRows = 0; index.pqSubspaces = 4; index.graph.maxDegree = 16; index.graph.buildListSize = 32; index.graph.threads = 2
        options.index = index
        options.search = SearchSectionOptions(indexedColumns: ["year"], bm25Columns: ["text"])
        let path = tmpPath("h.seg")
        let w = try SegmentWriter(path: path, schema: schema, options: options)
        let sparse = sparseRows(n, seed: 5)
        var vectors: [[Float]] = []
        for i in 0..<n {
            let v = (0..<8).map { _ in rng.gaussianish() }
            vectors.append(v)
            let text = (0..<(2 + rng.int(6))).map { _ in words[rng.int(words.count)] }.joined(separator: " ")
            try w.append([SegmentRow(id: UInt64(i), vector: v, payload: ["text": .string(text), "year": .int64(Int64(2015 + rng.int(10)))])])
            try w.setSparseVector(row: i, sparse[i])
        }
        try w.finish()
        let seg = try Segment.open(path: path)
        let filter = try Filter(json: #"{"must":[{"key":"year","range":{"gte":2020}}]}"#)
        let passing = Set(try seg.rows(matching: filter))
        let q = HybridQuery(dense: vectors[17], sparse: sparse[17], text: (column: "text", query: "fast vector search"),
                            filter: filter, k: 10, candidates: 30, fusion: .rrf())
        let hits = try seg.hybridSearch(q)
        XCTAssertEqual(hits.count, 10)
        for h in hits { XCTAssertTrue(passing.contains(h.row), "fused result fails the filter") }
        // Same as fusing the three sides by hand.
        let dense = try seg.search(query: vectors[17], filter: filter, options: FilteredSearchOptions(k: 30, listSize: 64)).hits.map(\.id)
        let sp = try seg.sparseSearch(query: sparse[17], k: 30, filter: filter).map(\.id)
        let tx = try seg.bm25Search(column: "text", text: "fast vector search", k: 30, filter: filter).map(\.id)
        XCTAssertEqual(hits.map(\.id), Array(HybridFusion.rrf().fuse([dense, sp, tx].map { $0.map { ($0, 0) } }).prefix(10).map(\.id)))
        XCTAssertEqual(hits.first?.denseRank.map { dense[$0 - 1] }, hits.first?.denseRank != nil ? hits.first!.id : nil)
        // Weighted fusion runs and respects the filter.
        var qw = q
        qw.fusion = .weighted(dense: 1, sparse: 0.5, text: 0.5)
        for h in try seg.hybridSearch(qw) { XCTAssertTrue(passing.contains(h.row)) }
        // No side: an error.
        assertStrataError(.invalidArgument) { try seg.hybridSearch(HybridQuery()) }
    }
}
