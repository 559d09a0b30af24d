// `strata serve` while its infrastructure misbehaves: etcd and the object store each frozen
// (SIGSTOP) for a few seconds under queries and writes. Queries keep being answered with the same
// results, a write made meanwhile is acknowledged once the service is back, and nothing is lost.
import AsyncHTTPClient
import Foundation
import NIOHTTP1
import StrataTestSupport
import XCTest

final class ServeFaultTests: StrataTestCase {
    /// The PID of a test service (`weed` or `etcd`), from the directory tools/services.sh exports.
    func servicePID(_ name: String) throws -> pid_t {
        guard let dir = ProcessInfo.processInfo.environment["STRATA_TEST_SERVICES_DIR"] else {
            throw XCTSkip("STRATA_TEST_SERVICES_DIR not set (tools/test.sh sets it)")
        }
        let text = try String(contentsOfFile: "\(dir)/\(name).pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return try XCTUnwrap(pid_t(text), "\(dir)/\(name).pid: \(text)")
    }

    func testQueriesAndWritesRideOutAFrozenEtcdAndObjectStore() async throws {
        let env = try RemoteTestEnvironment.current()
        let etcdPID = try servicePID("etcd")
        let weedPID = try servicePID("weed")
        let cluster = ServeTestCluster(env: env, name: "serve-fault", scratch: tmp)
        addTeardownBlock {
            kill(etcdPID, SIGCONT)
            kill(weedPID, SIGCONT)
            cluster.stopAll()
        }
        for n in ["f0", "f1", "f2"] { try cluster.start(n, extra: ["--compact-interval", "0"]) }
        _ = try await cluster.result(cluster.nodes[0], .PUT, "/collections/f", body: ["vectors": ["size": 8, "distance": "Cosine"], "shard_number": 2])
        func points(_ ids: Range<Int>) -> [[String: Any]] {
            ids.map { id in
                var rng = SplitMix64(seed: UInt64(id) + 5)
                return ["id": id, "vector": (0..<8).map { _ in Double(rng.gaussianish()) }, "payload": ["even": id % 2 == 0]]
            }
        }
        _ = try await cluster.result(cluster.nodes[1], .PUT, "/collections/f/points?wait=true", body: ["points": points(0..<2_000)])
        let query: [String: Any] = ["query": [1, 2, 3, 4, 5, 6, 7, 8], "limit": 10, "params": ["exact": true],
                                    "filter": ["must": [["key": "even", "match": ["value": true]]]]]
        let baseline = try await cluster.result(cluster.nodes[2], .POST, "/collections/f/points/query", body: query)
        let want = ((baseline as? [String: Any])?["points"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
        XCTAssertEqual(want.count, 10)

        var next = 2_000
        for (name, pid) in [("etcd", etcdPID), ("the object store", weedPID)] {
            XCTAssertEqual(kill(pid, SIGSTOP), 0)
            let frozen = Date()
            let batch = next..<(next + 10)
            next += 10
            nonisolated(unsafe) let body: Any = ["points": points(batch)]
            let writer = cluster.nodes[0]
            let write = Task { () async throws -> (Int, String) in
                let r = try await cluster.request(writer, .PUT, "/collections/f/points?wait=true", body: body, timeout: 120)
                return (r.status, r.text)
            }
            for node in cluster.nodes {
                let r = try await cluster.request(node, .POST, "/collections/f/points/query", body: query, timeout: 60)
                XCTAssertEqual(r.status, 200, "\(name) frozen, \(node.id): \(r.text.prefix(300))")
                let got = (((r.json as? [String: Any])?["result"] as? [String: Any])?["points"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
                XCTAssertEqual(got, want, "\(name) frozen, \(node.id)")
            }
            let remaining = 3 - Date().timeIntervalSince(frozen)
            if remaining > 0 { try await Task.sleep(nanoseconds: UInt64(remaining * 1e9)) }
            XCTAssertEqual(kill(pid, SIGCONT), 0)
            let (status, text) = try await write.value
            XCTAssertEqual(status, 200, "the write made while \(name) was frozen: \(text.prefix(300))")
        }
        for node in cluster.nodes {
            let count = try await cluster.result(node, .POST, "/collections/f/points/count", body: ["exact": true]) as? [String: Any]
            XCTAssertEqual(count?["count"] as? Int, next, node.id)
        }
    }
}
