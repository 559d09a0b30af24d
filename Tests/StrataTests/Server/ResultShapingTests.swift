// From merged engine hits to Qdrant answers: list size, threshold, offset, limit, fusion, pages.
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataServer

final class ResultShapingTests: XCTestCase {
    func search(limit: Int, offset: Int = 0, threshold: Float? = nil, ef: Int? = nil) -> VectorSearch {
        VectorSearch(vector: [1], filter: nil, limit: limit, offset: offset, scoreThreshold: threshold,
                     params: SearchParams(hnswEf: ef), withPayload: .none, withVector: false)
    }

    func testListSize() {
        XCTAssertEqual(search(limit: 10).listSize(default: 64), 64)
        XCTAssertEqual(search(limit: 10, ef: 200).listSize(default: 64), 200)
        XCTAssertEqual(search(limit: 50, offset: 30, ef: 20).listSize(default: 64), 80)
        XCTAssertEqual(search(limit: 50, offset: 30).candidates, 80)
    }

    func testSelectAppliesThresholdOffsetLimit() {
        let hits: [EngineHit] = [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.6), (5, 0.9)]   // cosine distances
        let all = search(limit: 10).select(hits, distance: .cosine)
        XCTAssertEqual(all.map(\.id), [1, 2, 3, 4, 5])
        XCTAssertEqual(all[0].score, 0.9, accuracy: 1e-6)
        XCTAssertEqual(search(limit: 2, offset: 1).select(hits, distance: .cosine).map(\.id), [2, 3])
        XCTAssertEqual(search(limit: 10, threshold: 0.7).select(hits, distance: .cosine).map(\.id), [1, 2, 3])
        XCTAssertEqual(search(limit: 10, offset: 1, threshold: 0.7).select(hits, distance: .cosine).map(\.id), [2, 3])
        // Euclid: smaller scores pass; the score is the square root of Strata's squared distance.
        let l2: [EngineHit] = [(1, 1), (2, 4), (3, 9)]
        let e = search(limit: 10, threshold: 2).select(l2, distance: .euclid)
        XCTAssertEqual(e.map(\.id), [1, 2]); XCTAssertEqual(e.map(\.score), [1, 2])
        XCTAssertEqual(search(limit: 10, threshold: 0).select([(1, -7), (2, 1)], distance: .dot).map(\.id), [1])
    }

    func testFusionAndPages() throws {
        let plan = try SearchRequests.parseQuery(qdrantBody(#"{"prefetch":[{"query":[1]},{"query":[2]}],"query":{"fusion":"rrf"},"limit":2,"offset":1}"#), limits: ServerLimits())
        guard case .fusion(let f) = plan else { return XCTFail() }
        XCTAssertEqual(f.fuse([[10, 20, 30], [30, 10, 40]]).map(\.id), [30, 20])
        var t = f; t.scoreThreshold = 0.5; t.offset = 0; t.limit = 10
        XCTAssertEqual(t.fuse([[10, 20, 30], [30, 10, 40]]).map(\.id), [10, 30])        // 0.833, 0.75 pass; 0.333 not
        let s = ScrollRequest(filter: nil, limit: 2, offset: nil, withPayload: .all, withVector: false)
        let page = s.paginate([5, 7, 9] as [UInt64]) { $0 }
        XCTAssertEqual(page.page, [5, 7]); XCTAssertEqual(page.nextPageOffset, 9)
        let last = s.paginate([5, 7] as [UInt64]) { $0 }
        XCTAssertEqual(last.page, [5, 7]); XCTAssertNil(last.nextPageOffset)
    }
}
