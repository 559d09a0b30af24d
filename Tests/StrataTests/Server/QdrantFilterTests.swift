// Qdrant filters: parsing every supported condition, the refusals, and the binding to columns
// (evaluated with Strata's reference evaluator on rows).
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataServer

final class QdrantFilterTests: XCTestCase {
    let limits = ServerLimits()
    let columns = [ColumnSpec(name: "city", type: .string, nullable: true), ColumnSpec(name: "n", type: .int64, nullable: true),
                   ColumnSpec(name: "f", type: .float64, nullable: true), ColumnSpec(name: "ok", type: .bool, nullable: true),
                   ColumnSpec(name: "tags", type: .stringList, nullable: true)]
    var schema: SegmentSchema { SegmentSchema(dimension: 2, columns: columns) }
    /// Rows: 0 Berlin n=3 f=1.5 ok tags[a,b]; 1 Paris n=7 f=-2 !ok tags[]; 2 all null; 3 Bern n=3 f=3 ok tags[b].
    let rows: [[PayloadValue]] = [
        [.string("Berlin"), .int64(3), .float64(1.5), .bool(true), .stringList(["a", "b"])],
        [.string("Paris"), .int64(7), .float64(-2), .bool(false), .stringList([])],
        [.null, .null, .null, .null, .null],
        [.string("Bern"), .int64(3), .float64(3), .bool(true), .stringList(["b"])],
    ]

    /// The rows (by index) a filter admits.
    func admitted(_ json: String, file: StaticString = #filePath, line: UInt = #line) throws -> [Int] {
        let bound = try QdrantFilter.parse(qdrantBody(json), "filter", limits: limits).bind(columns: columns, limits: limits)
        try bound.filter.validate(against: schema)            // what the engine will check
        return rows.indices.filter { bound.filter.matches(rows[$0], schema: schema) }
    }

    func testMatchAnyExceptPrefixRange() throws {
        XCTAssertEqual(try admitted(#"{"must":[{"key":"city","match":{"value":"Berlin"}}]}"#), [0])
        XCTAssertEqual(try admitted(#"{"must":{"key":"tags","match":{"value":"b"}}}"#), [0, 3])         // single-condition form
        XCTAssertEqual(try admitted(#"{"must":[{"key":"n","match":{"any":[3,9]}}]}"#), [0, 3])
        XCTAssertEqual(try admitted(#"{"must":[{"key":"n","match":{"except":[3]}}]}"#), [1])            // null rows have no value
        XCTAssertEqual(try admitted(#"{"must":[{"key":"city","match":{"prefix":"Ber"}}]}"#), [0, 3])
        XCTAssertEqual(try admitted(#"{"must":[{"key":"n","range":{"gte":1.0,"lt":5.5}}]}"#), [0, 3])
        XCTAssertEqual(try admitted(#"{"must":[{"key":"f","range":{"gt":0}}]}"#), [0, 3])
        XCTAssertEqual(try admitted(#"{"must":[{"key":"f","range":{}}]}"#), [0, 1, 3])                  // any value
        XCTAssertEqual(try admitted(#"{"must":[{"key":"ok","match":{"value":true}}]}"#), [0, 3])
        XCTAssertEqual(try admitted(#"{"should":[{"key":"city","match":{"value":"Paris"}},{"key":"n","match":{"value":3}}]}"#), [0, 1, 3])
        XCTAssertEqual(try admitted(#"{"must_not":[{"key":"city","match":{"value":"Paris"}}]}"#), [0, 2, 3])
        XCTAssertEqual(try admitted(#"{"must":[{"should":[{"key":"n","match":{"value":7}}],"must_not":[{"key":"ok","match":{"value":true}}]}]}"#), [1])
        XCTAssertEqual(try admitted(#"{}"#), [0, 1, 2, 3])
    }

    func testNullEmptyAndUnknownKeys() throws {
        XCTAssertEqual(try admitted(#"{"must":[{"is_null":{"key":"city"}}]}"#), [2])
        XCTAssertEqual(try admitted(#"{"must":[{"key":"city","is_null":true}]}"#), [2])
        XCTAssertEqual(try admitted(#"{"must":[{"key":"city","is_null":false}]}"#), [0, 1, 3])
        XCTAssertEqual(try admitted(#"{"must":[{"is_empty":{"key":"tags"}}]}"#), [1, 2])                // [] and null
        XCTAssertEqual(try admitted(#"{"must":[{"key":"tags","is_empty":false}]}"#), [0, 3])
        XCTAssertEqual(try admitted(#"{"must":[{"is_empty":{"key":"n"}}]}"#), [2])
        // A key no point has: matches nothing; its negation everything; absent counts as null/empty.
        XCTAssertEqual(try admitted(#"{"must":[{"key":"nope","match":{"value":"x"}}]}"#), [])
        XCTAssertEqual(try admitted(#"{"must_not":[{"key":"nope","match":{"value":"x"}}]}"#), [0, 1, 2, 3])
        XCTAssertEqual(try admitted(#"{"must":[{"key":"nope","range":{"gt":1}}]}"#), [])
        XCTAssertEqual(try admitted(#"{"must":[{"is_null":{"key":"nope"}}]}"#), [0, 1, 2, 3])
        XCTAssertEqual(try admitted(#"{"must":[{"is_empty":{"key":"nope"}}]}"#), [0, 1, 2, 3])
        // A value of another type than the column: matches nothing (Qdrant), not a type error.
        XCTAssertEqual(try admitted(#"{"must":[{"key":"n","match":{"value":"3"}}]}"#), [])
        XCTAssertEqual(try admitted(#"{"must":[{"key":"city","range":{"gt":1}}]}"#), [])
        XCTAssertEqual(try admitted(#"{"must":[{"key":"ok","range":{"gt":0}}]}"#), [])
        XCTAssertEqual(try admitted(#"{"must":[{"key":"n","match":{"any":["x",7]}}]}"#), [1])
        XCTAssertEqual(try admitted(#"{"must":[{"key":"n","match":{"prefix":"3"}}]}"#), [])
    }

    func testMinShould() throws {
        let three = #"[{"key":"city","match":{"prefix":"Ber"}},{"key":"n","match":{"value":3}},{"key":"f","range":{"gt":2}}]"#
        XCTAssertEqual(try admitted(#"{"min_should":{"conditions":\#(three),"min_count":2}}"#), [0, 3])
        XCTAssertEqual(try admitted(#"{"min_should":{"conditions":\#(three),"min_count":3}}"#), [3])
        XCTAssertEqual(try admitted(#"{"min_should":{"conditions":\#(three),"min_count":1}}"#), [0, 3])
        XCTAssertEqual(try admitted(#"{"min_should":{"conditions":\#(three),"min_count":0}}"#), [0, 1, 2, 3])
        XCTAssertEqual(try admitted(#"{"min_should":{"conditions":\#(three),"min_count":4}}"#), [])
        let many = "[" + (0..<20).map { #"{"key":"n","match":{"value":\#($0)}}"# }.joined(separator: ",") + "]"
        let l = limits, c = columns
        assertQdrantError(400, ["min_should", "combinations"]) {
            try QdrantFilter.parse(qdrantBody(#"{"min_should":{"conditions":\#(many),"min_count":10}}"#), "filter", limits: l).bind(columns: c, limits: l)
        }
    }

    func testHasId() throws {
        let f = try QdrantFilter.parse(qdrantBody(#"{"must":[{"has_id":[1,2,3]},{"has_id":[2,3,4]},{"key":"n","match":{"value":3}}],"must_not":[{"has_id":[3]}]}"#), "filter", limits: limits)
        let b = try f.bind(columns: columns, limits: limits)
        XCTAssertEqual(b.ids, [2, 3]); XCTAssertEqual(b.excludedIds, [3])
        XCTAssertTrue(b.admits(id: 2)); XCTAssertFalse(b.admits(id: 3)); XCTAssertFalse(b.admits(id: 1))
        XCTAssertEqual(b.filter, Filter(must: [.match(key: "n", value: .int(3))]))
        XCTAssertTrue(BoundFilter.all.admits(id: 99))
        let both = b.and(BoundFilter(filter: Filter(), ids: [3, 2, 9], excludedIds: [2]))
        XCTAssertEqual(both.ids, [2, 3]); XCTAssertEqual(both.excludedIds, [2, 3])
        let l = limits, c = columns
        assertQdrantError(400, ["has_id is supported only directly"]) {
            try QdrantFilter.parse(qdrantBody(#"{"should":[{"has_id":[1]}]}"#), "filter", limits: l).bind(columns: c, limits: l)
        }
        assertQdrantError(400, ["filter.must[0].has_id[0]", "UUID"]) { try QdrantFilter.parse(qdrantBody(#"{"must":[{"has_id":["a"]}]}"#), "filter", limits: l) }
    }

    func testRefusalsNameTheCondition() throws {
        let l = limits, c = columns
        func parse(_ s: String) throws -> QdrantFilter { try QdrantFilter.parse(qdrantBody(s), "filter", limits: l) }
        assertQdrantError(400, ["filter.must[0].match.text", "full-text"]) { try parse(#"{"must":[{"key":"city","match":{"text":"ber"}}]}"#) }
        assertQdrantError(400, ["geo_radius is not supported"]) { try parse(#"{"must":[{"key":"loc","geo_radius":{"center":{"lat":1,"lon":2},"radius":3}}]}"#) }
        assertQdrantError(400, ["values_count is not supported"]) { try parse(#"{"must":[{"key":"tags","values_count":{"gt":1}}]}"#) }
        assertQdrantError(400, ["'nested' condition is not supported"]) { try parse(#"{"must":[{"nested":{"key":"a","filter":{}}}]}"#) }
        assertQdrantError(400, ["'has_vector' condition"]) { try parse(#"{"must":[{"has_vector":"v"}]}"#) }
        assertQdrantError(400, ["filter", "unknown field 'mustnt'"]) { try parse(#"{"mustnt":[]}"#) }
        assertQdrantError(400, ["filter.must[0]", "has no match"]) { try parse(#"{"must":[{"key":"n"}]}"#) }
        assertQdrantError(400, ["filter.must[0].match", "unknown field 'values'"]) { try parse(#"{"must":[{"key":"n","match":{"values":[1]}}]}"#) }
        assertQdrantError(400, ["filter.must[0].match.value", "expected a string, number or boolean"]) { try parse(#"{"must":[{"key":"n","match":{"value":[1]}}]}"#) }
        assertQdrantError(400, ["filter.must[0].range.gt", "number or a string"]) { try parse(#"{"must":[{"key":"n","range":{"gt":true}}]}"#) }
        assertQdrantError(400, ["filter.must", "expected a condition or a list"]) { try parse(#"{"must":5}"#) }
        assertQdrantError(400, ["match except on 'tags'"]) { try parse(#"{"must":[{"key":"tags","match":{"except":["a"]}}]}"#).bind(columns: c, limits: l) }
        // Depth: each nested filter is a level.
        let deep = String(repeating: #"{"must":["#, count: 40) + String(repeating: "]}", count: 40)
        assertQdrantError(400, ["nest more than 4 levels"]) { try QdrantFilter.parse(qdrantBody(deep, limits: ServerLimits(maxFilterDepth: 40)), "filter", limits: ServerLimits(maxFilterDepth: 4)) }
        assertQdrantError(400, ["nests too deeply"]) { try qdrantBody(deep, limits: ServerLimits(maxFilterDepth: 4)) }
    }
}
