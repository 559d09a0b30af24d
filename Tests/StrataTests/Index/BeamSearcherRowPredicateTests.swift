// The one beam searcher with a row predicate (StrataIndex/Graph/BeamSearcher+Traversal.swift): the
// filtered and unfiltered searches are one traversal, the predicate's two forms agree, and every
// result passes.
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class BeamSearcherRowPredicateTests: StrataTestCase {
    /// An indexed segment of FilterTests' rows.
    func indexedSegment(_ count: Int) throws -> (Segment, [SegmentRow]) {
        let rows = FilterTests.rows(count)
        var options = SegmentWriterOptions()
        options.index = .smallTestIndex
        let path = tmpPath("predicate.seg")
        let w = try SegmentWriter(path: path, schema: FilterTests.schema, options: options)
        try w.append(rows)
        try w.finish()
        return (try Segment.open(path: path), rows)
    }

    /// Runs one search on the segment's pooled searcher; nil filter: the unfiltered search.
    func search(_ seg: Segment, _ query: [Float], _ p: BeamSearchParameters, _ filter: RowPredicate?,
                budget: Int) -> ([(row: Int, distance: Float)], BeamSearchStats) {
        let q = try! seg.prepareQuery(query)
        return seg.annIndex!.searchers.withSearcher { s in
            q.withUnsafeBufferPointer { qp in
                let hits = filter.map { s.search(unsafeQuery: qp.baseAddress!, parameters: p, filter: $0, nonPassingBudget: budget) }
                    ?? s.search(unsafeQuery: qp.baseAddress!, parameters: p)
                return (hits, s.lastStats)
            }
        }
    }

    func testAdmitAllPredicateIsTheUnfilteredSearch() throws {
        let (seg, rows) = try indexedSegment(1500)
        var one: UInt8 = 0
        try withUnsafeBytes(of: &one) { context in
            let all = RowPredicate(unsafeContext: context.baseAddress!) { _, _ in true }
            for (i, l) in [(0, 10), (7, 32), (300, 64), (901, 128)] {
                let p = BeamSearchParameters(k: 10, listSize: l)
                let (plain, plainStats) = search(seg, rows[i].vector, p, nil, budget: 0)
                let (filtered, filteredStats) = search(seg, rows[i].vector, p, all, budget: 50)
                XCTAssertEqual(plain.map(\.row), filtered.map(\.row), "L \(l)")
                XCTAssertEqual(plain.map(\.distance), filtered.map(\.distance), "L \(l)")
                XCTAssertEqual(plainStats.recordsRead, filteredStats.recordsRead)
                XCTAssertEqual(plainStats.pqDistances, filteredStats.pqDistances)
                XCTAssertEqual(filteredStats.nonPassingExpanded, 0)
                XCTAssertEqual(filteredStats.exactDistances, filteredStats.recordsRead)
                let hits = try seg.search(query: rows[i].vector, options: SearchOptions(k: 10, listSize: l))
                XCTAssertEqual(plain.map(\.row), hits.map(\.row), "the segment's search is the same search")
                XCTAssertEqual(plain.map(\.distance), hits.map(\.distance))
            }
        }
    }

    func testOrdinalAndFunctionFormsAgreeAndOnlyPassingRowsReturn() throws {
        let (seg, rows) = try indexedSegment(1500)
        let ordinals = (0..<rows.count).map { UInt32(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) % 10 }
        let budgets = [0, 5, 40, 10_000]
        try ordinals.withUnsafeBufferPointer { o in
            // Rows whose ordinal is 3...5 (30% of them), as a range and as a function of the same array.
            let range = RowPredicate(unsafeOrdinals: o.baseAddress!, low: 3, width: 3)
            let function = RowPredicate(unsafeContext: UnsafeRawPointer(o.baseAddress!)) { context, row in
                (3...5).contains(context.load(fromByteOffset: 4 * row, as: UInt32.self))
            }
            for row in 0..<rows.count { XCTAssertEqual(range.admits(row), (3...5).contains(ordinals[row])) }
            for (i, budget) in zip([4, 99, 700, 1200], budgets) {
                let p = BeamSearchParameters(k: 10, listSize: 48)
                let (a, aStats) = search(seg, rows[i].vector, p, range, budget: budget)
                let (b, bStats) = search(seg, rows[i].vector, p, function, budget: budget)
                XCTAssertEqual(a.map(\.row), b.map(\.row), "budget \(budget)")
                XCTAssertEqual(aStats, bStats)
                XCTAssertFalse(a.isEmpty)
                for hit in a { XCTAssertTrue((3...5).contains(ordinals[hit.row]), "row \(hit.row) fails the filter") }
                for j in 1..<a.count { XCTAssertLessThanOrEqual(a[j - 1].distance, a[j].distance) }
                // The entry point is expanded even when it fails; otherwise the budget bounds the rest.
                let medoidFails = !(3...5).contains(ordinals[seg.annIndex!.graph.medoid]) ? 1 : 0
                XCTAssertLessThanOrEqual(aStats.nonPassingExpanded, budget + medoidFails)
                XCTAssertEqual(aStats.exactDistances, aStats.recordsRead - aStats.nonPassingExpanded)
            }
        }
    }

    func testBudgetsBeyondTheRowCountAreTheSameSearch() throws {
        let (seg, rows) = try indexedSegment(800)
        let f = try Filter(json: #"{"must":[{"key":"month","range":{"gte":"2023-01"}}]}"#)
        for i in [1, 500] {
            let n = try seg.search(query: rows[i].vector, filter: f,
                                   options: FilteredSearchOptions(k: 10, listSize: 32, nonPassingBudget: rows.count, plan: .graph))
            let huge = try seg.search(query: rows[i].vector, filter: f,
                                      options: FilteredSearchOptions(k: 10, listSize: 32, nonPassingBudget: .max, plan: .graph))
            XCTAssertEqual(n.hits, huge.hits)
            XCTAssertEqual(n.stats, huge.stats)
        }
    }
}
