// The real qdrant-client 1.20.0 (PyPI, REST) against two `strata serve` nodes with an API key:
// Tests/StrataTests/Server/qdrant_client_check.py runs every call the issue names and compares
// the answers with an exact search of its own. tools/test.sh installs the client into a venv and
// exports STRATA_TEST_QDRANT_PYTHON.
import Foundation
import XCTest

final class ServeQdrantClientTests: StrataTestCase {
    func testQdrantClientAgainstTwoNodes() throws {
        let python = try qdrantClientPython()
        let env = try RemoteTestEnvironment.current()
        let cluster = ServeTestCluster(env: env, name: "serve-client", scratch: tmp, apiKey: "test-key-\(UInt32.random(in: 0...UInt32.max))")
        addTeardownBlock { cluster.stopAll() }
        try cluster.start("c0", extra: ["--compact-interval", "0", "--flush-rows", "1000"])
        try cluster.start("c1", extra: ["--compact-interval", "0", "--flush-rows", "1000"])
        let (status, text) = try runPython(python, [repoRoot.appendingPathComponent("Tests/StrataTests/Server/qdrant_client_check.py").path, cluster.nodes[1].url, cluster.apiKey!])
        XCTAssertEqual(status, 0, "qdrant_client_check.py: \(text.suffix(3000))\nnode c1: \(cluster.nodes[1].log.suffix(2000))")
        XCTAssertTrue(text.contains("\"ok\": true"), text.suffix(2000).description)
    }
}
