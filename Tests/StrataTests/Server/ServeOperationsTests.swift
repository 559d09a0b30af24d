// `strata serve` as an operator and a hostile client see it: API keys (full and read-only),
// request limits and malformed input answered with Qdrant's errors, Prometheus metrics, and a
// SIGTERM that hands a node's shards over at once (its leases are revoked, not left to expire).
import AsyncHTTPClient
import Foundation
import NIOHTTP1
import XCTest

final class ServeOperationsTests: StrataTestCase {
    func testAPIKeysLimitsAndMalformedRequests() async throws {
        let env = try RemoteTestEnvironment.current()
        let cluster = ServeTestCluster(env: env, name: "serve-ops", scratch: tmp, apiKey: "full-key")
        addTeardownBlock { cluster.stopAll() }
        let node = try cluster.start("o0", extra: ["--read-only-api-key", "read-key", "--max-body-bytes", "20000", "--compact-interval", "0"])
        _ = try await cluster.result(node, .PUT, "/collections/c", body: ["vectors": ["size": 4, "distance": "Dot"]])
        _ = try await cluster.result(node, .PUT, "/collections/c/points?wait=true",
                                     body: ["points": [["id": 1, "vector": [1, 0, 0, 0], "payload": ["k": "a"]]]])
        func status(_ method: HTTPMethod, _ path: String, body: Any? = nil, key: String?) async throws -> (Int, String) {
            var headers: [(String, String)] = []
            if let key { headers.append(("api-key", key)) } else { headers.append(("api-key", "")) }
            let r = try await cluster.request(node, method, path, body: body, headers: headers)
            return (r.status, r.text)
        }
        func expect(_ want: Int, _ method: HTTPMethod, _ path: String, body: Any? = nil, key: String?,
                    line: UInt = #line) async throws {
            let (got, text) = try await status(method, path, body: body, key: key)
            XCTAssertEqual(got, want, "\(method) \(path) with key \(key ?? "none"): \(text.prefix(300))", line: line)
        }
        let search: [String: Any] = ["query": [1, 0, 0, 0], "limit": 1]
        try await expect(401, .GET, "/collections", key: "wrong")
        try await expect(401, .GET, "/collections", key: "")
        try await expect(200, .GET, "/healthz", key: "")
        try await expect(200, .GET, "/collections", key: "read-key")
        try await expect(200, .POST, "/collections/c/points/query", body: search, key: "read-key")
        let forbidden = try await status(.PUT, "/collections/c/points", body: ["points": [["id": 2, "vector": [0, 1, 0, 0]]]], key: "read-key")
        XCTAssertEqual(forbidden.0, 403, forbidden.1)
        try await expect(403, .DELETE, "/collections/c", key: "read-key")
        try await expect(403, .POST, "/strata/internal/v1/collections/c/shards/0/count", body: ["uid": "x"], key: "read-key")

        // Limits and malformed input: Qdrant's error body, the right code, a message naming the field.
        let big = ["points": (0..<2_000).map { ["id": $0, "vector": [0.125, 0.25, 0.5, 1.0]] }]
        try await expect(413, .PUT, "/collections/c/points", body: big, key: "full-key")
        var r = try await cluster.request(node, .POST, "/collections/c/points/query", body: ["query": "not a vector", "limit": 1])
        XCTAssertEqual(r.status, 400, r.text)
        XCTAssertTrue(r.text.contains("query"), r.text)
        XCTAssertNotNil(((r.json as? [String: Any])?["status"] as? [String: Any])?["error"] as? String, r.text)
        r = try await cluster.request(node, .POST, "/collections/c/points/query", body: ["query": [1, 0, 0], "limit": 1])
        XCTAssertEqual(r.status, 400, r.text)
        XCTAssertTrue(r.text.contains("dim"), r.text)
        r = try await cluster.request(node, .PUT, "/collections/c/points", body: ["points": [["id": "4f2c7a1e-0000-4000-8000-000000000000", "vector": [1, 0, 0, 0]]]])
        XCTAssertEqual(r.status, 400, r.text)
        XCTAssertTrue(r.text.contains("UUID"), r.text)
        r = try await cluster.request(node, .POST, "/collections/missing/points/count", body: [:])
        XCTAssertEqual(r.status, 404, r.text)
        r = try await cluster.request(node, .PUT, "/collections/c/points", body: ["points": [["id": 5, "vector": [1, 0, 0, 0], "payload": ["k": 7]]]])
        XCTAssertEqual(r.status, 400, r.text)
        XCTAssertTrue(r.text.contains("'k'"), r.text)
        var raw = HTTPClientRequest(url: node.url + "/collections/c/points/query")
        raw.method = .POST
        raw.headers.add(name: "api-key", value: "full-key")
        raw.body = .bytes(.init(string: "{\"query\": [1, 0, 0, 0], \"limit\": "))
        let response = try await cluster.http.execute(raw, timeout: .seconds(30))
        XCTAssertEqual(response.status.code, 400)
        for limit in [0, -1, 10_000_000] {
            r = try await cluster.request(node, .POST, "/collections/c/points/query", body: ["query": [1, 0, 0, 0], "limit": limit])
            XCTAssertEqual(r.status, 400, "limit \(limit): \(r.text)")
        }
        // Still serving after all of that.
        r = try await cluster.request(node, .POST, "/collections/c/points/query", body: search)
        XCTAssertEqual(r.status, 200, r.text)

        let metrics = try await cluster.request(node, .GET, "/metrics")
        XCTAssertEqual(metrics.status, 200)
        for name in ["hb_requests{http_route=\"/collections/{name}/points/query\"", "http_server_request_duration_count", "strata_search_fanout_seconds_count",
                     "strata_wal_commit_seconds_count", "strata_shard_rows{collection=\"c\",shard=\"0\"} 1.0", "strata_shard_segments",
                     "strata_cache_hits{collection=\"c\",shard=\"0\"}", "strata_cache_fetches{collection=\"c\",shard=\"0\"}",
                     // The library's own, through the bootstrapped MetricsSystem (CollectionMetrics.swift).
                     "strata_collection_inserted_rows_total"] {
            XCTAssertTrue(metrics.text.contains(name), "metrics lack \(name): \(metrics.text.prefix(3000))")
        }
    }

    func testSIGTERMHandsShardsOverWithoutWaitingForLeases() async throws {
        let env = try RemoteTestEnvironment.current()
        let cluster = ServeTestCluster(env: env, name: "serve-term", scratch: tmp)
        addTeardownBlock { cluster.stopAll() }
        let a = try cluster.start("t0", extra: ["--compact-interval", "0", "--lease-seconds", "30"])
        _ = try await cluster.result(a, .PUT, "/collections/h", body: ["vectors": ["size": 4, "distance": "Euclid"], "shard_number": 8])  // some are t0's
        _ = try await cluster.result(a, .PUT, "/collections/h/points?wait=true",
                                     body: ["points": (0..<50).map { ["id": $0, "vector": [Double($0), 1, 2, 3]] }])
        let b = try cluster.start("t1", extra: ["--compact-interval", "0", "--lease-seconds", "30"])
        a.stop()
        XCTAssertFalse(a.process.isRunning)
        XCTAssertEqual(a.process.terminationStatus, 0, a.log.suffix(2000).description)
        // With 30-second leases, only a release at shutdown lets b write this soon.
        let start = Date()
        _ = try await cluster.result(b, .PUT, "/collections/h/points?wait=true",
                                     body: ["points": (50..<100).map { ["id": $0, "vector": [Double($0), 1, 2, 3]] }])
        let took = Date().timeIntervalSince(start)
        XCTAssertLessThan(took, 20, "b waited \(took) s: the shards were not released")
        let count = try await cluster.result(b, .POST, "/collections/h/points/count", body: ["exact": true]) as? [String: Any]
        XCTAssertEqual(count?["count"] as? Int, 100)
    }
}
