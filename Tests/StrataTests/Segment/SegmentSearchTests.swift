// Exact search against a naive Swift reference: every metric and element type, ties by id, k
// larger than the segment, batched equal to single, filters.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class SegmentSearchTests: StrataTestCase {
    /// Small-integer vectors: every distance is exact in float32 and float16, so results must match the
    /// reference exactly, including the order of ties (by id). Duplicate vectors force ties.
    func integerRows(count: Int, dimension: Int, seed: UInt64) -> [TestRow] {
        var rng = SplitMix64(seed: seed)
        var ids = Set<UInt64>()
        var rows: [TestRow] = []
        while rows.count < count {
            let id = rng.next() % 1_000_000
            guard ids.insert(id).inserted else { continue }
            let v: [Float]
            if rows.count >= 4, rng.int(4) == 0 {
                v = rows[rng.int(rows.count)].vector // duplicate: exact tie
            } else {
                v = (0..<dimension).map { _ in Float(rng.int(7) - 3) }
            }
            rows.append(TestRow(id: id, vector: v.allSatisfy { $0 == 0 } ? [1] + v.dropFirst() : v, values: []))
        }
        return rows
    }

    /// Exact arithmetic: same distances in the same order, hits ordered by (distance, id), and the same
    /// rows except among those tied with the k-th distance. Which tied rows make the cut is checked
    /// separately by ``testTiesAtTheKBoundaryAreBrokenById`` (so one known bug fails one test, not all).
    func assertExactMatch(_ hits: [SearchHit], _ ref: [(row: Int, id: UInt64, distance: Double)],
                          file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(hits.map { Double($0.distance) }, ref.map(\.distance), file: file, line: line)
        XCTAssertEqual(hits, hits.sorted(), "ordered by distance then id", file: file, line: line)
        XCTAssertTrue(hits.allSatisfy { h in ref.contains { $0.row == h.row } || ref.last.map { Double(h.distance) == $0.distance } == true },
                      "every hit is in the reference or tied with its last distance", file: file, line: line)
        let boundary = ref.last?.distance
        XCTAssertEqual(hits.filter { Double($0.distance) != boundary }.map(\.row), ref.filter { $0.distance != boundary }.map(\.row),
                       file: file, line: line)
        XCTAssertEqual(hits.filter { Double($0.distance) != boundary }.map(\.id), ref.filter { $0.distance != boundary }.map(\.id),
                       file: file, line: line)
        for h in hits { XCTAssertEqual(h.id, ref.first { $0.row == h.row }?.id ?? h.id, file: file, line: line) }
    }

    /// The documented order is (distance, id), and the naive reference (like the datasets' ground
    /// truth) takes the k smallest by that order. When more rows tie at the k-th distance than fit,
    /// the smallest ids must be kept, whatever their row numbers.
    func testTiesAtTheKBoundaryAreBrokenById() throws {
        let schema = SegmentSchema(dimension: 2, elementType: .float32, metric: .l2)
        // Rows 0..3 hold the same vector with descending ids; row 4 is farther away.
        let rows = [40, 30, 20, 10].map { TestRow(id: UInt64($0), vector: [1, 1], values: []) }
            + [TestRow(id: 1, vector: [5, 5], values: [])]
        try writeSegment(path: tmpPath("ties.seg"), schema: schema, rows: rows)
        let seg = try Segment.open(path: tmpPath("ties.seg"))
        XCTAssertEqual(try seg.exactSearch(query: [1, 1], k: 4).map(\.id), [10, 20, 30, 40], "all ties fit: ordered by id")
        XCTAssertEqual(try seg.exactSearch(query: [1, 1], k: 2).map(\.id), [10, 20], "single query: smallest ids among the ties")
        XCTAssertEqual(try seg.exactSearch(queries: [[1, 1]], k: 2).first?.map(\.id), [10, 20], "batched: smallest ids among the ties")
        XCTAssertEqual(try seg.exactSearch(query: [1, 1], k: 1, filter: { $0 != 3 }).map(\.id), [20], "filtered")
    }

    /// For inexact arithmetic: `hits` is a valid top-k under the reference within `tol`.
    func assertValidTopK(_ hits: [SearchHit], k: Int, reference all: [(row: Int, id: UInt64, distance: Double)],
                         tol: Double, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(hits.count, min(k, all.count), file: file, line: line)
        XCTAssertEqual(hits, hits.sorted(), "sorted by distance then id", file: file, line: line)
        XCTAssertEqual(Set(hits.map(\.row)).count, hits.count, "no duplicate rows", file: file, line: line)
        let byRow = Dictionary(uniqueKeysWithValues: all.map { ($0.row, $0) })
        for h in hits {
            guard let ref = byRow[h.row] else { XCTFail("row \(h.row) not admitted", file: file, line: line); continue }
            XCTAssertEqual(h.id, ref.id, file: file, line: line)
            XCTAssertEqual(Double(h.distance), ref.distance, accuracy: tol, "row \(h.row)", file: file, line: line)
        }
        guard let worst = hits.last else { return }
        let returned = Set(hits.map(\.row))
        for r in all where !returned.contains(r.row) {
            XCTAssertGreaterThanOrEqual(r.distance, Double(worst.distance) - tol, "row \(r.row) should have been returned",
                                        file: file, line: line)
        }
    }

    func testExactSearchMatchesNaiveReferenceOnIntegerData() throws {
        for elementType in VectorElementType.allCases {
            for metric in [DistanceMetric.l2, .innerProduct] {
                let rows = integerRows(count: 150, dimension: 8, seed: 11)
                let schema = SegmentSchema(dimension: 8, elementType: elementType, metric: metric)
                let path = tmpPath("int-\(elementType)-\(metric).seg")
                try writeSegment(path: path, schema: schema, rows: rows, batchSize: 64)
                let seg = try Segment.open(path: path)
                let vectors = rows.map(\.vector), ids = rows.map(\.id)
                var qrng = SplitMix64(seed: 12)
                let queries = (0..<12).map { _ in (0..<8).map { _ in Float(qrng.int(9) - 4) } } + [vectors[3], vectors[77]]
                for q in queries {
                    for k in [1, 5, 17, 150, 151, 1000] {
                        let hits = try seg.exactSearch(query: q, k: k)
                        let ref = referenceSearch(vectors: vectors, ids: ids, query: q, k: k, metric: metric)
                        assertExactMatch(hits, ref)
                        XCTAssertEqual(hits.count, min(k, 150))
                    }
                }
                // Batched equals single, for several k (including k > rowCount).
                for k in [1, 10, 400] {
                    let batched = try seg.exactSearch(queries: queries, k: k)
                    XCTAssertEqual(batched.count, queries.count)
                    for (q, b) in zip(queries, batched) { XCTAssertEqual(b, try seg.exactSearch(query: q, k: k)) }
                }
            }
        }
    }

    func testExactSearchFloatDataAllMetrics() throws {
        for elementType in VectorElementType.allCases {
            for metric in DistanceMetric.allCases {
                var rng = SplitMix64(seed: 21)
                let rows = (0..<300).map { r in TestRow(id: UInt64(r) * 3 + 7, vector: (0..<16).map { _ in rng.gaussianish() }, values: []) }
                let schema = SegmentSchema(dimension: 16, elementType: elementType, metric: metric)
                let path = tmpPath("float-\(elementType)-\(metric).seg")
                try writeSegment(path: path, schema: schema, rows: rows, batchSize: 100)
                let seg = try Segment.open(path: path)
                // Reference over the stored vectors (normalised for cosine, rounded for float16).
                let stored = try (0..<seg.rowCount).map { try seg.vector(row: $0) }
                let ids = rows.map(\.id)
                let queries = (0..<10).map { _ in (0..<16).map { _ in rng.gaussianish() * 3 } }
                for q in queries {
                    let all = referenceSearch(vectors: stored, ids: ids, query: q, k: .max, metric: metric)
                    for k in [1, 10, 299, 300, 5000] {
                        let hits = try seg.exactSearch(query: q, k: k)
                        assertValidTopK(hits, k: k, reference: all, tol: 1e-4)
                    }
                }
                let batched = try seg.exactSearch(queries: queries, k: 25)
                for (q, b) in zip(queries, batched) { XCTAssertEqual(b, try seg.exactSearch(query: q, k: 25)) }
            }
        }
    }

    func testBatchedEqualsSingleAcrossTiles() throws {
        // dimension 1024 float32: stride 4096 B, so a 256 KiB tile holds 64 rows and 300 rows span 5 tiles.
        var rng = SplitMix64(seed: 31)
        let dim = 1024
        let rows = (0..<300).map { r in TestRow(id: UInt64(300 - r), vector: (0..<dim).map { _ in rng.gaussianish() }, values: []) }
        for metric in DistanceMetric.allCases {
            let schema = SegmentSchema(dimension: dim, elementType: .float32, metric: metric)
            let path = tmpPath("tiles-\(metric).seg")
            try writeSegment(path: path, schema: schema, rows: rows, batchSize: 300)
            let seg = try Segment.open(path: path)
            let queries = (0..<9).map { _ in (0..<dim).map { _ in rng.gaussianish() } } + [rows[150].vector]
            for k in [1, 7, 64, 65, 300, 301] {
                let batched = try seg.exactSearch(queries: queries, k: k)
                for (q, b) in zip(queries, batched) { XCTAssertEqual(b, try seg.exactSearch(query: q, k: k), "k \(k) \(metric)") }
            }
            if metric == .l2 {
                XCTAssertEqual(try seg.exactSearch(query: rows[150].vector, k: 1).first?.row, 150)
            }
        }
    }

    func testFilterIsHonoured() throws {
        let rows = integerRows(count: 120, dimension: 6, seed: 41)
        let schema = SegmentSchema(dimension: 6, elementType: .float32, metric: .l2)
        let path = tmpPath("filter.seg")
        try writeSegment(path: path, schema: schema, rows: rows, batchSize: 50)
        let seg = try Segment.open(path: path)
        let vectors = rows.map(\.vector), ids = rows.map(\.id)
        let q: [Float] = [1, -1, 0, 2, 0, -2]
        let filters: [(String, @Sendable (Int) -> Bool)] = [
            ("even", { $0 % 2 == 0 }), ("none", { _ in false }), ("all", { _ in true }), ("one", { $0 == 37 }),
            ("tail", { $0 >= 110 }),
        ]
        for (name, f) in filters {
            for k in [1, 5, 200] {
                let hits = try seg.exactSearch(query: q, k: k, filter: f)
                let ref = referenceSearch(vectors: vectors, ids: ids, query: q, k: k, metric: .l2, filter: f)
                XCTAssertTrue(hits.allSatisfy { f($0.row) }, name)
                assertExactMatch(hits, ref)
            }
        }
        // The filter sees every row exactly once.
        var asked: [Int] = []
        _ = try seg.exactSearch(query: q, k: 3) { asked.append($0); return true }
        XCTAssertEqual(asked, Array(0..<120))
        // Payload-driven filter: a typical use.
        let schema2 = SegmentSchema(dimension: 2, elementType: .float32, metric: .l2,
                                    columns: [ColumnSpec(name: "year", type: .int64)])
        let rows2 = (0..<50).map { TestRow(id: UInt64($0), vector: [Float($0), 0], values: [.int64(Int64(2000 + $0 % 5))]) }
        try writeSegment(path: tmpPath("pf.seg"), schema: schema2, rows: rows2)
        let seg2 = try Segment.open(path: tmpPath("pf.seg"))
        var years: [Int64] = []
        try seg2.scan(column: "year") { _, v in if case .int64(let y) = v { years.append(y) } }
        let hits = try seg2.exactSearch(query: [0, 0], k: 4) { years[$0] == 2003 }
        XCTAssertEqual(hits.map(\.row), [3, 8, 13, 18])
    }

    func testQueryValidation() throws {
        let schema = SegmentSchema(dimension: 4, elementType: .float32, metric: .cosine)
        try writeSegment(path: tmpPath("q.seg"), schema: schema, rows: [TestRow(id: 1, vector: [1, 0, 0, 0], values: [])])
        let seg = try Segment.open(path: tmpPath("q.seg"))
        assertStrataError(.dimensionMismatch) { try seg.exactSearch(query: [1, 2, 3], k: 1) }
        assertStrataError(.dimensionMismatch) { try seg.exactSearch(query: [1, 2, 3, 4, 5], k: 1) }
        assertStrataError(.dimensionMismatch) { try seg.exactSearch(query: [], k: 1) }
        assertStrataError(.dimensionMismatch) { try seg.exactSearch(queries: [[1, 0, 0, 0], [1, 0]], k: 1) }
        assertStrataError(.nonFiniteValue) { try seg.exactSearch(query: [.nan, 0, 0, 0], k: 1) }
        assertStrataError(.nonFiniteValue) { try seg.exactSearch(query: [0, .infinity, 0, 0], k: 1) }
        assertStrataError(.nonFiniteValue) { try seg.exactSearch(queries: [[1, 0, 0, 0], [0, 0, -.infinity, 1]], k: 1) }
        assertStrataError(.invalidArgument) { try seg.exactSearch(query: [1, 0, 0, 0], k: 0) }
        assertStrataError(.invalidArgument) { try seg.exactSearch(query: [1, 0, 0, 0], k: -3) }
        assertStrataError(.invalidArgument) { try seg.exactSearch(queries: [[1, 0, 0, 0]], k: 0) }
        assertStrataError(.invalidValue, "zero query under cosine") { try seg.exactSearch(query: [0, 0, 0, 0], k: 1) }
        // Cosine distance is 1 - cos: an opposite query gets 2, the same direction 0.
        XCTAssertEqual(Double(try seg.exactSearch(query: [5, 0, 0, 0], k: 1)[0].distance), 0, accuracy: 1e-6)
        XCTAssertEqual(Double(try seg.exactSearch(query: [-5, 0, 0, 0], k: 1)[0].distance), 2, accuracy: 1e-6)
    }
}
