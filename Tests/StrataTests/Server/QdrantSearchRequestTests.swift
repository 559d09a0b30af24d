// The search-API parsers (search, search/batch, query, query/batch) on the bodies qdrant-client
// 1.20.0 sends, and their refusals.
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataServer

final class QdrantSearchRequestTests: XCTestCase {
    let limits = ServerLimits()

    func testQueryNearestAsTheClientSendsIt() throws {
        let plan = try SearchRequests.parseQuery(qdrantBody(#"{"query":{"nearest":[0.1,0.2,0.3,0.4]},"limit":3,"with_vector":false,"with_payload":true}"#), limits: limits)
        XCTAssertEqual(plan, .search(VectorSearch(vector: [0.1, 0.2, 0.3, 0.4], filter: nil, limit: 3, offset: 0, scoreThreshold: nil,
                                                  params: SearchParams(), withPayload: .all, withVector: false)))
        let full = try SearchRequests.parseQuery(qdrantBody(#"{"query":{"nearest":[0.1,0.2,0.3,0.4]},"filter":{"must":[{"key":"city","match":{"value":"Berlin"}},{"key":"n","range":{"lt":5.5,"gte":1.0}}],"must_not":[{"has_id":[7]}]},"params":{"hnsw_ef":128,"exact":false},"score_threshold":0.5,"limit":5,"offset":2,"with_vector":true,"with_payload":["city"]}"#), limits: limits)
        guard case .search(let s) = full else { return XCTFail("expected a search") }
        XCTAssertEqual(s.limit, 5); XCTAssertEqual(s.offset, 2); XCTAssertEqual(s.scoreThreshold, 0.5)
        XCTAssertEqual(s.params, SearchParams(hnswEf: 128, exact: false))
        XCTAssertEqual(s.withPayload, .include(["city"])); XCTAssertTrue(s.withVector)
        XCTAssertEqual(s.filter, QdrantFilter(must: [.match(key: "city", value: .string("Berlin")),
                                                     .range(key: "n", FilterRange(gte: .float(1), lt: .float(5.5)))],
                                              mustNot: [.hasId([7])]))
        // A bare vector as the query, and the defaults (limit 10, no payload).
        guard case .search(let bare) = try SearchRequests.parseQuery(qdrantBody(#"{"query":[1,2]}"#), limits: limits) else { return XCTFail() }
        XCTAssertEqual(bare.limit, 10); XCTAssertEqual(bare.withPayload, PayloadSelection.none); XCTAssertEqual(bare.vector, [1, 2])
        guard case .search(let ex) = try SearchRequests.parseQuery(qdrantBody(#"{"query":{"nearest":[0.1,0.2]},"limit":10,"with_vector":false,"with_payload":{"exclude":["n"]}}"#), limits: limits) else { return XCTFail() }
        XCTAssertEqual(ex.withPayload, .exclude(["n"]))
    }

    func testQueryFusionAsTheClientSendsIt() throws {
        let plan = try SearchRequests.parseQuery(qdrantBody(#"{"prefetch":[{"query":[0.1,0.2,0.3,0.4],"limit":20},{"query":[0.4,0.3,0.2,0.1],"filter":{"should":[{"is_null":{"key":"n"}}]},"limit":20}],"query":{"fusion":"rrf"},"limit":10,"with_vector":false,"with_payload":true,"filter":{"must":[{"key":"ok","match":{"value":true}}]}}"#), limits: limits)
        guard case .fusion(let f) = plan else { return XCTFail("expected a fusion") }
        XCTAssertEqual(f.prefetches.count, 2)
        XCTAssertEqual(f.prefetches[0].limit, 20); XCTAssertEqual(f.prefetches[1].vector, [0.4, 0.3, 0.2, 0.1])
        XCTAssertEqual(f.k, 2); XCTAssertNil(f.weights); XCTAssertEqual(f.limit, 10); XCTAssertEqual(f.withPayload, .all)
        // The query's filter applies to every prefetch, and-ed with the prefetch's own.
        let columns = [ColumnSpec(name: "ok", type: .bool, nullable: true), ColumnSpec(name: "n", type: .int64, nullable: true)]
        let bound = try f.prefetchFilter(1, columns: columns, limits: limits)
        let schema = SegmentSchema(dimension: 4, columns: columns)
        XCTAssertTrue(bound.filter.matches([.bool(true), .null], schema: schema))
        XCTAssertFalse(bound.filter.matches([.bool(false), .null], schema: schema))
        XCTAssertFalse(bound.filter.matches([.bool(true), .int64(1)], schema: schema))
        XCTAssertTrue(try f.prefetchFilter(0, columns: columns, limits: limits).filter.matches([.bool(true), .int64(1)], schema: schema))

        guard case .fusion(let r) = try SearchRequests.parseQuery(qdrantBody(#"{"prefetch":[{"query":[0.1,0.2,0.3,0.4]}],"query":{"rrf":{"k":10}},"limit":10,"with_vector":false,"with_payload":true}"#), limits: limits) else { return XCTFail() }
        XCTAssertEqual(r.k, 10); XCTAssertEqual(r.prefetches[0].limit, 10)
        guard case .fusion(let w) = try SearchRequests.parseQuery(qdrantBody(#"{"prefetch":[{"query":[1]},{"query":[2]}],"query":{"rrf":{"weights":[1,0.5]}}}"#), limits: limits) else { return XCTFail() }
        XCTAssertEqual(w.weights, [1, 0.5]); XCTAssertEqual(w.k, RRF.defaultK)
    }

    func testQueryWithoutAVectorIsAScroll() throws {
        XCTAssertEqual(try SearchRequests.parseQuery(qdrantBody(#"{"limit":5,"with_payload":true}"#), limits: limits),
                       .scroll(ScrollRequest(filter: nil, limit: 5, offset: nil, withPayload: .all, withVector: false)))
    }

    func testQueryBatchAsTheClientSendsIt() throws {
        let plans = try SearchRequests.parseQueryBatch(qdrantBody(#"{"searches":[{"query":{"nearest":[0.1,0.2,0.3,0.4]},"limit":2},{"query":{"nearest":[1.0,0.0,0.0,0.0]},"filter":{"must":{"key":"ok","match":{"value":true}}}}]}"#), limits: limits)
        XCTAssertEqual(plans.count, 2)
        guard case .search(let second) = plans[1] else { return XCTFail() }
        XCTAssertEqual(second.filter, QdrantFilter(must: [.match(key: "ok", value: .bool(true))]))
    }

    func testSearchAndSearchBatch() throws {
        let s = try SearchRequests.parseSearch(qdrantBody(#"{"vector":[1,0],"limit":3,"offset":1,"with_payload":true,"score_threshold":0.2,"params":{"exact":true}}"#), limits: limits)
        XCTAssertEqual(s, VectorSearch(vector: [1, 0], filter: nil, limit: 3, offset: 1, scoreThreshold: 0.2, params: SearchParams(hnswEf: nil, exact: true),
                                       withPayload: .all, withVector: false))
        XCTAssertEqual(try SearchRequests.parseSearch(qdrantBody(#"{"vector":[1],"limit":1}"#), limits: limits).withPayload, PayloadSelection.none)
        let batch = try SearchRequests.parseSearchBatch(qdrantBody(#"{"searches":[{"vector":[1],"limit":1},{"vector":[2],"limit":2}]}"#), limits: limits)
        XCTAssertEqual(batch.map(\.limit), [1, 2])
        assertQdrantError(400, ["body", "missing field 'limit'"]) { try SearchRequests.parseSearch(qdrantBody(#"{"vector":[1]}"#), limits: ServerLimits()) }
        assertQdrantError(400, ["body.searches[1].vector[0]", "expected a number"]) {
            try SearchRequests.parseSearchBatch(qdrantBody(#"{"searches":[{"vector":[1],"limit":1},{"vector":["x"],"limit":2}]}"#), limits: ServerLimits())
        }
        assertQdrantError(400, ["3 searches exceed the limit of 2"]) {
            try SearchRequests.parseSearchBatch(qdrantBody(#"{"searches":[{"vector":[1],"limit":1},{"vector":[1],"limit":1},{"vector":[1],"limit":1}]}"#), limits: ServerLimits(maxBatchSearches: 2))
        }
        let named = try SearchRequests.parseSearch(qdrantBody(#"{"vector":{"name":"a","vector":[1]},"limit":1}"#), limits: ServerLimits())
        XCTAssertEqual(named.using, "a")
        XCTAssertEqual(named.vector, [1])
        let sparse = try SearchRequests.parseSearch(qdrantBody(#"{"vector":{"name":"s","vector":{"indices":[4],"values":[0.5]}},"limit":1}"#), limits: ServerLimits())
        XCTAssertEqual(sparse.sparse, SparseVector(indices: [4], values: [0.5]))
        XCTAssertEqual(sparse.using, "s")
        assertQdrantError(400, ["sparse query needs its vector's name"]) { try SearchRequests.parseSearch(qdrantBody(#"{"vector":{"indices":[4],"values":[0.5]},"limit":1}"#), limits: ServerLimits()) }
    }

    func testQueryRefusalsAndLimits() throws {
        let l = ServerLimits(maxLimit: 100, maxBatchSearches: 2)
        assertQdrantError(400, ["body.limit", "outside 1...100"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":[1],"limit":101}"#), limits: l) }
        assertQdrantError(400, ["body.limit", "outside 1...100"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":[1],"limit":0}"#), limits: l) }
        assertQdrantError(400, ["limit + offset = 110"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":[1],"limit":60,"offset":50}"#), limits: l) }
        assertQdrantError(400, ["body.limit", "expected an integer"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":[1],"limit":"5"}"#), limits: l) }
        assertQdrantError(400, ["body.params.hnsw_ef", "outside"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":[1],"params":{"hnsw_ef":0}}"#), limits: l) }
        assertQdrantError(400, ["'dbsf' is not supported"]) { try SearchRequests.parseQuery(qdrantBody(#"{"prefetch":[{"query":[1]}],"query":{"fusion":"dbsf"}}"#), limits: l) }
        assertQdrantError(400, ["at least one prefetch"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":{"fusion":"rrf"}}"#), limits: l) }
        assertQdrantError(400, ["re-scoring"]) { try SearchRequests.parseQuery(qdrantBody(#"{"prefetch":[{"query":[1]}],"query":[1]}"#), limits: l) }
        assertQdrantError(400, ["prefetch needs a fusion"]) { try SearchRequests.parseQuery(qdrantBody(#"{"prefetch":[{"query":[1]}]}"#), limits: l) }
        assertQdrantError(400, ["prefetches may not nest"]) { try SearchRequests.parseQuery(qdrantBody(#"{"prefetch":[{"query":[1],"prefetch":[{"query":[1]}]}],"query":{"fusion":"rrf"}}"#), limits: l) }
        assertQdrantError(400, ["3 prefetches exceed the limit of 2"]) { try SearchRequests.parseQuery(qdrantBody(#"{"prefetch":[{"query":[1]},{"query":[1]},{"query":[1]}],"query":{"fusion":"rrf"}}"#), limits: l) }
        assertQdrantError(400, ["1 weights for 2 prefetches"]) { try SearchRequests.parseQuery(qdrantBody(#"{"prefetch":[{"query":[1]},{"query":[1]}],"query":{"rrf":{"weights":[1]}}}"#), limits: l) }
        assertQdrantError(400, ["'recommend' queries are not supported"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":{"recommend":{"positive":[1]}}}"#), limits: l) }
        assertQdrantError(400, ["a point id as the query"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":42}"#), limits: l) }
        assertQdrantError(400, ["a point id as the query"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":{"nearest":42}}"#), limits: l) }
        assertQdrantError(400, ["MMR"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":{"nearest":[1],"mmr":{"diversity":0.5}}}"#), limits: l) }
        assertQdrantError(400, ["sparse query needs 'using'"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":{"indices":[1],"values":[1]}}"#), limits: l) }
        guard case .search(let dense) = try SearchRequests.parseQuery(qdrantBody(#"{"query":[1],"using":"text"}"#), limits: l) else { return XCTFail("a search") }
        XCTAssertEqual(dense.using, "text")
        guard case .search(let sparse) = try SearchRequests.parseQuery(qdrantBody(#"{"query":{"nearest":{"indices":[1],"values":[2]}},"using":"s"}"#), limits: l) else { return XCTFail("a search") }
        XCTAssertEqual(sparse.sparse, SparseVector(indices: [1], values: [2]))
        guard case .fusion(let hybrid) = try SearchRequests.parseQuery(qdrantBody(#"{"prefetch":[{"query":[1],"using":"d","limit":5},{"query":{"indices":[1],"values":[2]},"using":"s"}],"query":{"fusion":"rrf"}}"#), limits: l) else { return XCTFail("a fusion") }
        XCTAssertEqual(hybrid.prefetches.map(\.using), ["d", "s"])
        XCTAssertEqual(hybrid.prefetches.map(\.sparse), [nil, SparseVector(indices: [1], values: [2])])
        XCTAssertEqual(hybrid.prefetches.map(\.limit), [5, 10])
        XCTAssertNoThrow(try SearchRequests.parseQuery(qdrantBody(#"{"query":[1],"using":""}"#), limits: l))
        assertQdrantError(400, ["body.score_threshold", "expected a number"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":[1],"score_threshold":"0.5"}"#), limits: l) }
        assertQdrantError(400, ["unknown field 'top'"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":[1],"top":5}"#), limits: l) }
        assertQdrantError(400, ["lookup_from is not supported"]) { try SearchRequests.parseQuery(qdrantBody(#"{"query":[1],"lookup_from":{"collection":"x"}}"#), limits: l) }
    }
}
