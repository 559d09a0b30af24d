// The real qdrant-client 1.20.0 (PyPI, REST) against two `strata serve` nodes with an API key:
// Tests/StrataTests/Server/qdrant_client_check.py runs every call the issue names and compares
// the answers with an exact search of its own. tools/test.sh installs the client into a venv and
// exports STRATA_TEST_QDRANT_PYTHON.
import Foundation
import XCTest

final class ServeQdrantClientTests: StrataTestCase {
    func testQdrantClientAgainstTwoNodes() throws {
        try runQdrantClientCheck("qdrant_client_check.py", cluster: "serve-client", nodes: ("c0", "c1"))
    }
}
