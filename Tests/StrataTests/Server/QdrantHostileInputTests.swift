// Bad input never crashes the Qdrant layer: mutated and truncated versions of the bodies
// qdrant-client sends go through every parser and the binding; each either parses or throws a
// QdrantError (a crash fails the whole run). Deterministic: a fixed seed.
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataServer
import StrataTestSupport

final class QdrantHostileInputTests: XCTestCase {
    static let bodies = [
        #"{"vectors":{"size":4,"distance":"Cosine"},"shard_number":2}"#,
        #"{"field_name":"t","field_schema":{"type":"text"}}"#,
        #"{"points":[{"id":1,"vector":[0.1,0.2,0.3,0.4],"payload":{"city":"Berlin","n":3,"f":1.5,"ok":true,"tags":["a","b"]}},{"id":2,"vector":[1.0,0.0,0.0,0.0]}]}"#,
        #"{"batch":{"ids":[3,4],"vectors":[[0.1,0.2,0.3,0.4],[1.0,2.0,3.0,4.0]],"payloads":[{"a":1},{"b":null}]}}"#,
        #"{"query":{"nearest":[0.1,0.2,0.3,0.4]},"filter":{"must":[{"key":"city","match":{"value":"Berlin"}},{"key":"n","range":{"lt":5.5,"gte":1.0}}],"must_not":[{"has_id":[7]}]},"params":{"hnsw_ef":128,"exact":false},"score_threshold":0.5,"limit":5,"offset":2,"with_vector":true,"with_payload":["city"]}"#,
        #"{"prefetch":[{"query":[0.1,0.2,0.3,0.4],"limit":20},{"query":[0.4,0.3,0.2,0.1],"filter":{"should":[{"is_null":{"key":"n"}}],"min_should":{"conditions":[{"key":"n","match":{"any":[1,2]}},{"is_empty":{"key":"tags"}}],"min_count":1}},"limit":20}],"query":{"rrf":{"k":3,"weights":[1,2]}},"limit":10,"with_vector":false,"with_payload":true}"#,
        #"{"searches":[{"query":{"nearest":[0.1,0.2,0.3,0.4]},"limit":2},{"query":{"nearest":[1.0,0.0,0.0,0.0]},"filter":{"must":{"key":"ok","match":{"value":true}}}}]}"#,
        #"{"ids":[1],"with_payload":{"include":["city"]},"with_vector":true}"#,
        #"{"offset":3,"limit":2,"filter":{"must":[{"key":"tags","match":{"except":["a"]}}]},"with_payload":false,"with_vector":false}"#,
        #"{"filter":{"must":[{"key":"n","range":{"gt":2.0}}]}}"#,
    ]

    func runAll(_ bytes: [UInt8]) {
        let limits = ServerLimits(maxPointsPerRequest: 50, maxLimit: 100, maxBatchSearches: 5, maxFilterDepth: 6)
        let columns = [ColumnSpec(name: "city", type: .string, nullable: true), ColumnSpec(name: "n", type: .int64, nullable: true),
                       ColumnSpec(name: "tags", type: .stringList, nullable: true)]
        guard let body = try? RequestBody.parse(bytes, limits: limits) else { return }
        _ = try? CreateCollectionRequest.parse(body, limits: limits)
        _ = try? CreateIndexRequest.parse(body)
        if let u = try? UpsertRequest.parse(body, limits: limits) { _ = try? u.mapPayloads(columns: columns, limits: limits) }
        if case .filter(let f)? = try? DeleteRequest.parse(body, limits: limits) { _ = try? f.bind(columns: columns, limits: limits) }
        _ = try? RetrieveRequest.parse(body, limits: limits)
        if let s = try? ScrollRequest.parse(body, limits: limits) { _ = try? s.filter?.bind(columns: columns, limits: limits) }
        _ = try? CountRequest.parse(body, limits: limits)
        _ = try? SearchRequests.parseSearch(body, limits: limits)
        _ = try? SearchRequests.parseSearchBatch(body, limits: limits)
        _ = try? SearchRequests.parseQueryBatch(body, limits: limits)
        if case .fusion(let f)? = try? SearchRequests.parseQuery(body, limits: limits) {
            for i in f.prefetches.indices { _ = try? f.prefetchFilter(i, columns: columns, limits: limits) }
            _ = f.fuse(f.prefetches.map { _ in [1, 2, 3] })
        }
    }

    func testMutatedBodiesNeverCrash() {
        var rng = SplitMix64(seed: 0x5EED)
        let alphabet = Array(#"{}[],:"-0123456789.eE truefalsenul\"#.utf8) + [0x00, 0xFF, 0xC3]
        var parsedSome = 0
        for body in Self.bodies {
            let original = Array(body.utf8)
            for cut in stride(from: 0, through: original.count, by: 3) { runAll(Array(original.prefix(cut))) }
            for _ in 0..<400 {
                var b = original
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    let i = Int(rng.next() % UInt64(b.count))
                    switch rng.next() % 3 {
                    case 0: b[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                    case 1: b.remove(at: i)
                    default: b.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: i)
                    }
                    if b.isEmpty { b = [0x7B] }
                }
                if (try? RequestBody.parse(b, limits: ServerLimits())) != nil { parsedSome += 1 }
                runAll(b)
            }
        }
        XCTAssertGreaterThan(parsedSome, 100)      // the mutations reach the parsers, not only the JSON reader
    }
}
