// The etcd client in front of a scripted gateway (ScriptedEtcdServer): hostile JSON (wrong types,
// huge numbers, bad base64, deep nesting), error bodies, proto3's left-out defaults, retries of
// reads but not writes, silence and stalls, oversized answers, watch streams cut anywhere, and a
// lease keeper whose keepalives keep failing. Also the pieces that need no server: the stream
// splitter, range ends, endpoint validation.
import Foundation
import XCTest
@testable import StrataFormat
@testable import StrataRemote

final class EtcdFaultTests: XCTestCase {
    private var servers: [ScriptedEtcdServer] = []
    private var clients: [EtcdClient] = []

    override func tearDown() async throws {
        for client in clients { await client.shutdown() }
        for server in servers { server.stop() }
        clients = []
        servers = []
    }

    /// A client on a server that answers every request with `reply(path)`.
    private func scripted(timeout: Duration = .seconds(2), maximumAnswerBytes: Int = 1 << 20,
                          _ reply: @escaping @Sendable (String) -> ScriptedEtcdServer.Reply) throws -> (EtcdClient, ScriptedEtcdServer) {
        let server = try ScriptedEtcdServer(reply)
        servers.append(server)
        let client = try EtcdClient(endpoint: server.endpoint, timeout: timeout, maximumAnswerBytes: maximumAnswerBytes)
        clients.append(client)
        return (client, server)
    }

    private let b64 = ScriptedEtcdServer.b64

    // MARK: Hostile JSON

    func testHostileRangeAnswersAreCorruptNamingTheKey() async throws {
        let key = "/c/head"
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let answers = [
            "not json",
            "[1, 2]",
            deep,
            #"{"kvs": [{"key": 123}]}"#,
            #"{"kvs": {"key": "L2MvaGVhZA=="}}"#,
            #"{"kvs": [{"key": "%%%not base64"}]}"#,
            #"{"kvs": [{"key": "L2MvaGVhZA==", "mod_revision": "99999999999999999999999"}]}"#,
            #"{"kvs": [{"key": "L2MvaGVhZA==", "mod_revision": 1e400}]}"#,
            #"{"kvs": [{"key": "L2MvaGVhZA==", "mod_revision": 2.5}]}"#,
            #"{"kvs": [{"key": "L2MvaGVhZA==", "version": true}]}"#,
            #"{"kvs": [{"key": "//4="}]}"#,                             // not UTF-8
            #"{"kvs": [{"value": "eA=="}]}"#,                           // no key
            #"{"kvs": [{"key": "L290aGVy"}]}"#,                         // another key
        ]
        for answer in answers {
            let (client, _) = try scripted { _ in .json(200, answer) }
            let error = await expectError(.corrupt, key, "answer \(answer.prefix(60))") { try await client.get(key) }
            XCTAssertEqual(error?.path, key)
        }
    }

    func testNumbersAndLeftOutDefaultsAreAccepted() async throws {
        let answer = """
        {"header": {"revision": 9}, "kvs": [{"key": "\(b64("/c/head"))", "create_revision": 3, "mod_revision": "9", "version": 2}]}
        """
        let (client, _) = try scripted { _ in .json(200, answer) }
        let value = try await client.get("/c/head")
        XCTAssertEqual(value, KeyValue(key: "/c/head", value: [], createRevision: 3, modRevision: 9, version: 2, lease: 0))
    }

    func testRangeOutsideThePrefixIsCorrupt() async throws {
        let answer = #"{"kvs": [{"key": "\#(b64("/c/b"))"}, {"key": "\#(b64("/c/a"))"}]}"#
        let (client, _) = try scripted { _ in .json(200, answer) }
        await expectError(.corrupt, "/c/", "keys out of order") { try await client.range(prefix: "/c/") }
        let outside = #"{"kvs": [{"key": "\#(b64("/d/a"))"}]}"#
        let (other, _) = try scripted { _ in .json(200, outside) }
        await expectError(.corrupt, "/c/", "a key outside the prefix") { try await other.range(prefix: "/c/") }
    }

    func testWritesWithoutARevisionAreCorrupt() async throws {
        for answer in [#"{}"#, #"{"header": {}}"#, #"{"header": {"revision": "-3"}}"#, #"{"header": {"revision": "x"}}"#] {
            let (client, _) = try scripted { _ in .json(200, answer) }
            await expectError(.corrupt, "/c/k", answer) { try await client.put("/c/k", value: [1], lease: 0) }
        }
    }

    // MARK: Error answers

    func testErrorBodiesAreIONamingTheKeyAndMessage() async throws {
        let body = #"{"error": "etcdserver: request is too large", "code": 3, "message": "etcdserver: request is too large"}"#
        let (client, _) = try scripted { _ in .json(400, body) }
        let error = await expectError(.io, "etcdserver: request is too large", "an error answer") {
            try await client.put("/c/big", value: [1], lease: 0)
        }
        XCTAssertEqual(error?.path, "/c/big")
        let (garbage, _) = try scripted { _ in .json(500, "<html>oops</html>") }
        await expectError(.io, "HTTP 500", "an error answer that is not etcd's") { try await garbage.delete("/c/k") }
    }

    func testUnknownLeaseIsNotFound() async throws {
        let body = #"{"error": "etcdserver: requested lease not found", "code": 5, "message": "etcdserver: requested lease not found"}"#
        let (client, _) = try scripted { _ in .json(404, body) }
        await expectError(.notFound, "lease not found", "put on a lost lease") { try await client.put("/c/w", value: [1], lease: 7) }
        await expectError(.notFound, "lease 7", "revoke") { try await client.revoke(lease: 7) }
    }

    func testKeepaliveOfAnExpiredLeaseIsNotFound() async throws {
        let answers = [
            #"{"result": {"header": {"revision": "3"}, "ID": "7"}}"#,
            #"{"result": {"header": {"revision": "3"}, "ID": "7", "TTL": "0"}}"#,
            #"{"error": {"grpc_code": 5, "http_code": 404, "message": "etcdserver: requested lease not found", "http_status": "Not Found"}}"#,
        ]
        for answer in answers {
            let (client, _) = try scripted { _ in .json(200, answer + "\n") }
            await expectError(.notFound, "lease 7", answer) { try await client.keepAlive(lease: 7) }
        }
        let (alive, _) = try scripted { _ in .json(200, #"{"result": {"header": {"revision": "3"}, "ID": "7", "TTL": "4"}}"#) }
        let ttl = try await alive.keepAlive(lease: 7)
        XCTAssertEqual(ttl, 4)
        let (unavailable, _) = try scripted { _ in .json(200, #"{"error": {"grpc_code": 14, "message": "etcdserver: no leader"}}"#) }
        await expectError(.io, "no leader", "a stream error") { try await unavailable.keepAlive(lease: 7) }
        let (broken, _) = try scripted { _ in .json(200, #"{"result": {"TTL": {"x": 1}}}"#) }
        await expectError(.corrupt, "lease 7", "a TTL that is an object") { try await broken.keepAlive(lease: 7) }
    }

    func testLeaseGrantAnswers() async throws {
        let (client, _) = try scripted { _ in .json(200, #"{"header": {"revision": "3"}, "ID": "694d7", "TTL": "5"}"#) }
        await expectError(.corrupt, "lease grant", "a hex id") { try await client.grantLease(ttlSeconds: 5) }
        let (refused, _) = try scripted { _ in .json(200, #"{"header": {"revision": "3"}, "error": "lease limit reached"}"#) }
        await expectError(.io, "lease limit reached", "a grant error") { try await refused.grantLease(ttlSeconds: 5) }
        await expectError(.invalidArgument, "TTL", "TTL 0") { try await refused.grantLease(ttlSeconds: 0) }
    }

    // MARK: Transactions

    func testFailedTxnLeavesSucceededOut() async throws {
        let answer = #"{"header": {"revision": "5"}, "responses": [{"response_range": {"header": {"revision": "5"}}}]}"#
        let (client, _) = try scripted { _ in .json(200, answer) }
        let result = try await client.txn(compare: [.modRevision("/c/head", equals: 4)],
                                          success: [.put("/c/head", [1], lease: 0)], failure: [.get("/c/head")])
        XCTAssertEqual(result, TxnResult(succeeded: false, revision: 5, reads: [nil]))
        // The answer does not match the branch: one result for two operations.
        await expectError(.corrupt, "/c/head", "a short txn answer") {
            try await client.txn(compare: [.modRevision("/c/head", equals: 4)], success: [],
                                 failure: [.get("/c/head"), .get("/c/other")])
        }
        // The branch's get has a put's result.
        let (mismatched, _) = try scripted { _ in .json(200, #"{"header": {"revision": "5"}, "succeeded": true, "responses": [{"response_put": {}}]}"#) }
        await expectError(.corrupt, "/c/head", "a put result for a get") {
            try await mismatched.txn(compare: [], success: [.get("/c/head")], failure: [])
        }
    }

    // MARK: Retries and deadlines

    func testReadsRetryOnDroppedConnectionsAndWritesDoNot() async throws {
        let ok = #"{"header": {"revision": "5"}}"#
        // The first two requests see the connection closed without an answer.
        let reads = CallCounter()
        let (flaky, flakyServer) = try scripted { _ in reads.add() <= 2 ? .raw([]) : .json(200, ok) }
        let value = try await flaky.get("/c/k")
        XCTAssertNil(value)
        XCTAssertEqual(flakyServer.requests.count, 3, "a read is tried three times")

        // Every connection drops: each write is sent once and fails.
        let (writer, writeServer) = try scripted { _ in .raw([]) }
        await expectError(.io, "unreachable", "a put whose connection dropped") { try await writer.put("/c/k", value: [1], lease: 0) }
        await expectError(.io, "unreachable", "a txn whose connection dropped") {
            try await writer.txn(compare: [], success: [.put("/c/k", [1], lease: 0)], failure: [])
        }
        XCTAssertEqual(writeServer.requests.count, 2, "writes are sent once each")
    }

    func testSilenceAndStalledBodiesFailWithinTheTimeout() async throws {
        let head = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"header\":"
        let replies: [ScriptedEtcdServer.Reply] = [
            .silence(seconds: 8),
            .parts([Array(head.utf8)], pause: 0, linger: 8, last: []),
        ]
        for reply in replies {
            let (client, _) = try scripted(timeout: .seconds(1)) { _ in reply }
            let started = ContinuousClock.now
            let error = await expectError(.io, "unreachable", "\(reply)") { try await client.get("/c/k") }
            XCTAssertTrue(error?.message.contains(client.endpoint) ?? false)
            XCTAssertLessThan(ContinuousClock.now - started, .seconds(3), "the retries share one deadline")
            await expectError(.io, "unreachable", "\(reply)") { try await client.put("/c/k", value: [], lease: 0) }
        }
    }

    func testOversizedAnswerIsCorrupt() async throws {
        let big = #"{"header": {"revision": "5"}, "pad": "\#(String(repeating: "x", count: 4096))"}"#
        let (client, _) = try scripted(maximumAnswerBytes: 1024) { _ in .json(200, big) }
        await expectError(.corrupt, "1024 bytes", "a big answer") { try await client.get("/c/k") }
    }

    // MARK: Watch streams

    private static func watchText(_ messages: [String]) -> String { messages.joined(separator: "\n") + "\n" }

    private static var created: String { #"{"result": {"header": {"revision": "4"}, "created": true}}"# }

    func testWatchParsesMessagesCutAnywhereAcrossChunks() async throws {
        let key = b64("/c/w/k")
        let text = Self.watchText([
            Self.created,
            #"{"result": {"header": {"revision": "5"}, "events": [{"kv": {"key": "\#(key)", "create_revision": "5", "mod_revision": "5", "version": "1", "value": "\#(b64("v{1}\"}"))"}}]}}"#,
            #"{"result": {"header": {"revision": "6"}, "events": [{"type": "DELETE", "kv": {"key": "\#(key)", "mod_revision": "6"}}, {"type": "PUT", "kv": {"key": "\#(key)", "mod_revision": "7"}}]}}"#,
        ])
        let bytes = Array(text.utf8)
        for size in [1, 7, 64, bytes.count] {
            let pieces = stride(from: 0, to: bytes.count, by: size).map { String(decoding: bytes[$0..<min($0 + size, bytes.count)], as: UTF8.self) }
            let (client, _) = try scripted { _ in ScriptedEtcdServer.Reply.stream(pieces, pause: 0) }
            let watch = WatchCollector(client.watch(prefix: "/c/w/", afterRevision: 0))
            defer { watch.stop() }
            let ended = try await poll(deadlineSeconds: 10) { watch.ended }
            XCTAssertTrue(ended)
            XCTAssertEqual(watch.events.map(\.kind), [.put, .delete, .put], "pieces of \(size) bytes, ended by \(String(describing: watch.error))")
            XCTAssertEqual(watch.events.first?.keyValue, KeyValue(key: "/c/w/k", value: Array("v{1}\"}".utf8), createRevision: 5, modRevision: 5, version: 1, lease: 0))
            // The server then ended the stream: that is an error, not a quiet end.
            XCTAssertEqual(watch.error?.code, .io, "\(String(describing: watch.error))")
            XCTAssertTrue(watch.error?.message.contains("closed the watch") ?? false, "\(String(describing: watch.error))")
        }
    }

    func testWatchEndsWithATypedErrorOnHostileStreams() async throws {
        let cases: [(messages: [String], code: StrataError.Code, mentions: String)] = [
            ([#"{"result": {"header": {"revision": "4"}}}"#], .corrupt, "first message"),
            ([Self.created, #"{"result": {"events": [{"kv": {"key": "%%%"}}]}}"#], .corrupt, "base64"),
            ([Self.created, #"{"result": {"events": [{"type": "EXPLODE", "kv": {"key": "L2M="}}]}}"#], .corrupt, "EXPLODE"),
            ([Self.created, #"{"result": {"events": [{"type": "PUT"}]}}"#], .corrupt, "without a key"),
            ([Self.created, "garbage"], .corrupt, "not a JSON object"),
            ([Self.created, "{\"result\": {\"events\": [\"" + String(repeating: "x", count: 5000)], .corrupt, "over 4096 bytes"),
            ([Self.created, #"{"result": {"canceled": true, "cancel_reason": "mvcc: required revision has been compacted", "compact_revision": "40"}}"#], .io, "compacted"),
            ([Self.created, #"{"error": {"grpc_code": 14, "message": "etcdserver: no leader"}}"#], .io, "no leader"),
        ]
        for item in cases {
            let (client, _) = try scripted(maximumAnswerBytes: 4096) { _ in ScriptedEtcdServer.Reply.stream([Self.watchText(item.messages)], linger: 5) }
            let watch = WatchCollector(client.watch(prefix: "/c/", afterRevision: 0))
            defer { watch.stop() }
            let ended = try await poll(deadlineSeconds: 4) { watch.ended }
            XCTAssertTrue(ended, "\(item.mentions)")
            XCTAssertEqual(watch.error?.code, item.code, "\(String(describing: watch.error))")
            XCTAssertTrue("\(String(describing: watch.error))".contains(item.mentions), "\(String(describing: watch.error)) does not mention \(item.mentions)")
        }
    }

    func testUnconfirmedWatchFailsWithinTheTimeout() async throws {
        for reply in [ScriptedEtcdServer.Reply.stream([], linger: 8), .silence(seconds: 8)] {
            let (client, _) = try scripted(timeout: .seconds(1)) { _ in reply }
            let watch = WatchCollector(client.watch(prefix: "/c/", afterRevision: 0))
            defer { watch.stop() }
            let ended = try await poll(deadlineSeconds: 4) { watch.ended }
            XCTAssertTrue(ended, "a watch nobody confirmed is still open after 4 s")
            XCTAssertEqual(watch.error?.code, .io, "\(String(describing: watch.error))")
        }
    }

    func testConfirmedWatchStaysOpenPastTheTimeoutAndEndsQuietlyWhenCancelled() async throws {
        let (client, _) = try scripted(timeout: .milliseconds(500)) { _ in ScriptedEtcdServer.Reply.stream([Self.created + "\n"], linger: 8) }
        let watch = WatchCollector(client.watch(prefix: "/c/", afterRevision: 0))
        try await Task.sleep(for: .seconds(2))
        XCTAssertFalse(watch.ended, "a confirmed, silent watch ended: \(String(describing: watch.error))")
        watch.stop()
        let ended = try await poll(deadlineSeconds: 4) { watch.ended }
        XCTAssertTrue(ended)
        XCTAssertNil(watch.error, "cancelling a watch is not an error")
    }

    // MARK: Lease keeper

    func testLeaseKeeperWhoseKeepalivesKeepFailingIsLostAfterTheTTL() async throws {
        let (client, _) = try scripted(timeout: .milliseconds(300)) { path in
            path == "/v3/lease/grant"
                ? .json(200, #"{"header": {"revision": "3"}, "ID": "42", "TTL": "1"}"#)
                : .json(503, #"{"error": "etcdserver: no leader", "code": 14, "message": "etcdserver: no leader"}"#)
        }
        let calls = CallCounter()
        let keeper = try await LeaseKeeper.start(store: client, ttlSeconds: 1) { _ in calls.add() }
        XCTAssertEqual(keeper.lease, 42)
        let lost = try await poll(deadlineSeconds: 10) { keeper.lossReason != nil }
        XCTAssertTrue(lost)
        XCTAssertFalse(keeper.isAlive)
        XCTAssertEqual(keeper.lossReason?.code, .io)
        XCTAssertTrue(keeper.lossReason?.message.contains("no leader") ?? false, "\(String(describing: keeper.lossReason))")
        let reason = await keeper.waitUntilLost()
        XCTAssertEqual(reason?.code, .io)
        XCTAssertEqual(calls.count, 1)
    }

    // MARK: Pieces without a server

    func testSplitterFindsObjectsAtEverySplitPoint() throws {
        let text = #" {"a": "}{\"\\", "b": [1, {"c": "]"}]}"# + "\n" + #"{"d": {}}"# + "\r\n\t"
        let bytes = Array(text.utf8)
        for cut in 0...bytes.count {
            var splitter = JSONObjectSplitter(maximumObjectBytes: 1 << 10)
            var objects = try splitter.append(bytes[..<cut])
            objects += try splitter.append(bytes[cut...])
            XCTAssertEqual(objects.map { String(decoding: $0, as: UTF8.self) },
                           [#"{"a": "}{\"\\", "b": [1, {"c": "]"}]}"#, #"{"d": {}}"#], "cut at \(cut)")
            XCTAssertFalse(splitter.hasPartialObject)
        }
        var partial = JSONObjectSplitter(maximumObjectBytes: 8)
        XCTAssertEqual(try partial.append(Array(#"{"a":"#.utf8)).count, 0)
        XCTAssertTrue(partial.hasPartialObject)
        XCTAssertThrowsError(try partial.append(Array(#" "12345"#.utf8)), "over the limit")
        var junk = JSONObjectSplitter(maximumObjectBytes: 8)
        XCTAssertThrowsError(try junk.append(Array("x{}".utf8)))
    }

    func testPrefixEnd() {
        XCTAssertEqual(etcdPrefixEnd(Array("/a/".utf8)), Array("/a0".utf8))
        XCTAssertEqual(etcdPrefixEnd([0x61, 0xff]), [0x62])
        XCTAssertEqual(etcdPrefixEnd([0xff, 0xff]), [0])
        XCTAssertEqual(etcdPrefixEnd([]), [0])
    }

    func testEndpointValidation() async throws {
        for bad in ["", "127.0.0.1:2379", "ftp://host:1", "http://", "http://host:1/v3", "http://host:1?x=1"] {
            XCTAssertThrowsError(try EtcdClient(endpoint: bad), bad) { XCTAssertEqual(($0 as? StrataError)?.code, .invalidArgument) }
        }
        XCTAssertThrowsError(try EtcdClient(endpoint: "http://h:1", timeout: .zero))
        let client = try EtcdClient(endpoint: "http://127.0.0.1:2379/")
        XCTAssertEqual(client.endpoint, "http://127.0.0.1:2379")
        await client.shutdown()
    }

    // MARK: Helpers

    @discardableResult
    private func expectError<T>(_ code: StrataError.Code, _ contains: String, _ context: String,
                                file: StaticString = #filePath, line: UInt = #line,
                                _ body: () async throws -> T) async -> StrataError? {
        do {
            let value = try await body()
            XCTFail("\(context): expected \(code), got \(value)", file: file, line: line)
        } catch let error as StrataError {
            XCTAssertEqual(error.code, code, "\(context): \(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(contains), "\(context): \(error) does not mention \(contains)", file: file, line: line)
            return error
        } catch {
            XCTFail("\(context): expected StrataError.\(code), got \(error)", file: file, line: line)
        }
        return nil
    }
}
