// Schemaless payload JSON onto typed nullable columns: inference, widening, conflicts, refusals,
// nulls, and the way back to JSON.
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataServer

final class PayloadMapperTests: XCTestCase {
    func payloads(_ json: String) throws -> [[String: JSONValue]?] {
        guard case .array(let a) = try qdrantBody(json) else { XCTFail("not an array"); return [] }
        return a.map { v in if case .object(let o) = v { return o } else { return nil } }
    }

    func map(_ json: String, _ columns: [ColumnSpec] = [], maxColumns: Int = 1024) throws -> MappedPayloads {
        try PayloadMapper.map(payloads(json), columns: columns, maxColumns: maxColumns) { "points[\($0)].payload" }
    }

    func testInferenceOrderAndNulls() throws {
        let m = try map(#"[{"s":"x","i":1,"f":1.5,"b":true,"l":["a"]}, {"z":null,"new":2}, null, {"e":[],"s":null}]"#)
        XCTAssertEqual(m.newColumns, [ColumnSpec(name: "b", type: .bool, nullable: true), ColumnSpec(name: "f", type: .float64, nullable: true),
                                      ColumnSpec(name: "i", type: .int64, nullable: true), ColumnSpec(name: "l", type: .stringList, nullable: true),
                                      ColumnSpec(name: "s", type: .string, nullable: true), ColumnSpec(name: "new", type: .int64, nullable: true),
                                      ColumnSpec(name: "e", type: .stringList, nullable: true)])
        XCTAssertEqual(m.rows[0], [.bool(true), .float64(1.5), .int64(1), .stringList(["a"]), .string("x"), .null, .null])
        XCTAssertEqual(m.rows[1], [.null, .null, .null, .null, .null, .int64(2), .null])
        XCTAssertEqual(m.rows[2], Array(repeating: .null, count: 7))
        XCTAssertEqual(m.rows[3], [.null, .null, .null, .null, .null, .null, .stringList([])])
    }

    func testExistingColumnsWideningAndConflicts() throws {
        let cols = [ColumnSpec(name: "price", type: .float64, nullable: true), ColumnSpec(name: "n", type: .int64, nullable: true)]
        let m = try map(#"[{"price":3,"n":4},{"price":2.5}]"#, cols)
        XCTAssertEqual(m.newColumns, [])
        XCTAssertEqual(m.rows, [[.float64(3), .int64(4)], [.float64(2.5), .null]])
        assertQdrantError(400, ["points[0].payload.n", "'n' holds integer values, got float"]) { try self.map(#"[{"n":1.5}]"#, cols) }
        assertQdrantError(400, ["points[1].payload.k", "'k' holds string values, got integer"]) { try self.map(#"[{"k":"a"},{"k":1}]"#) }
        assertQdrantError(400, ["'k' holds boolean values, got string"]) { try self.map(#"[{"k":true},{"k":"true"}]"#) }
        assertQdrantError(400, ["'k' holds list-of-strings values, got string"]) { try self.map(#"[{"k":["a"]},{"k":"a"}]"#) }
    }

    func testRefusals() throws {
        assertQdrantError(400, ["points[0].payload.o", "nested objects"]) { try self.map(#"[{"o":{"a":1}}]"#) }
        assertQdrantError(400, ["points[0].payload.l", "only lists of strings", "a number"]) { try self.map(#"[{"l":[1,2]}]"#) }
        assertQdrantError(400, ["points[0].payload.l", "only lists of strings"]) { try self.map(#"[{"l":["a",1]}]"#) }
        assertQdrantError(400, ["points[1].payload.l", "only lists of strings"]) { try self.map(#"[{"l":["a"]},{"l":["b",null]}]"#) }
        assertQdrantError(400, ["points[1].payload.k", "nested objects"]) { try self.map(#"[{"k":"a"},{"k":{"x":1}}]"#) }
        assertQdrantError(400, ["1...255 bytes"]) { try self.map(#"[{"":1}]"#) }
        let long = String(repeating: "k", count: 256)
        assertQdrantError(400, ["1...255 bytes", "256"]) { try self.map(#"[{"\#(long)":1}]"#) }
        XCTAssertNoThrow(try map(#"[{"\#(String(repeating: "k", count: 255))":1}]"#))
        // The number of distinct keys is bounded: rows hold every column.
        let cols = [ColumnSpec(name: "a", type: .int64, nullable: true)]
        XCTAssertEqual(try map(#"[{"b":1},{"c":2}]"#, cols, maxColumns: 3).newColumns.count, 2)
        assertQdrantError(400, ["points[1].payload", "'d'", "key number 4", "limit of 3"]) { try self.map(#"[{"b":1,"c":2},{"d":3}]"#, cols, maxColumns: 3) }
    }

    func testRoundTripToJSON() throws {
        let original = #"[{"s":"x \"q\"\n","i":-7,"f":0.1,"b":false,"l":["a","é"]},{"i":2}]"#
        let m = try map(original)
        let columns = m.newColumns
        var w = JSONWriter()
        w.beginArray()
        for row in m.rows { PayloadMapper.writePayload(row, columns: columns, selection: .all, into: &w) }
        w.endArray()
        // Parse the output back: the same objects (nulls omitted, key order free).
        XCTAssertEqual(try qdrantBody(w.string), try qdrantBody(#"[{"b":false,"f":0.1,"i":-7,"l":["a","é"],"s":"x \"q\"\n"},{"i":2}]"#))
        var sel = JSONWriter()
        PayloadMapper.writePayload(m.rows[0], columns: columns, selection: .include(["i", "s"]), into: &sel)
        XCTAssertEqual(try qdrantBody(sel.string), try qdrantBody(#"{"i":-7,"s":"x \"q\"\n"}"#))
        var exc = JSONWriter()
        PayloadMapper.writePayload(m.rows[0], columns: columns, selection: .exclude(["l", "s", "f"]), into: &exc)
        XCTAssertEqual(exc.string, #"{"b":false,"i":-7}"#)
    }
}
