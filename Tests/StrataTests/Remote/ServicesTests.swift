// The test services' wiring: the environment tools/test.sh exports reaches the tests, etcd answers
// healthy and SeaweedFS's S3 gateway answers HTTP and demands signatures. Plain URLSession, so a
// failure here points at the services, not at the project's S3 or etcd clients.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

final class ServicesTests: XCTestCase {
    /// One GET with a short timeout, no cache; the status code and the body.
    private func get(_ url: String) async throws -> (status: Int, body: Data) {
        var request = URLRequest(url: try XCTUnwrap(URL(string: url)))
        request.timeoutInterval = 10
        request.cachePolicy = .reloadIgnoringLocalCacheData
        let session = URLSession(configuration: .ephemeral)
        defer { session.finishTasksAndInvalidate() }
        let (body, response) = try await session.data(for: request)
        let http = try XCTUnwrap(response as? HTTPURLResponse, "\(url) answered something other than HTTP")
        return (http.statusCode, body)
    }

    func testEtcdHealthEndpointAnswersHealthy() async throws {
        let env = try RemoteTestEnvironment.current()
        let (status, body) = try await get(env.etcdEndpoint + "/health")
        XCTAssertEqual(status, 200)
        let health = try JSONSerialization.jsonObject(with: body) as? [String: Any]
        XCTAssertEqual(health?["health"] as? String, "true", String(decoding: body, as: UTF8.self))
    }

    /// An unsigned request is refused: the gateway runs with the generated identity only, so the
    /// signing tests against it really test signatures.
    func testS3GatewayAnswersAndRefusesUnsignedRequests() async throws {
        let env = try RemoteTestEnvironment.current()
        let (status, body) = try await get("\(env.s3Endpoint)/\(env.bucket)?list-type=2")
        XCTAssertEqual(status, 403, String(decoding: body, as: UTF8.self))
        XCTAssertTrue(String(decoding: body, as: UTF8.self).contains("AccessDenied"),
                      String(decoding: body, as: UTF8.self))
    }

    // MARK: - The helper itself (no services needed)

    func testCurrentReadsTheServicesEnvironment() throws {
        let env = try RemoteTestEnvironment.current([
            "STRATA_TEST_S3_ENDPOINT": "http://127.0.0.1:8333/", "STRATA_TEST_S3_BUCKET": "b",
            "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_REGION": "eu-west-1",
            "STRATA_TEST_ETCD": "http://127.0.0.1:2379",
        ])
        XCTAssertEqual(env, RemoteTestEnvironment(
            s3Endpoint: "http://127.0.0.1:8333", bucket: "b", accessKey: "AK", secretKey: "SK",
            region: "eu-west-1", etcdEndpoint: "http://127.0.0.1:2379"))

        let defaults = try RemoteTestEnvironment.current([
            "STRATA_TEST_S3_ENDPOINT": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "AK",
            "AWS_SECRET_ACCESS_KEY": "SK", "STRATA_TEST_ETCD": "http://127.0.0.1:2",
        ])
        XCTAssertEqual(defaults.bucket, "strata")
        XCTAssertEqual(defaults.region, "us-east-1")
    }

    func testCurrentSkipsWithoutServicesButFailsUnderCIOrWhenHalfConfigured() {
        XCTAssertThrowsError(try RemoteTestEnvironment.current([:])) { error in
            XCTAssertTrue(error is XCTSkip, "\(error)")
            XCTAssertTrue("\(error)".contains("tools/test.sh"), "\(error)")
        }
        XCTAssertThrowsError(try RemoteTestEnvironment.current(["CI": "true"])) { error in
            XCTAssertTrue(error is RemoteTestEnvironment.Misconfigured, "\(error)")
        }
        XCTAssertThrowsError(try RemoteTestEnvironment.current(["STRATA_TEST_S3_ENDPOINT": "http://127.0.0.1:1"])) { error in
            XCTAssertTrue(error is RemoteTestEnvironment.Misconfigured, "\(error)")
            XCTAssertTrue("\(error)".contains("STRATA_TEST_ETCD"), "\(error)")
        }
        XCTAssertThrowsError(try RemoteTestEnvironment.current([
            "STRATA_TEST_S3_ENDPOINT": "127.0.0.1:8333", "AWS_ACCESS_KEY_ID": "AK",
            "AWS_SECRET_ACCESS_KEY": "SK", "STRATA_TEST_ETCD": "http://127.0.0.1:2379",
        ])) { error in
            XCTAssertTrue(error is RemoteTestEnvironment.Misconfigured, "\(error)")
        }
    }

    func testUniquePrefixIsFreshAndKeySafe() {
        let env = RemoteTestEnvironment(s3Endpoint: "http://127.0.0.1:1", bucket: "b", accessKey: "a",
                                        secretKey: "s", region: "r", etcdEndpoint: "http://127.0.0.1:2")
        let a = env.uniquePrefix("-[ServicesTests testPut]"), b = env.uniquePrefix("-[ServicesTests testPut]")
        XCTAssertNotEqual(a, b)
        XCTAssertTrue(a.hasPrefix("ServicesTests-testPut-"), a)
        XCTAssertEqual(a.count, "ServicesTests-testPut-".count + 16, a)
        XCTAssertTrue(a.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }, a)
        XCTAssertEqual(env.uniquePrefix("").count, 16)
    }
}
