// The request parsers of the Qdrant REST layer, fed the bodies qdrant-client 1.20.0 sends over REST
// (recorded from the client against a recording HTTP server) and their error paths.
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataServer

final class QdrantRequestTests: XCTestCase {
    let limits = ServerLimits()

    // MARK: collections

    func testCreateCollectionAsTheClientSendsIt() throws {
        let r = try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":4,"distance":"Cosine"},"shard_number":2}"#), limits: limits)
        XCTAssertEqual(r, CreateCollectionRequest(dimension: 4, distance: .cosine, shardNumber: 2))
        let e = try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":8,"distance":"Euclid","on_disk":true},"hnsw_config":{"m":32},"replication_factor":2}"#), limits: limits)
        XCTAssertEqual(e, CreateCollectionRequest(dimension: 8, distance: .euclid, shardNumber: nil))
    }

    func testCreateCollectionRefusals() throws {
        let l = limits
        XCTAssertEqual(try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"a":{"size":4,"distance":"Dot"}}}"#), limits: l),
                       CreateCollectionRequest(dimension: 4, distance: .dot, shardNumber: nil, vectorName: "a"))
        assertQdrantError(400, ["2 named dense vectors"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"a":{"size":4,"distance":"Dot"},"b":{"size":4,"distance":"Dot"}}}"#), limits: l) }
        assertQdrantError(400, ["Manhattan"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":4,"distance":"Manhattan"}}"#), limits: l) }
        assertQdrantError(400, ["body.vectors.distance", "unknown distance 'cosine'"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":4,"distance":"cosine"}}"#), limits: l) }
        assertQdrantError(400, ["body.vectors.size", "outside 1...4096"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":0,"distance":"Dot"}}"#), limits: l) }
        assertQdrantError(400, ["body.vectors.size", "expected an integer"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":"4","distance":"Dot"}}"#), limits: l) }
        assertQdrantError(400, ["missing field 'vectors'"]) { try CreateCollectionRequest.parse(qdrantBody(#"{}"#), limits: l) }
        XCTAssertEqual(try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":4,"distance":"Dot"},"sparse_vectors":{"s":{"index":{"on_disk":true}}}}"#), limits: l),
                       CreateCollectionRequest(dimension: 4, distance: .dot, shardNumber: nil, sparseName: "s"))
        assertQdrantError(400, ["2 sparse vectors"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":4,"distance":"Dot"},"sparse_vectors":{"s":{},"t":{}}}"#), limits: l) }
        assertQdrantError(400, ["modifier 'idf'"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":4,"distance":"Dot"},"sparse_vectors":{"s":{"modifier":"idf"}}}"#), limits: l) }
        assertQdrantError(400, ["already has this name"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"d":{"size":4,"distance":"Dot"}},"sparse_vectors":{"d":{}}}"#), limits: l) }
        assertQdrantError(400, ["quantization_config is not supported"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":4,"distance":"Dot"},"quantization_config":{"scalar":{"type":"int8"}}}"#), limits: l) }
        assertQdrantError(400, ["datatype 'uint8'"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":4,"distance":"Dot","datatype":"uint8"}}"#), limits: l) }
        assertQdrantError(400, ["sharding_method 'custom'"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":4,"distance":"Dot"},"sharding_method":"custom"}"#), limits: l) }
        assertQdrantError(400, ["body.shard_number", "outside 1...256"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vectors":{"size":4,"distance":"Dot"},"shard_number":1000}"#), limits: l) }
        assertQdrantError(400, ["unknown field 'vector'"]) { try CreateCollectionRequest.parse(qdrantBody(#"{"vector":{"size":4,"distance":"Dot"}}"#), limits: l) }
    }

    func testCreateIndexForms() throws {
        XCTAssertEqual(try CreateIndexRequest.parse(qdrantBody(#"{"field_name":"city","field_schema":"keyword"}"#)), CreateIndexRequest(field: "city", type: .keyword))
        XCTAssertEqual(try CreateIndexRequest.parse(qdrantBody(#"{"field_name":"n","field_schema":"integer"}"#)), CreateIndexRequest(field: "n", type: .integer))
        XCTAssertEqual(try CreateIndexRequest.parse(qdrantBody(#"{"field_name":"t","field_schema":{"type":"text"}}"#)), CreateIndexRequest(field: "t", type: .text))
        XCTAssertEqual(try CreateIndexRequest.parse(qdrantBody(#"{"field_name":"f","field_schema":"float"}"#)).type.columnType, .float64)
        XCTAssertEqual(try CreateIndexRequest.parse(qdrantBody(#"{"field_name":"b","field_schema":"bool"}"#)).type.columnType, .bool)
        XCTAssertTrue(PayloadIndexType.keyword.fits(.stringList))
        XCTAssertFalse(PayloadIndexType.integer.fits(.float64))
        assertQdrantError(400, ["'geo' indexes are not supported"]) { try CreateIndexRequest.parse(qdrantBody(#"{"field_name":"g","field_schema":"geo"}"#)) }
        assertQdrantError(400, ["unknown index type 'keywords'"]) { try CreateIndexRequest.parse(qdrantBody(#"{"field_name":"g","field_schema":"keywords"}"#)) }
        assertQdrantError(400, ["field_schema is required"]) { try CreateIndexRequest.parse(qdrantBody(#"{"field_name":"g"}"#)) }
        assertQdrantError(400, ["1...255 bytes"]) { try CreateIndexRequest.parse(qdrantBody(#"{"field_name":"","field_schema":"bool"}"#)) }
    }

    // MARK: upsert

    func testUpsertListAndBatchFormsAsTheClientSendsThem() throws {
        let list = try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":[0.1,0.2,0.3,0.4],"payload":{"city":"Berlin","n":3,"f":1.5,"ok":true,"tags":["a","b"]}},{"id":2,"vector":[1.0,0.0,0.0,0.0]}]}"#), limits: limits)
        XCTAssertEqual(list.points.map(\.id), [1, 2])
        XCTAssertEqual(list.points[0].vector, [0.1, 0.2, 0.3, 0.4])
        XCTAssertEqual(list.points[0].payload?["city"], .string("Berlin"))
        XCTAssertNil(list.points[1].payload)
        let batch = try UpsertRequest.parse(qdrantBody(#"{"batch":{"ids":[3,4],"vectors":[[0.1,0.2,0.3,0.4],[1.0,2.0,3.0,4.0]],"payloads":[{"a":1},{"b":null}]}}"#), limits: limits)
        XCTAssertEqual(batch.points.map(\.id), [3, 4])
        XCTAssertEqual(batch.points[1].vector, [1, 2, 3, 4])
        XCTAssertEqual(batch.points[1].payload?["b"], .null)
        let noPayloads = try UpsertRequest.parse(qdrantBody(#"{"batch":{"ids":[6],"vectors":[[0.10000000149011612,0.20000000298023224,0.30000001192092896,0.4000000059604645]]}}"#), limits: limits)
        XCTAssertEqual(noPayloads.points[0].vector, [0.1, 0.2, 0.3, 0.4])       // float32 printed as double: exact
        let mapped = try batch.mapPayloads(columns: [], limits: limits)
        XCTAssertEqual(mapped.newColumns, [ColumnSpec(name: "a", type: .int64, nullable: true)])   // b: only null, no column
        XCTAssertEqual(mapped.rows, [[.int64(1)], [.null]])
        let conflict = try UpsertRequest.parse(qdrantBody(#"{"batch":{"ids":[3,4],"vectors":[[1],[2]],"payloads":[{"a":1},{"a":"x"}]}}"#), limits: limits)
        let l = limits
        assertQdrantError(400, ["body.batch.payloads[1].a", "'a' holds integer values, got string"]) { try conflict.mapPayloads(columns: [], limits: l) }
        let listConflict = try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":[1],"payload":{"a":true}}]}"#), limits: limits)
        assertQdrantError(400, ["body.points[0].payload.a", "'a' holds integer values, got boolean"]) {
            try listConflict.mapPayloads(columns: [ColumnSpec(name: "a", type: .int64, nullable: true)], limits: l)
        }
    }

    func testUpsertDuplicateIdsLastWins() throws {
        let r = try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":[1],"payload":{"k":"a"}},{"id":2,"vector":[2]},{"id":1,"vector":[3],"payload":{"n":1}}]}"#), limits: limits)
        let d = r.deduplicated()
        XCTAssertEqual(d.points.map(\.id), [2, 1])
        XCTAssertEqual(d.points.map(\.vector), [[2], [3]])
        XCTAssertEqual(try d.mapPayloads(columns: [], limits: limits).newColumns.map(\.name), ["n"])     // the replaced payload adds nothing
        XCTAssertEqual(try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":[1]}]}"#), limits: limits).deduplicated().points.count, 1)
    }

    func testUpsertErrors() throws {
        let l = ServerLimits(maxPointsPerRequest: 2)
        assertQdrantError(400, ["UUID point ids are not supported", "body.points[0].id"]) {
            try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26","vector":[1]}]}"#), limits: l)
        }
        assertQdrantError(400, ["body.points[0].id", "negative"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":-1,"vector":[1]}]}"#), limits: l) }
        assertQdrantError(400, ["body.points[0].id", "unsigned integer"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1.5,"vector":[1]}]}"#), limits: l) }
        assertQdrantError(400, ["above 9223372036854775807"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":18446744073709551615,"vector":[1]}]}"#), limits: l) }
        assertQdrantError(400, ["body.points[0].vector[1]", "expected a number, got a string"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":[1,"2"]}]}"#), limits: l) }
        assertQdrantError(400, ["body.points[0].vector[0]", "32-bit float"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":[1e39]}]}"#), limits: l) }
        assertQdrantError(400, ["squared norm"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":[1e19, 1e19]}]}"#), limits: l) }
        assertQdrantError(400, ["body.points[0].vector", "at least one element"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":[]}]}"#), limits: l) }
        let named = try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":{"text":[1,2],"s":{"indices":[7,3],"values":[0.5,2]}}}]}"#), limits: l)
        XCTAssertEqual(named.points, [UpsertPoint(id: 1, vector: [1, 2], payload: nil, vectorName: "text",
                                                  sparse: SparseVector(indices: [7, 3], values: [0.5, 2]), sparseName: "s")])
        let batch = try UpsertRequest.parse(qdrantBody(#"{"batch":{"ids":[1,2],"vectors":{"":[[1],[2]],"s":[{"indices":[1],"values":[1]},null]}}}"#), limits: l)
        XCTAssertEqual(batch.points.map(\.sparse), [SparseVector(indices: [1], values: [1]), nil])
        XCTAssertEqual(batch.points.map(\.vectorName), ["", ""])
        assertQdrantError(400, ["needs its name"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":{"indices":[1],"values":[2]}}]}"#), limits: l) }
        assertQdrantError(400, ["at most one dense vector"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":{"a":[1],"b":[2]}}]}"#), limits: l) }
        assertQdrantError(400, ["at most one sparse vector"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":{"a":[1],"s":{"indices":[1],"values":[1]},"t":{"indices":[1],"values":[1]}}}]}"#), limits: l) }
        assertQdrantError(400, ["needs its dense vector"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":{"s":{"indices":[1],"values":[1]}}}]}"#), limits: l) }
        assertQdrantError(400, ["1 indices but 2 values"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":{"":[1],"s":{"indices":[1],"values":[1,2]}}}]}"#), limits: l) }
        assertQdrantError(400, [".s.indices[0]", "outside"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":{"":[1],"s":{"indices":[-1],"values":[1]}}}]}"#), limits: l) }
        assertQdrantError(400, [".s.values[0]", "32-bit float"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":{"":[1],"s":{"indices":[1],"values":[1e39]}}}]}"#), limits: l) }
        assertQdrantError(400, ["multi-vectors"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":[[1,2],[3,4]]}]}"#), limits: l) }
        assertQdrantError(400, ["body.points[0]", "missing field 'vector'"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1}]}"#), limits: l) }
        assertQdrantError(400, ["body.points[0]", "unknown field 'vectors'"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vectors":[1]}]}"#), limits: l) }
        assertQdrantError(400, ["body.points[0].payload", "expected a payload object"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":[1],"payload":[1]}]}"#), limits: l) }
        assertQdrantError(400, ["3 points exceed the limit of 2"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[{"id":1,"vector":[1]},{"id":2,"vector":[1]},{"id":3,"vector":[1]}]}"#), limits: l) }
        assertQdrantError(400, ["3 ids exceed the limit of 2"]) { try UpsertRequest.parse(qdrantBody(#"{"batch":{"ids":[1,2,3],"vectors":[[1],[1],[1]]}}"#), limits: l) }
        assertQdrantError(400, ["body.batch.vectors", "1 vectors for 2 ids"]) { try UpsertRequest.parse(qdrantBody(#"{"batch":{"ids":[1,2],"vectors":[[1]]}}"#), limits: l) }
        assertQdrantError(400, ["body.batch.payloads", "1 payloads for 2 ids"]) { try UpsertRequest.parse(qdrantBody(#"{"batch":{"ids":[1,2],"vectors":[[1],[2]],"payloads":[{}]}}"#), limits: l) }
        assertQdrantError(400, ["'points' (a list of points) or 'batch'"]) { try UpsertRequest.parse(qdrantBody(#"{}"#), limits: l) }
        assertQdrantError(400, ["update_filter is not supported"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[],"update_filter":{"must":[]}}"#), limits: l) }
        assertQdrantError(400, ["update_mode 'insert_only'"]) { try UpsertRequest.parse(qdrantBody(#"{"points":[],"update_mode":"insert_only"}"#), limits: l) }
        assertQdrantError(400, ["Format error in JSON body", "not valid JSON"]) { try qdrantBody(#"{"points":[{"id":1,}]}"#) }
        assertQdrantError(400, ["not valid UTF-8"]) { try RequestBody.parse([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D], limits: ServerLimits()) }
        assertQdrantError(400, ["nests too deeply"]) { try qdrantBody(String(repeating: "[", count: 500) + String(repeating: "]", count: 500)) }
    }

    // MARK: delete, retrieve, scroll, count

    func testDeleteRetrieveScrollCountAsTheClientSendsThem() throws {
        XCTAssertEqual(try DeleteRequest.parse(qdrantBody(#"{"points":[1,2]}"#), limits: limits), .ids([1, 2]))
        guard case .filter(let f) = try DeleteRequest.parse(qdrantBody(#"{"filter":{"must":[{"key":"n","range":{"gt":2.0}}]}}"#), limits: limits) else {
            return XCTFail("expected a filter delete")
        }
        XCTAssertEqual(f, QdrantFilter(must: [.range(key: "n", FilterRange(gt: .float(2)))]))
        assertQdrantError(400, ["either 'points' or 'filter'"]) { try DeleteRequest.parse(qdrantBody(#"{"points":[1],"filter":{}}"#), limits: ServerLimits()) }

        XCTAssertEqual(try RetrieveRequest.parse(qdrantBody(#"{"ids":[1,2],"with_payload":true,"with_vector":false}"#), limits: limits),
                       RetrieveRequest(ids: [1, 2], withPayload: .all, withVector: false))
        XCTAssertEqual(try RetrieveRequest.parse(qdrantBody(#"{"ids":[1],"with_payload":{"include":["city"]},"with_vector":true}"#), limits: limits),
                       RetrieveRequest(ids: [1], withPayload: .include(["city"]), withVector: true))
        XCTAssertEqual(try RetrieveRequest.parse(qdrantBody(#"{"ids":[1]}"#), limits: limits).withPayload, .all)   // Qdrant's default

        let s = try ScrollRequest.parse(qdrantBody(#"{"offset":3,"limit":2,"filter":{"must":[{"key":"tags","match":{"any":["a"]}}]},"with_payload":false,"with_vector":false}"#), limits: limits)
        XCTAssertEqual(s, ScrollRequest(filter: QdrantFilter(must: [.matchAny(key: "tags", values: [.string("a")])]), limit: 2, offset: 3, withPayload: .none, withVector: false))
        let plain = try ScrollRequest.parse(qdrantBody(#"{"limit":10,"with_payload":true,"with_vector":false}"#), limits: limits)
        XCTAssertEqual(plain, ScrollRequest(filter: nil, limit: 10, offset: nil, withPayload: .all, withVector: false))
        XCTAssertEqual(try ScrollRequest.parse(qdrantBody(""), limits: limits).limit, 10)
        assertQdrantError(400, ["order_by is not supported"]) { try ScrollRequest.parse(qdrantBody(#"{"order_by":"n"}"#), limits: ServerLimits()) }
        assertQdrantError(400, ["body.limit", "outside 1...10000"]) { try ScrollRequest.parse(qdrantBody(#"{"limit":10001}"#), limits: ServerLimits()) }
        assertQdrantError(400, ["body.offset", "UUID"]) { try ScrollRequest.parse(qdrantBody(#"{"offset":"a-b"}"#), limits: ServerLimits()) }

        XCTAssertEqual(try CountRequest.parse(qdrantBody(#"{"exact":true}"#), limits: limits), CountRequest(filter: nil, exact: true))
        XCTAssertEqual(try CountRequest.parse(qdrantBody(#"{"filter":{"must":[{"key":"city","match":{"value":"Berlin"}}]},"exact":true}"#), limits: limits).filter,
                       QdrantFilter(must: [.match(key: "city", value: .string("Berlin"))]))
        assertQdrantError(400, ["body.exact", "expected a boolean"]) { try CountRequest.parse(qdrantBody(#"{"exact":1}"#), limits: ServerLimits()) }
    }

    func testWithPayloadAndWithVectorForms() throws {
        XCTAssertEqual(try PointFields.withPayload(.bool(false), "p", default: .all), PayloadSelection.none)
        XCTAssertEqual(try PointFields.withPayload(nil, "p", default: .all), .all)
        XCTAssertEqual(try PointFields.withPayload(qdrantBody(#"["a","b"]"#), "p", default: .none), .include(["a", "b"]))
        XCTAssertEqual(try PointFields.withPayload(qdrantBody(#"{"exclude":["n"]}"#), "p", default: .none), .exclude(["n"]))
        assertQdrantError(400, ["p[1]", "payload key"]) { try PointFields.withPayload(qdrantBody(#"["a",1]"#), "p", default: .none) }
        assertQdrantError(400, ["p", "include"]) { try PointFields.withPayload(qdrantBody(#"{"only":["a"]}"#), "p", default: .none) }
        XCTAssertTrue(PayloadSelection.exclude(["n"]).includes("a"))
        XCTAssertFalse(PayloadSelection.exclude(["n"]).includes("n"))
        XCTAssertTrue(try PointFields.withVector(.bool(true), "v"))
        XCTAssertFalse(try PointFields.withVector(qdrantBody("[]"), "v"))
        XCTAssertTrue(try PointFields.withVector(qdrantBody(#"["text"]"#), "v"))
        assertQdrantError(400, ["v[0]", "vector name"]) { try PointFields.withVector(qdrantBody(#"[1]"#), "v") }
    }

    func testWaitParameter() throws {
        XCTAssertTrue(try QueryParameters.bool("true", name: "wait", default: false))
        XCTAssertFalse(try QueryParameters.bool("false", name: "wait", default: true))
        XCTAssertFalse(try QueryParameters.bool(nil, name: "wait", default: false))
        XCTAssertTrue(try QueryParameters.bool("", name: "wait", default: true))
        assertQdrantError(400, ["wait", "'yes'"]) { try QueryParameters.bool("yes", name: "wait", default: false) }
    }
}
