// A bounded load from a second process (tools/serve/load.py: qdrant-client in several threads)
// on two `strata serve` nodes that flush and compact while it runs: no request fails, every
// acknowledged point is there exactly once, and a compaction commits during the load (or, when
// slow, just after it; then every point is checked again).
import Foundation
import XCTest

final class ServeLoadTests: StrataTestCase {
    func testLoadWithConcurrentCompactionLosesNothing() async throws {
        let python = try qdrantClientPython()
        let env = try RemoteTestEnvironment.current()
        let cluster = ServeTestCluster(env: env, name: "serve-load", scratch: tmp)
        addTeardownBlock { cluster.stopAll() }
        let flags = ["--compact-interval", "1", "--flush-rows", "400"]
        try cluster.start("l0", extra: flags)
        try cluster.start("l1", extra: flags)
        let (status, text) = try runPython(python, [repoRoot.appendingPathComponent("tools/serve/load.py").path, "--url", cluster.nodes.map(\.url).joined(separator: ","),
                       "--seconds", "10", "--readers", "3", "--writers", "2", "--json"])
        XCTAssertEqual(status, 0, "load.py: \(text.suffix(3000))\n\(cluster.nodes[0].log.suffix(1500))")
        let report = try XCTUnwrap(text.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any], text)
        XCTAssertEqual(report["lost"] as? Int, 0)
        XCTAssertGreaterThan(report["acknowledged_points"] as? Int ?? 0, 400, "enough writes to flush")
        print("serve-load: \(text.split(separator: "\n").last ?? "")")
        // A compaction that started during the load may commit after it (slow under sanitizers): wait
        // for one, then check again that every acknowledged point is there exactly once.
        var compactions = 0.0
        let deadline = Date().addingTimeInterval(180)
        while compactions == 0, Date() < deadline {
            compactions = 0
            for node in cluster.nodes {
                let metrics = try await cluster.request(node, .GET, "/metrics")
                for line in metrics.text.split(separator: "\n") where line.hasPrefix("strata_compactions_total ") {
                    compactions += Double(line.split(separator: " ").last ?? "0") ?? 0
                }
            }
            if compactions == 0 { try await Task.sleep(nanoseconds: 500_000_000) }
        }
        XCTAssertGreaterThan(compactions, 0, "no compaction committed during or after the load")
        let (recheckStatus, recheckText) = try runPython(python, [repoRoot.appendingPathComponent("tools/serve/load.py").path, "--url", cluster.nodes.map(\.url).joined(separator: ","),
                                             "--seconds", "0", "--readers", "0", "--writers", "0", "--json"])
        XCTAssertEqual(recheckStatus, 0, "load.py recheck: \(recheckText.suffix(3000))")
        let recheck = try XCTUnwrap(recheckText.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any], recheckText)
        XCTAssertEqual(recheck["points_found"] as? Int, report["acknowledged_points"] as? Int, "after compaction every acknowledged point is there")
        XCTAssertEqual(recheck["duplicates"] as? Int, 0)
    }
}
