// Several real `strata serve` processes over the test run's SeaweedFS and etcd: a sharded
// collection written and read through different nodes agrees with an exact search of the same
// points; a node killed while it owns a shard's writer loses no acknowledged write and its shard
// is written again through another node within a few lease TTLs; queries keep being answered
// while a node is down.
import AsyncHTTPClient
import Foundation
import NIOHTTP1
import StrataFormat
import StrataTestSupport
import XCTest

final class ServeClusterTests: StrataTestCase {
    static let dim = 16
    static let cities = ["paris", "lyon", "nice", "lille", "brest"]

    func vector(_ id: Int) -> [Float] {
        var rng = SplitMix64(seed: UInt64(id) &* 7919 &+ 17)
        return (0..<Self.dim).map { _ in rng.gaussianish() }
    }

    func payload(_ id: Int) -> [String: Any] {
        var p: [String: Any] = ["city": Self.cities[id % Self.cities.count], "n": id]
        // The first value is fractional (0.5): a float column, which later integral values widen into.
        if id % 3 == 0 { p["price"] = Double(id) / 4 + 0.5 }
        if id % 4 == 0 { p["tags"] = ["t\(id % 7)", "all"] }
        return p
    }

    func points(_ ids: Range<Int>) -> [[String: Any]] {
        ids.map { ["id": $0, "vector": vector($0).map { Double($0) }, "payload": payload($0)] }
    }

    /// Cosine top-k of `ids` to `q` (Double), as (id, similarity).
    func exact(_ q: [Float], among ids: [Int], k: Int) -> [(Int, Double)] {
        func unit(_ v: [Float]) -> [Double] {
            let n = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            return v.map { Double($0) / n }
        }
        let uq = unit(q)
        var all = ids.map { id -> (Int, Double) in (id, zip(uq, unit(vector(id))).reduce(0.0) { $0 + $1.0 * $1.1 }) }
        all.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        return Array(all.prefix(k))
    }

    /// Why `got` is not `want` up to swaps of near-equal similarities, or nil.
    func mismatch(_ got: [Int], _ want: [(Int, Double)], all: [Int: Double]) -> String? {
        guard got.count == want.count else { return "\(got.count) results, want \(want.count): \(got) vs \(want.map(\.0))" }
        for (i, (id, w)) in zip(got, want).enumerated() where id != w.0 {
            guard let s = all[id], abs(s - w.1) < 1e-5 else { return "position \(i): \(id), want \(w.0): \(got) vs \(want.map(\.0))" }
        }
        return nil
    }

    func ids(_ result: Any) -> [Int] {
        let list = (result as? [String: Any])?["points"] as? [[String: Any]] ?? (result as? [[String: Any]]) ?? []
        return list.compactMap { $0["id"] as? Int }
    }

    func makeCluster(_ name: String, nodes: [String], extra: [String] = []) throws -> ServeTestCluster {
        let env = try RemoteTestEnvironment.current()
        let cluster = ServeTestCluster(env: env, name: name, scratch: tmp)
        addTeardownBlock { cluster.stopAll() }
        for n in nodes { try cluster.start(n, extra: extra) }
        return cluster
    }

    func testThreeNodesAnswerLikeAnExactSearchOfTheSamePoints() async throws {
        let cluster = try makeCluster("serve-agree", nodes: ["n0", "n1", "n2"], extra: ["--flush-rows", "6000", "--compact-interval", "0"])
        let (n0, n1, n2) = (cluster.nodes[0], cluster.nodes[1], cluster.nodes[2])
        _ = try await cluster.result(n0, .PUT, "/collections/pts", body: ["vectors": ["size": Self.dim, "distance": "Cosine"], "shard_number": 2])
        let total = 20_000
        for (b, start) in stride(from: 0, to: total, by: 2_000).enumerated() {
            let node = cluster.nodes[b % 3]
            _ = try await cluster.result(node, .PUT, "/collections/pts/points?wait=true", body: ["points": points(start..<(start + 2_000))])
        }
        _ = try await cluster.result(n1, .PUT, "/collections/pts/index?wait=true", body: ["field_name": "city", "field_schema": "keyword"])
        for node in cluster.nodes {
            let count = try await cluster.result(node, .POST, "/collections/pts/points/count", body: ["exact": true])
            XCTAssertEqual((count as? [String: Any])?["count"] as? Int, total, node.id)
        }
        let info = try await cluster.result(n2, .GET, "/collections/pts") as? [String: Any]
        XCTAssertEqual(info?["points_count"] as? Int, total)

        let everyone = Array(0..<total)
        let paris = everyone.filter { $0 % Self.cities.count == 0 }
        let cheap = everyone.filter { $0 % 3 == 0 && Double($0) / 4 + 0.5 < 1_000 }
        var rng = SplitMix64(seed: 99)
        for qn in 0..<12 {
            let q = (0..<Self.dim).map { _ in rng.gaussianish() }
            let cases: [(String, [String: Any]?, [Int])] = [
                ("none", nil, everyone),
                ("city", ["must": [["key": "city", "match": ["value": "paris"]]]], paris),
                ("price", ["must": [["key": "price", "range": ["lt": 1_000]]]], cheap),
            ]
            for (label, filter, pool) in cases {
                let want = exact(q, among: pool, k: 10)
                let sims = Dictionary(uniqueKeysWithValues: exact(q, among: pool, k: pool.count))
                var body: [String: Any] = ["query": q.map { Double($0) }, "limit": 10, "params": ["exact": true]]
                if let filter { body["filter"] = filter }
                for node in [n0, n1, n2] {
                    let r = try await cluster.request(node, .POST, "/collections/pts/points/query", body: body)
                    XCTAssertEqual(r.status, 200, r.text)
                    let got = ids((r.json as? [String: Any])?["result"] as Any)
                    if let m = mismatch(got, want, all: sims) { XCTFail("query \(qn) filter \(label) on \(node.id): \(m)") }
                    let shards = r.headers.first(name: "strata-shards") ?? ""
                    XCTAssertTrue(shards.hasPrefix("0:") && shards.contains(",1:"), "strata-shards: \(shards)")
                }
            }
        }
        // Retrieve with payload, scroll everything once, delete by ids and by filter.
        let got = try await cluster.result(n1, .POST, "/collections/pts/points", body: ["ids": [3, 4, 19_999, 77_777], "with_payload": true])
        let records = got as? [[String: Any]] ?? []
        XCTAssertEqual(records.compactMap { $0["id"] as? Int }, [3, 4, 19_999])
        let p3 = records.first?["payload"] as? [String: Any]
        XCTAssertEqual(p3?["city"] as? String, Self.cities[3])
        XCTAssertEqual(p3?["price"] as? Double, 1.25)
        XCTAssertNil(p3?["tags"], "absent keys stay absent")
        XCTAssertEqual((records.dropFirst().first?["payload"] as? [String: Any])?["tags"] as? [String], ["t4", "all"])
        let seen = try await cluster.scrollAll(n2, "pts", pageSize: 1_500)
        XCTAssertEqual(seen, everyone, "scroll returns every point once, in id order")
        _ = try await cluster.result(n0, .POST, "/collections/pts/points/delete?wait=true", body: ["points": [0, 1, 2]])
        _ = try await cluster.result(n2, .POST, "/collections/pts/points/delete?wait=true",
                                     body: ["filter": ["must": [["key": "city", "match": ["value": "brest"]]]]])
        let left = try await cluster.result(n1, .POST, "/collections/pts/points/count", body: ["exact": true]) as? [String: Any]
        let brest = everyone.filter { $0 % Self.cities.count == 4 }.count
        XCTAssertEqual(left?["count"] as? Int, total - brest - 3)
    }

    func testKillingAShardOwnerLosesNoAcknowledgedWrite() async throws {
        let cluster = try makeCluster("serve-kill", nodes: ["k0", "k1", "k2"], extra: ["--compact-interval", "0"])
        _ = try await cluster.result(cluster.nodes[0], .PUT, "/collections/w",
                                     body: ["vectors": ["size": Self.dim, "distance": "Euclid"], "shard_number": 2])
        _ = try await cluster.result(cluster.nodes[0], .PUT, "/collections/w/points?wait=true", body: ["points": points(0..<100)])
        let probe = try await cluster.request(cluster.nodes[0], .POST, "/collections/w/points/count", body: [:])
        let owners = (probe.headers.first(name: "strata-shards") ?? "").split(separator: ",").map { String($0.split(separator: ":")[1].split(separator: "@")[0]) }
        let victimID = try XCTUnwrap(owners.first, "strata-shards names shard 0's node")
        let victim = try XCTUnwrap(cluster.nodes.first { $0.id == victimID })
        let writer = try XCTUnwrap(cluster.nodes.first { $0.id != victimID })
        var acknowledged = Set(0..<100)
        var next = 100
        var killedAt: Date? = nil
        var resumedAfter: Double? = nil
        let start = Date()
        while Date().timeIntervalSince(start) < 40 {
            let batch = next..<(next + 20)
            let r = try await cluster.request(writer, .PUT, "/collections/w/points?wait=true", body: ["points": points(batch)], timeout: 90)
            if r.status == 200 {
                acknowledged.formUnion(batch)
                next += 20
                if let k = killedAt, resumedAfter == nil, batch.contains(where: { ShardHash.shard(of: UInt64($0), shards: 2) == 0 }) {
                    resumedAfter = Date().timeIntervalSince(k)
                }
            } else {
                XCTAssertEqual(r.status, 503, r.text)
            }
            if killedAt == nil, next >= 600 {
                victim.kill()
                killedAt = Date()
            }
            if resumedAfter != nil, next >= 1_400 { break }
        }
        let takeover = try XCTUnwrap(resumedAfter, "writes to the dead owner's shard never resumed: \(writer.log.suffix(2000))")
        XCTAssertLessThan(takeover, 30, "takeover took \(takeover) s")
        print("serve-kill: writes to the killed owner's shard resumed after \(String(format: "%.2f", takeover)) s (lease 4 s)")
        let seen = try await cluster.scrollAll(writer, "w", pageSize: 500)
        XCTAssertEqual(seen.count, Set(seen).count, "every point once")
        XCTAssertTrue(acknowledged.isSubset(of: Set(seen)), "lost: \(acknowledged.subtracting(seen).sorted().prefix(20))")
    }

    func testQueriesKeepBeingAnsweredWhileANodeIsDown() async throws {
        let cluster = try makeCluster("serve-down", nodes: ["d0", "d1", "d2"], extra: ["--compact-interval", "0"])
        _ = try await cluster.result(cluster.nodes[0], .PUT, "/collections/r",
                                     body: ["vectors": ["size": Self.dim, "distance": "Dot"], "shard_number": 3])
        _ = try await cluster.result(cluster.nodes[1], .PUT, "/collections/r/points?wait=true", body: ["points": points(0..<3_000)])
        let q = vector(123_456).map { Double($0) }
        let body: [String: Any] = ["query": q, "limit": 15, "params": ["exact": true]]
        let before = ids(try await cluster.result(cluster.nodes[0], .POST, "/collections/r/points/query", body: body))
        XCTAssertEqual(before.count, 15)
        cluster.nodes[2].kill()
        for round in 0..<10 {
            for node in cluster.nodes.prefix(2) {
                let r = try await cluster.request(node, .POST, "/collections/r/points/query", body: body)
                XCTAssertEqual(r.status, 200, "round \(round) on \(node.id): \(r.text.prefix(300))")
                XCTAssertEqual(ids((r.json as? [String: Any])?["result"] as Any), before, "round \(round) on \(node.id)")
            }
            usleep(300_000)
        }
    }
}

/// The shard of an id, as docs/SERVE.md defines it (XXH3-64 of the id's little-endian bytes).
enum ShardHash {
    static func shard(of id: UInt64, shards: Int) -> Int {
        var le = id.littleEndian
        return Int(withUnsafeBytes(of: &le) { Checksum.xxh3($0) } % UInt64(shards))
    }
}
