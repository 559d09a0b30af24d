// Sparse vectors and dense+sparse hybrid search through the real qdrant-client 1.20.0 (PyPI,
// REST) against two `strata serve` nodes: Tests/StrataTests/Server/qdrant_hybrid_check.py creates
// collections with an unnamed or a named dense vector plus a sparse one, upserts, and compares
// dense, sparse, RRF-fused and NamedSparseVector searches with an exact search of its own.
// tools/test.sh installs the client into a venv and exports STRATA_TEST_QDRANT_PYTHON.
import Foundation
import XCTest

final class ServeHybridTests: StrataTestCase {
    func testSparseAndHybridSearchWithQdrantClient() throws {
        let python = try qdrantClientPython()
        let env = try RemoteTestEnvironment.current()
        let cluster = ServeTestCluster(env: env, name: "serve-hybrid", scratch: tmp, apiKey: "test-key-\(UInt32.random(in: 0...UInt32.max))")
        addTeardownBlock { cluster.stopAll() }
        try cluster.start("h0", extra: ["--compact-interval", "0", "--flush-rows", "1000"])
        try cluster.start("h1", extra: ["--compact-interval", "0", "--flush-rows", "1000"])
        let script = repoRoot.appendingPathComponent("Tests/StrataTests/Server/qdrant_hybrid_check.py").path
        let (status, text) = try runPython(python, [script, cluster.nodes[1].url, cluster.apiKey!])
        XCTAssertEqual(status, 0, "qdrant_hybrid_check.py: \(text.suffix(3000))\nnode h1: \(cluster.nodes[1].log.suffix(2000))")
        XCTAssertTrue(text.contains("\"ok\": true"), text.suffix(2000).description)
    }
}
