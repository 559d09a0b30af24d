// The S3 client in front of a store that misbehaves on purpose (ScriptedHTTPServer): which answers
// are retried and how often, which are reported at once, and that short, long, late or garbled
// answers become typed errors instead of crashes, hangs or large allocations.
import XCTest
@testable import StrataFormat
@testable import StrataRemote

final class S3FaultTests: XCTestCase {
    var servers: [ScriptedHTTPServer] = []
    var clients: [S3Client] = []

    override func tearDown() async throws {
        for client in clients { try? await client.shutdown() }
        for server in servers { server.stop() }
        clients = []
        servers = []
        try await super.tearDown()
    }

    /// A client of a scripted server: tiny backoff, a short timeout.
    func client(retries: Int = 2, timeout: Double = 5, _ handler: @escaping @Sendable (Int, String) -> ScriptedHTTPServer.Reply) throws -> (S3Client, ScriptedHTTPServer) {
        let server = try ScriptedHTTPServer(handler)
        servers.append(server)
        let configuration = try S3Configuration(endpoint: "http://127.0.0.1:\(server.port)", bucket: "strata", accessKey: "ak",
                                                secretKey: "sk", requestTimeoutSeconds: timeout, retries: retries,
                                                initialBackoffSeconds: 0.001)
        let client = S3Client(configuration: configuration)
        clients.append(client)
        return (client, server)
    }

    func expectError<T>(_ code: StrataError.Code, _ body: () async throws -> T, _ contains: [String] = [],
                        file: StaticString = #filePath, line: UInt = #line) async {
        do {
            let value = try await body()
            XCTFail("expected \(code), got \(value)", file: file, line: line)
        } catch let error as StrataError {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            for text in contains { XCTAssertTrue(error.description.contains(text), "'\(text)' not in: \(error)", file: file, line: line) }
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
        }
    }

    func testServerErrorsAreRetriedUntilTheyStop() async throws {
        let (client, server) = try client { index, _ in
            index < 2 ? ScriptedHTTPServer.s3Error(500, code: "InternalError")
                      : ScriptedHTTPServer.response(200, headers: [("ETag", "\"e\"")], body: Array("hello".utf8))
        }
        let bytes = try await client.get("k")
        XCTAssertEqual(bytes, Array("hello".utf8))
        XCTAssertEqual(server.requests.count, 3)
        // Every attempt is signed afresh and names the object path-style.
        XCTAssertTrue(server.requests.allSatisfy { $0.hasPrefix("GET /strata/k HTTP/1.1") && $0.contains("AWS4-HMAC-SHA256 Credential=ak/") })
    }

    func testSlowDownIsRetriedThenReported() async throws {
        let (client, server) = try client(retries: 3) { _, _ in ScriptedHTTPServer.s3Error(503, code: "SlowDown") }
        await expectError(.io, { try await client.put("k", body: [1, 2, 3], condition: .none) },
                          ["503", "SlowDown", "4 attempts", "s3://strata/k"])
        XCTAssertEqual(server.requests.count, 4)
        let (limited, limitedServer) = try self.client(retries: 1) { _, _ in ScriptedHTTPServer.response(429) }
        await expectError(.io, { try await limited.delete("k") }, ["429"])
        XCTAssertEqual(limitedServer.requests.count, 2)
    }

    func testClientErrorsAreNotRetried() async throws {
        let (client, server) = try client { _, _ in ScriptedHTTPServer.s3Error(400, code: "InvalidRequest") }
        await expectError(.io, { try await client.get("k") }, ["400", "InvalidRequest"])
        XCTAssertEqual(server.requests.count, 1)
    }

    func testBadCredentialsSayWhatToCheck() async throws {
        let (client, server) = try client { _, _ in ScriptedHTTPServer.s3Error(403, code: "SignatureDoesNotMatch") }
        await expectError(.io, { try await client.get("k") }, ["403", "SignatureDoesNotMatch", "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"])
        XCTAssertEqual(server.requests.count, 1)
        // A HEAD has no body to name the reason; the hint is still there.
        await expectError(.io, { try await client.head("k") }, ["403", "AWS_ACCESS_KEY_ID"])
    }

    func testAFailedConditionIsAlreadyExists() async throws {
        let (client, server) = try client { _, _ in ScriptedHTTPServer.s3Error(412, code: "PreconditionFailed") }
        await expectError(.alreadyExists, { try await client.put("k", body: [1], condition: .ifAbsent) }, ["412"])
        XCTAssertEqual(server.requests.count, 1)
        XCTAssertTrue(server.requests[0].lowercased().contains("if-none-match: *"))
        await expectError(.alreadyExists, { try await client.put("k", body: [1], condition: .ifMatch("abc")) })
        XCTAssertTrue(server.requests[1].lowercased().contains("if-match: \"abc\""))
    }

    func testAConditionalPutRetriedAfterItLandedIsAlreadyExists() async throws {
        // The first attempt lands but its answer is lost (500); the retry meets its own object.
        let (client, server) = try client { index, _ in
            index == 0 ? ScriptedHTTPServer.s3Error(500, code: "InternalError") : ScriptedHTTPServer.s3Error(412, code: "PreconditionFailed")
        }
        await expectError(.alreadyExists, { try await client.put("k", body: [1], condition: .ifAbsent) }, ["earlier attempt may have landed"])
        XCTAssertEqual(server.requests.count, 2)
    }

    func testMissingObjects() async throws {
        let (client, _) = try client { _, head in
            head.hasPrefix("HEAD") ? ScriptedHTTPServer.response(404) : ScriptedHTTPServer.s3Error(404, code: "NoSuchKey")
        }
        let info = try await client.head("k")
        XCTAssertNil(info)
        await expectError(.notFound, { try await client.get("k") }, ["NoSuchKey", "s3://strata/k"])
        await expectError(.notFound, { try await client.download("k", toFile: NSTemporaryDirectory() + "/s3-missing-\(UUID())") })
    }

    func testShortBodiesAreCorrupt() async throws {
        // 206 announcing fewer bytes than the range asked for.
        let (short, _) = try client { _, _ in
            ScriptedHTTPServer.response(206, headers: [("Content-Range", "bytes 0-9/10")], body: Array(repeating: 7, count: 10))
        }
        await expectError(.corrupt, { try await short.get("k", range: 0..<20) }, ["shorter than the range"])
        // A Content-Length the body does not keep: retried, then reported as a short body.
        let (cut, cutServer) = try client(retries: 1) { _, _ in
            ScriptedHTTPServer.response(200, body: Array(repeating: 7, count: 10), contentLength: 100)
        }
        await expectError(.corrupt, { try await cut.get("k") }, ["short body", "10 of 100"])
        XCTAssertEqual(cutServer.requests.count, 2)
        // A whole object where a range was asked.
        let (whole, _) = try client { _, _ in ScriptedHTTPServer.response(200, body: Array(repeating: 7, count: 50)) }
        await expectError(.corrupt, { try await whole.get("k", range: 10..<20) }, ["whole object"])
        // A Content-Length that does not match the range.
        let (long, _) = try client { _, _ in ScriptedHTTPServer.response(206, body: Array(repeating: 7, count: 30)) }
        await expectError(.corrupt, { try await long.get("k", range: 10..<20) }, ["30 bytes for a range of 10"])
    }

    func testAHugeAnnouncedLengthIsNotAllocated() async throws {
        let (client, _) = try client { _, _ in ScriptedHTTPServer.response(200, body: [], contentLength: 1 << 50) }
        await expectError(.invalidArgument, { try await client.get("k") }, ["download"])
    }

    func testGarbledListingsAreCorrupt() async throws {
        let (bad, _) = try client { _, _ in ScriptedHTTPServer.response(200, body: Array("<ListBucketResult><Contents>".utf8)) }
        await expectError(.corrupt, { try await bad.list(prefix: "p/") }, ["XML"])
        let (html, _) = try client { _, _ in ScriptedHTTPServer.response(200, body: Array("<html><body>proxy</body></html>".utf8)) }
        await expectError(.corrupt, { try await html.list(prefix: "p/") }, ["<html>"])
        // A store that keeps handing back the same continuation token.
        let loop = "<ListBucketResult><Contents><Key>p/a</Key><Size>1</Size></Contents><IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken></ListBucketResult>"
        let (looping, server) = try client { _, _ in ScriptedHTTPServer.response(200, body: Array(loop.utf8)) }
        await expectError(.corrupt, { try await looping.list(prefix: "p/") }, ["repeated a continuation token"])
        XCTAssertEqual(server.requests.count, 2)
        // Keys outside the prefix.
        let outside = "<ListBucketResult><Contents><Key>q/a</Key><Size>1</Size></Contents></ListBucketResult>"
        let (stray, _) = try client { _, _ in ScriptedHTTPServer.response(200, body: Array(outside.utf8)) }
        await expectError(.corrupt, { try await stray.list(prefix: "p/") }, ["outside the prefix"])
    }

    func testAnErrorInsideA200CompletionIsReported() async throws {
        let (client, server) = try client(retries: 0) { _, head in
            if head.hasPrefix("POST") && head.contains("uploads=") {
                return ScriptedHTTPServer.response(200, body: Array("<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>".utf8))
            }
            if head.hasPrefix("PUT") { return ScriptedHTTPServer.response(200, headers: [("ETag", "\"p\"")]) }
            if head.hasPrefix("POST") {
                return ScriptedHTTPServer.response(200, body: Array("<Error><Code>InvalidPart</Code><Message>gone</Message></Error>".utf8))
            }
            return ScriptedHTTPServer.response(204)  // the abort
        }
        let path = NSTemporaryDirectory() + "/s3-fault-\(UUID()).bin"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(count: (8 << 20) + 1)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        await expectError(.io, { try await client.upload("big", fromFile: path, condition: .none) }, ["InvalidPart"])
        // Two parts went up, and the failed upload was aborted.
        XCTAssertEqual(server.requests.filter { $0.hasPrefix("PUT /strata/big?partNumber=") }.count, 2)
        XCTAssertTrue(server.requests.last?.hasPrefix("DELETE /strata/big?uploadId=u1 ") ?? false, "\(server.requests.last ?? "")")
    }

    func testSilenceTimesOut() async throws {
        let (client, server) = try client(retries: 1, timeout: 1) { _, _ in .silence(seconds: 5) }
        await expectError(.io, { try await client.get("k") }, ["2 attempts"])
        XCTAssertEqual(server.requests.count, 2)
    }

    func testAStoppedStoreIsAnIOError() async throws {
        // A port that was just free: nothing listens there.
        let server = try ScriptedHTTPServer { _, _ in .silence(seconds: 0) }
        let port = server.port
        server.stop()
        let configuration = try S3Configuration(endpoint: "http://127.0.0.1:\(port)", bucket: "strata", accessKey: "ak", secretKey: "sk",
                                                requestTimeoutSeconds: 2, retries: 2, initialBackoffSeconds: 0.01)
        let client = S3Client(configuration: configuration)
        clients.append(client)
        await expectError(.io, { try await client.put("k", body: [1], condition: .ifAbsent) }, ["3 attempts", "s3://strata/k"])
        await expectError(.io, { try await client.list(prefix: "") })
    }
}
