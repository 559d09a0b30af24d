// Sparse vectors and dense+sparse hybrid search through the real qdrant-client 1.20.0 (PyPI,
// REST) against two `strata serve` nodes: Tests/StrataTests/Server/qdrant_hybrid_check.py creates
// collections with an unnamed or a named dense vector plus a sparse one, upserts, and compares
// dense, sparse, RRF-fused and NamedSparseVector searches with an exact search of its own.
// tools/test.sh installs the client into a venv and exports STRATA_TEST_QDRANT_PYTHON.
import Foundation
import XCTest

final class ServeHybridTests: StrataTestCase {
    func testSparseAndHybridSearchWithQdrantClient() throws {
        try runQdrantClientCheck("qdrant_hybrid_check.py", cluster: "serve-hybrid", nodes: ("h0", "h1"))
    }
}
