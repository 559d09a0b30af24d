// Response bodies: the JSON writer, and every encoder's output validated by qdrant-client's own
// pydantic models (qdrant_shapes.py) when STRATA_TEST_QDRANT_PYTHON names a Python with
// qdrant-client 1.20.0 installed (tools/test.sh sets it); the bodies are always written and parsed
// back here. STRATA_QDRANT_SHAPES_DIR keeps them in a directory of your choice.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataServer

final class QdrantResponseTests: StrataTestCase {
    func testWriterEscapingAndNumbers() throws {
        var w = JSONWriter()
        w.beginObject()
        w.key("s"); w.string("a\"b\\c\n\r\t\u{01}\u{1F}é😀/")
        w.key("i"); w.int(Int64.min)
        w.key("u"); w.uint(UInt64.max)
        w.key("f"); w.floats([0.1, 1, -0.0, 1e-5, 3.4028235e38, 1.17549435e-38])
        w.key("d"); w.double(0.1)
        w.key("bad"); w.float(.nan)
        w.key("e"); w.beginArray(); w.endArray()
        w.key("o"); w.beginObject(); w.endObject()
        w.key("n"); w.null()
        w.endObject()
        XCTAssertEqual(w.string, #"{"s":"a\"b\\c\n\r\t\u0001\u001fé😀/","i":-9223372036854775808,"u":18446744073709551615,"f":[0.1,1.0,-0.0,1e-05,3.4028235e+38,1.1754944e-38],"d":0.1,"bad":null,"e":[],"o":{},"n":null}"#)
        // Every float prints so that it reads back to the same float.
        var rng = SystemRandomNumberGenerator()
        var values: [Float] = []
        for _ in 0..<2000 { values.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))) }
        values = values.filter(\.isFinite)
        var fw = JSONWriter()
        fw.floats(values)
        guard case .array(let back) = try qdrantBody(fw.string) else { return XCTFail() }
        for (v, b) in zip(values, back) {
            let d: Double
            switch b { case .double(let x): d = x; case .int(let i): d = Double(i); default: return XCTFail("\(b)") }
            XCTAssertEqual(Float(d).bitPattern, v.bitPattern, "\(v)")
        }
        // A string with every control character parses back unchanged.
        let controls = String((0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) })
        var cw = JSONWriter(); cw.string(controls)
        XCTAssertEqual(try qdrantBody(cw.string), .string(controls))
    }

    /// Every response the layer writes, with the qdrant-client model that must accept it.
    func responses() -> [(name: String, model: String, status: Int, body: [UInt8])] {
        let columns = [ColumnSpec(name: "city", type: .string, nullable: true), ColumnSpec(name: "n", type: .int64, nullable: true),
                       ColumnSpec(name: "f", type: .float64, nullable: true), ColumnSpec(name: "ok", type: .bool, nullable: true),
                       ColumnSpec(name: "tags", type: .stringList, nullable: true)]
        let row: [PayloadValue] = [.string("Berlin \"x\""), .int64(3), .float64(1.5), .bool(true), .stringList(["a", "b"])]
        let scored = [PointOut(id: 7, score: 0.875, payload: row, vector: [0.1, 0.2, 1e-5, -3]),
                      PointOut(id: 9, score: -1.25, payload: [.null, .null, .null, .null, .null], vector: [1, 2, 3, 4])]
        let records = [PointOut(id: 1, payload: row), PointOut(id: UInt64(Int64.max), payload: nil)]
        let summary = CollectionSummary(dimension: 384, distance: .cosine, shardNumber: 2, pointsCount: 20_000, segmentsCount: 6,
                                        indexedVectorsCount: 19_000, payloadIndexes: [(field: "city", type: .keyword, points: 20_000), (field: "n", type: .integer, points: 5)])
        return [
            ("root", "VersionInfo", 200, QdrantResponse.versionInfo()),
            ("root-commit", "VersionInfo", 200, QdrantResponse.versionInfo(commit: "abc123")),
            ("collections", "InlineResponse2006", 200, QdrantResponse.collections(["a", "b\"c"], time: 0.001)),
            ("collections-empty", "InlineResponse2006", 200, QdrantResponse.collections([], time: 0)),
            ("collection-info", "InlineResponse2007", 200, QdrantResponse.collectionInfo(summary, time: 0.5)),
            ("collection-info-empty", "InlineResponse2007", 200, QdrantResponse.collectionInfo(
                CollectionSummary(dimension: 4, distance: .euclid, shardNumber: 1, pointsCount: 0, segmentsCount: 0), time: 0)),
            ("create-collection", "InlineResponse2001", 200, QdrantResponse.boolean(true, time: 0.01)),
            ("exists", "InlineResponse2009", 200, QdrantResponse.exists(false, time: 0)),
            ("update-completed", "InlineResponse2008", 200, QdrantResponse.updateResult(operationId: 42, completed: true, time: 0.02)),
            ("update-acknowledged", "InlineResponse2008", 200, QdrantResponse.updateResult(operationId: nil, completed: false, time: 0.02)),
            ("retrieve", "InlineResponse20017", 200, QdrantResponse.records(records, columns: columns, withPayload: .all, time: 0)),
            ("retrieve-vectors", "InlineResponse20017", 200, QdrantResponse.records([PointOut(id: 3, payload: row, vector: [1, 0.5])], columns: columns, withPayload: .include(["n"]), time: 0)),
            ("scroll", "InlineResponse20019", 200, QdrantResponse.scroll(records, nextPageOffset: 12, columns: columns, withPayload: .exclude(["tags"]), time: 0)),
            ("scroll-last", "InlineResponse20019", 200, QdrantResponse.scroll([], nextPageOffset: nil, columns: columns, withPayload: .none, time: 0)),
            ("record", "InlineResponse20016", 200, QdrantResponse.record(PointOut(id: 4, payload: row, vector: [0.5]), columns: columns, withPayload: .all, time: 0)),
            ("count", "InlineResponse20020", 200, QdrantResponse.count(20_000, time: 0)),
            ("query", "InlineResponse20022", 200, QdrantResponse.queryResult(scored, columns: columns, withPayload: .all, time: 0.003)),
            ("query-no-payload", "InlineResponse20022", 200, QdrantResponse.queryResult([PointOut(id: 1, score: 0.5)], columns: columns, withPayload: .none, time: 0)),
            ("query-batch", "InlineResponse20023", 200, QdrantResponse.queryBatchResult([(scored, .all), ([], .none)], columns: columns, time: 0)),
            ("error-400", "ErrorResponse", 400, QdrantResponse.error(.format("body.points[0].id", "expected an unsigned integer point id, got a string"), time: 0)),
            ("error-404", "ErrorResponse", 404, QdrantResponse.error(.collectionNotFound("c"), time: 0.0001)),
            // Qdrant's search endpoints answer a list of ScoredPoint (qdrant-client 1.20 no longer
            // calls them; qdrant_shapes.py defines these two envelopes from its ScoredPoint).
            ("search", "ScoredPointsResponse", 200, QdrantResponse.searchResult(scored, columns: columns, withPayload: .all, time: 0)),
            ("search-batch", "ScoredPointsBatchResponse", 200, QdrantResponse.searchBatchResult([(scored, .include(["n"])), ([], .none)], columns: columns, time: 0)),
        ]
    }

    func testResponsesParseAndCarryTheirFields() throws {
        for r in responses() {
            let value = try qdrantBody(String(decoding: r.body, as: UTF8.self))
            guard case .object(let o) = value else { XCTFail("\(r.name): not an object"); continue }
            if r.model == "VersionInfo" { XCTAssertEqual(o["version"], .string("1.20.0")); continue }
            if r.status != 200 {
                guard case .object(let s)? = o["status"], case .string(let e)? = s["error"] else { XCTFail("\(r.name): \(o)"); continue }
                XCTAssertFalse(e.isEmpty)
                continue
            }
            XCTAssertEqual(o["status"], .string("ok"), r.name)
            XCTAssertNotNil(o["result"], r.name)
        }
        // Scored points: id, version, score, payload in column order without nulls, vector.
        let query = try XCTUnwrap(responses().first { $0.name == "query" })
        let text = String(decoding: query.body, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix(#"{"result":{"points":[{"id":7,"version":0,"score":0.875,"payload":{"city":"Berlin \"x\"","n":3,"f":1.5,"ok":true,"tags":["a","b"]},"vector":[0.1,0.2,1e-05,-3.0]},{"id":9,"version":0,"score":-1.25,"payload":{},"vector":[1.0,2.0,3.0,4.0]}]},"status":"ok","time":"#), text)
    }

    func testResponsesValidateWithQdrantClientModels() throws {
        let dir: URL
        if let keep = ProcessInfo.processInfo.environment["STRATA_QDRANT_SHAPES_DIR"] {
            dir = URL(fileURLWithPath: keep)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } else {
            dir = tmp
        }
        var manifest: [[String: Any]] = []
        for r in responses() {
            try Data(r.body).write(to: dir.appendingPathComponent("\(r.name).json"))
            manifest.append(["file": "\(r.name).json", "model": r.model, "status": r.status])
        }
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]).write(to: dir.appendingPathComponent("manifest.json"))
        let python = try qdrantClientPython()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("qdrant_shapes.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script.path, dir.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, output)
    }
}
