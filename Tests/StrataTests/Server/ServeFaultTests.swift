// `strata serve` while its infrastructure misbehaves: etcd and the object store each frozen
// (SIGSTOP) for a few seconds, then etcd restarted and the object store stopped and started again
// (tools/services.sh restart), each under queries and writes. Queries keep being answered with the
// same results; a write made during an outage is acknowledged once the service is back or refused
// with an error (a lease that lapsed meanwhile fences its writer), never acknowledged and lost;
// afterwards every node acknowledges writes again, and every acknowledged point is there once.
import AsyncHTTPClient
import Foundation
import NIOHTTP1
import StrataTestSupport
import XCTest

final class ServeFaultTests: StrataTestCase {
    /// One outage of a test service: `begin` starts it, `end` waits until the service is back.
    /// When `queryAgainAfter` is set, every node is queried again that many seconds into it.
    struct Outage {
        let name: String
        var queryAgainAfter: Double? = nil
        let begin: () throws -> Void
        let end: () async throws -> Void
    }

    /// The directory tools/services.sh runs the test services from.
    func servicesDirectory() throws -> String {
        guard let dir = ProcessInfo.processInfo.environment["STRATA_TEST_SERVICES_DIR"] else {
            throw XCTSkip("STRATA_TEST_SERVICES_DIR not set (tools/test.sh sets it)")
        }
        return dir
    }

    /// The PID of a test service (`weed` or `etcd`).
    func servicePID(_ name: String) throws -> pid_t {
        let dir = try servicesDirectory()
        let text = try String(contentsOfFile: "\(dir)/\(name).pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return try XCTUnwrap(pid_t(text), "\(dir)/\(name).pid: \(text)")
    }

    /// A service frozen (SIGSTOP) for `seconds`.
    func freeze(_ service: String, seconds: Double) throws -> Outage {
        let pid = try servicePID(service)
        addTeardownBlock { kill(pid, SIGCONT) }
        var frozen = Date()
        return Outage(name: "\(service) frozen", begin: {
            XCTAssertEqual(kill(pid, SIGSTOP), 0)
            frozen = Date()
        }, end: {
            let remaining = seconds - Date().timeIntervalSince(frozen)
            if remaining > 0 { try await Task.sleep(nanoseconds: UInt64(remaining * 1e9)) }
            XCTAssertEqual(kill(pid, SIGCONT), 0)
        })
    }

    /// A service stopped, left down `seconds`, and started again on its data and ports.
    func restart(_ service: String, down seconds: Double) throws -> Outage {
        let dir = try servicesDirectory()
        let script = Process()
        script.executableURL = URL(fileURLWithPath: "/bin/bash")
        script.arguments = [repoRoot.appendingPathComponent("tools/services.sh").path, "restart", dir, service, String(seconds)]
        return Outage(name: "\(service) restarted", begin: {
            try script.run()
            Thread.sleep(forTimeInterval: 0.5) // until the script has stopped it
        }, end: {
            let deadline = Date().addingTimeInterval(120)
            while script.isRunning && Date() < deadline { try await Task.sleep(nanoseconds: 100_000_000) }
            guard !script.isRunning else {
                script.terminate()
                throw ServeTestFailure(description: "tools/services.sh restart \(service) still running after 120 s")
            }
            XCTAssertEqual(script.terminationStatus, 0, "tools/services.sh restart \(service) failed")
        })
    }

    /// etcd frozen longer than the nodes' 4-second leases: every shard writer's lease lapses, no
    /// read-only handle can be opened, and the second round of queries is answered by the lapsed
    /// writers (ShardHost.reader).
    func testQueriesAndWritesRideOutAFrozenEtcdAndObjectStore() async throws {
        var etcd = try freeze("etcd", seconds: 8)
        etcd.queryAgainAfter = 6
        try await rideOut([etcd, try freeze("weed", seconds: 3)], collection: "f")
    }

    func testQueriesAndWritesRideOutARestartedEtcdAndAStoppedObjectStore() async throws {
        try await rideOut([try restart("etcd", down: 2), try restart("weed", down: 3)], collection: "r")
    }

    /// Three nodes, a 2-shard collection of 1,000 points, then each outage in turn under a query to
    /// every node and a write; after each, a write through every node until it is acknowledged.
    func rideOut(_ outages: [Outage], collection c: String) async throws {
        let env = try RemoteTestEnvironment.current()
        let cluster = ServeTestCluster(env: env, name: "serve-fault-\(c)", scratch: tmp)
        addTeardownBlock { cluster.stopAll() }
        for n in ["0", "1", "2"] { try cluster.start(c + n, extra: ["--compact-interval", "0"]) }
        _ = try await cluster.result(cluster.nodes[0], .PUT, "/collections/\(c)", body: ["vectors": ["size": 8, "distance": "Cosine"], "shard_number": 2])
        // Points written after the first 1,000 never pass the query's filter, so its answer stays
        // the same whichever of them a node has seen.
        func points(_ ids: Range<Int>) -> [[String: Any]] {
            ids.map { id in
                var rng = SplitMix64(seed: UInt64(id) + 5)
                return ["id": id, "vector": (0..<8).map { _ in Double(rng.gaussianish()) }, "payload": ["even": id < 1_000 && id % 2 == 0]]
            }
        }
        var acknowledged = Set(0..<1_000)
        var attempted = acknowledged
        _ = try await cluster.result(cluster.nodes[1], .PUT, "/collections/\(c)/points?wait=true", body: ["points": points(0..<1_000)])
        let query: [String: Any] = ["query": [1, 2, 3, 4, 5, 6, 7, 8], "limit": 10, "params": ["exact": true],
                                    "filter": ["must": [["key": "even", "match": ["value": true]]]]]
        let baseline = try await cluster.result(cluster.nodes[2], .POST, "/collections/\(c)/points/query", body: query)
        let want = ((baseline as? [String: Any])?["points"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
        XCTAssertEqual(want.count, 10)
        func ids(_ json: Any?) -> [Int] {
            (((json as? [String: Any])?["result"] as? [String: Any])?["points"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
        }

        var next = 1_000
        for outage in outages {
            try outage.begin()
            let batch = next..<(next + 10)
            next += 10
            attempted.formUnion(batch)
            nonisolated(unsafe) let body: Any = ["points": points(batch)]
            let writer = cluster.nodes[0]
            let write = Task { () async throws -> (Int, String) in
                let r = try await cluster.request(writer, .PUT, "/collections/\(c)/points?wait=true", body: body, timeout: 120)
                return (r.status, r.text)
            }
            let began = Date()
            for round in [nil] + (outage.queryAgainAfter.map { [$0] } ?? []) {
                if let round { try await Task.sleep(nanoseconds: UInt64(max(0, round - Date().timeIntervalSince(began)) * 1e9)) }
                for node in cluster.nodes {
                    let r = try await cluster.request(node, .POST, "/collections/\(c)/points/query", body: query, timeout: 60)
                    XCTAssertEqual(r.status, 200, "\(outage.name), \(node.id), after \(round ?? 0) s: \(r.text.prefix(300))")
                    if r.status != 200 {
                        for n in cluster.nodes { print("---- \(n.id) log, last lines:\n" + n.log.split(separator: "\n").suffix(15).joined(separator: "\n")) }
                    }
                    XCTAssertEqual(ids(r.json), want, "\(outage.name), \(node.id), after \(round ?? 0) s")
                }
            }
            try await outage.end()
            let (status, text) = try await write.value
            if status == 200 { acknowledged.formUnion(batch) } else { XCTAssertGreaterThanOrEqual(status, 500, "\(outage.name): \(text.prefix(300))") }

            for node in cluster.nodes {
                let batch = next..<(next + 10)
                next += 10
                attempted.formUnion(batch)
                let deadline = Date().addingTimeInterval(60)
                while true {
                    let r = try await cluster.request(node, .PUT, "/collections/\(c)/points?wait=true", body: ["points": points(batch)], timeout: 60)
                    if r.status == 200 { acknowledged.formUnion(batch); break }
                    XCTAssertGreaterThanOrEqual(r.status, 500, "\(r.status) \(r.text.prefix(300))")
                    guard Date() < deadline else { XCTFail("after \(outage.name), \(node.id) refused writes for 60 s: \(r.status) \(r.text.prefix(300))"); break }
                    try await Task.sleep(nanoseconds: 500_000_000)
                }
            }
        }
        for node in cluster.nodes {
            let found = try await cluster.scrollAll(node, c, pageSize: 500)
            XCTAssertEqual(found.count, Set(found).count, "\(node.id): an id returned twice")
            XCTAssertTrue(acknowledged.isSubset(of: Set(found)), "\(node.id) lost acknowledged points: \(acknowledged.subtracting(found).sorted().prefix(20))")
            XCTAssertTrue(Set(found).isSubset(of: attempted), "\(node.id) holds points never written: \(Set(found).subtracting(attempted).sorted().prefix(20))")
            let r = try await cluster.request(node, .POST, "/collections/\(c)/points/query", body: query, timeout: 60)
            XCTAssertEqual(r.status, 200, "\(node.id) after the outages: \(r.text.prefix(300))")
            XCTAssertEqual(ids(r.json), want, "\(node.id) after the outages")
        }
    }
}
