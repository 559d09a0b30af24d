// The etcd client against a real etcd 3.4 (STRATA_TEST_ETCD=http://127.0.0.1:PORT): key-value
// operations, transactions (including racing create-if-absent), leases and their expiry, the lease
// keeper, watches, and an unreachable endpoint. Each test works under its own key prefix.
import Foundation
import Synchronization
import XCTest
@testable import StrataFormat
@testable import StrataRemote

final class EtcdClientTests: XCTestCase {
    private var client: EtcdClient!
    /// A key prefix no other test (or run) uses.
    private var prefix = ""

    override func setUp() async throws {
        guard let endpoint = ProcessInfo.processInfo.environment["STRATA_TEST_ETCD"], !endpoint.isEmpty else {
            throw XCTSkip("STRATA_TEST_ETCD is not set: run tools/test.sh, which starts SeaweedFS and etcd")
        }
        client = try EtcdClient(endpoint: endpoint)
        prefix = "/strata-test/\(UUID().uuidString)/"
    }

    override func tearDown() async throws {
        if let client {
            for kv in (try? await client.range(prefix: prefix)) ?? [] { try? await client.delete(kv.key) }
            await client.shutdown()
        }
        client = nil
    }

    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    // MARK: Key-value

    func testPutGetRangeDelete() async throws {
        let first = try await client.put(prefix + "b", value: bytes("two"), lease: 0)
        let second = try await client.put(prefix + "a", value: bytes("one"), lease: 0)
        XCTAssertGreaterThan(second, first)
        try await client.put(prefix + "c/empty", value: [], lease: 0)
        // A key beside the prefix (the prefix without its final slash, plus a byte) stays out of the range.
        let outside = String(prefix.dropLast()) + "0"
        try await client.put(outside, value: bytes("outside"), lease: 0)

        let a = try await client.get(prefix + "a")
        XCTAssertEqual(a?.value, bytes("one"))
        XCTAssertEqual(a?.modRevision, second)
        XCTAssertEqual(a?.createRevision, second)
        XCTAssertEqual(a?.version, 1)
        XCTAssertEqual(a?.lease, 0)
        let empty = try await client.get(prefix + "c/empty")
        XCTAssertEqual(empty?.value, [], "an empty value (left out of etcd's JSON) reads back empty")
        let missing = try await client.get(prefix + "missing")
        XCTAssertNil(missing)

        let all = try await client.range(prefix: prefix)
        XCTAssertEqual(all.map(\.key), [prefix + "a", prefix + "b", prefix + "c/empty"])
        XCTAssertEqual(all.map(\.value), [bytes("one"), bytes("two"), []])
        let sub = try await client.range(prefix: prefix + "c/")
        XCTAssertEqual(sub.map(\.key), [prefix + "c/empty"])

        let third = try await client.put(prefix + "a", value: bytes("uno"), lease: 0)
        let updated = try await client.get(prefix + "a")
        XCTAssertEqual(updated?.value, bytes("uno"))
        XCTAssertEqual(updated?.modRevision, third)
        XCTAssertEqual(updated?.createRevision, second)
        XCTAssertEqual(updated?.version, 2)

        try await client.delete(prefix + "a")
        try await client.delete(prefix + "a")   // absent: no error
        let gone = try await client.get(prefix + "a")
        XCTAssertNil(gone)
        let rest = try await client.range(prefix: prefix)
        XCTAssertEqual(rest.map(\.key), [prefix + "b", prefix + "c/empty"])
        try await client.delete(outside)
    }

    func testRangeOverPrefixEndingInHighBytes() async throws {
        // "ÿ" is 0xC3 0xBF in UTF-8: the range end must increment the last byte, not a character.
        let base = prefix + "\u{FF}"
        try await client.put(base + "x", value: bytes("in"), lease: 0)
        try await client.put(prefix + "\u{100}", value: bytes("out"), lease: 0)
        let found = try await client.range(prefix: base)
        XCTAssertEqual(found.map(\.key), [base + "x"])
        // A combining accent after the prefix makes another character ("é") but the same leading
        // bytes: etcd's prefix is a byte prefix, and so is the client's check of its answer.
        try await client.put(prefix + "e\u{301}", value: bytes("accent"), lease: 0)
        try await client.put(prefix + "e", value: bytes("plain"), lease: 0)
        let accented = try await client.range(prefix: prefix + "e")
        XCTAssertEqual(accented.map(\.value), [bytes("plain"), bytes("accent")])
    }

    // MARK: Transactions

    func testTxnOnModRevisionSucceedsThenFailsWithReadsFromTheBranchThatRan() async throws {
        let head = prefix + "head"
        let revision = try await client.put(head, value: bytes("g1"), lease: 0)

        let won = try await client.txn(compare: [.modRevision(head, equals: revision)],
                                       success: [.put(head, bytes("g2"), lease: 0), .get(head)],
                                       failure: [.get(head)])
        XCTAssertTrue(won.succeeded)
        XCTAssertGreaterThan(won.revision, revision)
        XCTAssertEqual(won.reads.count, 1)
        XCTAssertEqual(won.reads[0]?.value, bytes("g2"))
        XCTAssertEqual(won.reads[0]?.modRevision, won.revision)

        // The same comparison again: head moved on, so the failure branch runs (etcd leaves
        // "succeeded" out of the answer) and reads the current head.
        let lost = try await client.txn(compare: [.modRevision(head, equals: revision)],
                                        success: [.put(head, bytes("stale"), lease: 0)],
                                        failure: [.get(head), .get(prefix + "absent")])
        XCTAssertFalse(lost.succeeded)
        XCTAssertEqual(lost.revision, won.revision, "a failed txn writes nothing")
        XCTAssertEqual(lost.reads.count, 2)
        XCTAssertEqual(lost.reads[0]?.value, bytes("g2"))
        XCTAssertNil(lost.reads[1] ?? nil)
        let current = try await client.get(head)
        XCTAssertEqual(current?.value, bytes("g2"))
    }

    func testTxnCreateIfAbsentAndValueEquality() async throws {
        let key = prefix + "writer"
        let created = try await client.txn(compare: [.createRevision(key, equals: 0)],
                                           success: [.put(key, bytes("w1"), lease: 0)], failure: [.get(key)])
        XCTAssertTrue(created.succeeded)
        XCTAssertEqual(created.reads, [])
        let again = try await client.txn(compare: [.createRevision(key, equals: 0)],
                                         success: [.put(key, bytes("w2"), lease: 0)], failure: [.get(key)])
        XCTAssertFalse(again.succeeded)
        XCTAssertEqual(again.reads.first??.value, bytes("w1"))
        XCTAssertEqual(again.reads.first??.createRevision, created.revision)

        let wrongValue = try await client.txn(compare: [.value(key, equals: bytes("w2"))],
                                              success: [.delete(key)], failure: [])
        XCTAssertFalse(wrongValue.succeeded)
        let stillThere = try await client.get(key)
        XCTAssertEqual(stillThere?.value, bytes("w1"))
        let rightValue = try await client.txn(compare: [.value(key, equals: bytes("w1")), .createRevision(key, equals: created.revision)],
                                              success: [.delete(key), .get(key)], failure: [])
        XCTAssertTrue(rightValue.succeeded)
        XCTAssertEqual(rightValue.reads.count, 1)
        XCTAssertNil(rightValue.reads[0])
        let gone = try await client.get(key)
        XCTAssertNil(gone)
    }

    func testConcurrentCreateIfAbsentHasExactlyOneWinner() async throws {
        let key = prefix + "race"
        let client = self.client!
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for writer in 0..<8 {
                group.addTask {
                    let result = try await client.txn(compare: [.createRevision(key, equals: 0)],
                                                      success: [.put(key, Array("writer \(writer)".utf8), lease: 0)],
                                                      failure: [])
                    return (writer, result.succeeded)
                }
            }
            var outcomes: [(Int, Bool)] = []
            for try await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let winners = outcomes.filter(\.1).map(\.0)
        XCTAssertEqual(winners.count, 1, "\(outcomes)")
        let stored = try await client.get(key)
        XCTAssertEqual(stored?.value, winners.first.map { Array("writer \($0)".utf8) })
        XCTAssertEqual(stored?.version, 1)
    }

    // MARK: Leases

    func testRevokingALeaseDeletesItsKeys() async throws {
        let lease = try await client.grantLease(ttlSeconds: 30)
        let key = prefix + "pin"
        try await client.put(key, value: bytes("reader"), lease: lease)
        let attached = try await client.get(key)
        XCTAssertEqual(attached?.lease, lease)
        let ttl = try await client.keepAlive(lease: lease)
        XCTAssertGreaterThan(ttl, 0)
        XCTAssertLessThanOrEqual(ttl, 30)

        try await client.revoke(lease: lease)
        let gone = try await client.get(key)
        XCTAssertNil(gone)
        await expectError(.notFound, "lease \(lease)") { try await self.client.keepAlive(lease: lease) }
        await expectError(.notFound, "lease \(lease)") { try await self.client.revoke(lease: lease) }
        await expectError(.notFound, key) { try await self.client.put(key, value: [1], lease: lease) }
    }

    func testLeaseWithoutKeepaliveExpiresAndTakesItsKey() async throws {
        let lease = try await client.grantLease(ttlSeconds: 2)
        let key = prefix + "writer"
        try await client.put(key, value: bytes("w"), lease: lease)
        // etcd expires a lease within about a second after its TTL; poll with a generous deadline.
        let gone = try await poll(deadlineSeconds: 15) { try await self.client.get(key) == nil }
        XCTAssertTrue(gone, "a key attached to a 2 s lease was still there after 15 s")
        await expectError(.notFound, "lease \(lease)") { try await self.client.keepAlive(lease: lease) }
    }

    func testLeaseKeeperHoldsALeasePastThreeTTLsThenRevokes() async throws {
        let keeper = try await LeaseKeeper.start(store: client, ttlSeconds: 2)
        let key = prefix + "writer"
        try await client.put(key, value: bytes("w"), lease: keeper.lease)
        // Past three TTLs: without the keeper the key would be gone after about one.
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(7) {
            let value = try await client.get(key)
            XCTAssertNotNil(value, "the kept lease expired after \(ContinuousClock.now - start)")
            XCTAssertTrue(keeper.isAlive)
            if value == nil { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        try await keeper.revoke()
        XCTAssertFalse(keeper.isAlive)
        XCTAssertNil(keeper.lossReason)
        let reason = await keeper.waitUntilLost()
        XCTAssertNil(reason, "a revoked lease is not lost")
        let gone = try await client.get(key)
        XCTAssertNil(gone)
        try await keeper.revoke()   // again: the lease is gone, which is what revoke wants
    }

    func testLeaseKeeperReportsALeaseRevokedBehindItsBack() async throws {
        let calls = CallCounter()
        let keeper = try await LeaseKeeper.start(store: client, ttlSeconds: 3) { _ in calls.add() }
        try await client.revoke(lease: keeper.lease)
        let lost = try await poll(deadlineSeconds: 15) { keeper.lossReason != nil }
        XCTAssertTrue(lost, "a keeper whose lease was revoked still holds it after 15 s")
        let reason = await keeper.waitUntilLost()
        XCTAssertEqual(reason?.code, .notFound)
        XCTAssertFalse(keeper.isAlive)
        XCTAssertEqual(keeper.lossReason?.code, .notFound)
        XCTAssertEqual(calls.count, 1)
        let after = await keeper.waitUntilLost()
        XCTAssertEqual(after?.code, .notFound, "a lost lease stays lost")
    }

    // MARK: Watches

    func testWatchFromARevisionSeesLaterPutsAndDeletes() async throws {
        let start = try await client.put(prefix + "before", value: bytes("x"), lease: 0)
        let watch = WatchCollector(client.watch(prefix: prefix + "w/", afterRevision: start))
        defer { watch.stop() }
        let put = try await client.put(prefix + "w/k", value: bytes("v1"), lease: 0)
        try await client.put(prefix + "elsewhere", value: bytes("ignored"), lease: 0)
        try await client.delete(prefix + "w/k")

        let arrived = try await poll(deadlineSeconds: 10) { watch.events.count >= 2 || watch.ended }
        XCTAssertTrue(arrived)
        XCTAssertNil(watch.error)
        let events = watch.events
        XCTAssertEqual(events.map(\.kind), [.put, .delete])
        XCTAssertEqual(events.map(\.keyValue.key), [prefix + "w/k", prefix + "w/k"])
        XCTAssertEqual(events.first?.keyValue.value, bytes("v1"))
        XCTAssertEqual(events.first?.keyValue.modRevision, put)
        XCTAssertGreaterThan(events.last?.keyValue.modRevision ?? 0, put)
    }

    func testWatchFromNowSeesChangesMadeAfterItStarts() async throws {
        let watch = WatchCollector(client.watch(prefix: prefix + "w/", afterRevision: 0))
        defer { watch.stop() }
        // The watch starts in the background: write a probe until it shows up, then the changes.
        let probe = prefix + "w/probe"
        let started = try await poll(deadlineSeconds: 10) {
            try await self.client.put(probe, value: [1], lease: 0)
            return watch.events.contains { $0.keyValue.key == probe } || watch.ended
        }
        XCTAssertTrue(started)
        XCTAssertNil(watch.error)

        let put = try await client.put(prefix + "w/k", value: bytes("v"), lease: 0)
        try await client.delete(prefix + "w/k")
        let arrived = try await poll(deadlineSeconds: 10) { watch.events.filter { $0.keyValue.key == self.prefix + "w/k" }.count >= 2 || watch.ended }
        XCTAssertTrue(arrived)
        let changes = watch.events.filter { $0.keyValue.key == prefix + "w/k" }
        XCTAssertEqual(changes.map(\.kind), [.put, .delete])
        XCTAssertEqual(changes.first?.keyValue.modRevision, put)
        XCTAssertNil(watch.error)
    }

    // MARK: Unreachable

    func testUnreachableEndpointFailsWithIOWithinTheTimeout() async throws {
        // A port that was free a moment ago: connections are refused.
        let refused = try EtcdClient(endpoint: "http://127.0.0.1:\(try freePort())", timeout: .seconds(2))
        let started = ContinuousClock.now
        let error = await expectError(.io, "unreachable") { try await refused.get("/k") }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(4))
        XCTAssertTrue(error?.message.contains(refused.endpoint) ?? false, "\(String(describing: error))")
        XCTAssertEqual(error?.path, refused.endpoint)
        await expectError(.io, "unreachable") { try await refused.put("/k", value: [], lease: 0) }
        let watch = WatchCollector(refused.watch(prefix: "/k", afterRevision: 0))
        let ended = try await poll(deadlineSeconds: 4) { watch.ended }
        XCTAssertTrue(ended)
        XCTAssertEqual(watch.error?.code, .io)
        XCTAssertTrue(watch.error?.message.contains("unreachable") ?? false, "\(String(describing: watch.error))")
        await refused.shutdown()
    }

    // MARK: Helpers

    @discardableResult
    private func expectError<T>(_ code: StrataError.Code, _ contains: String, file: StaticString = #filePath, line: UInt = #line,
                                _ body: () async throws -> T) async -> StrataError? {
        do {
            let value = try await body()
            XCTFail("expected \(code), got \(value)", file: file, line: line)
        } catch let error as StrataError {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(contains), "\(error) does not mention \(contains)", file: file, line: line)
            return error
        } catch {
            XCTFail("expected StrataError.\(code), got \(error)", file: file, line: line)
        }
        return nil
    }
}

/// Counts calls (of `onLost`, of a scripted server's handler).
final class CallCounter: Sendable {
    private let value = Mutex(0)
    /// Adds one; returns the count.
    @discardableResult
    func add() -> Int { value.withLock { $0 += 1; return $0 } }
    var count: Int { value.withLock { $0 } }
}

/// Consumes a watch in the background and keeps what it delivered and how it ended.
final class WatchCollector: Sendable {
    private struct State {
        var events: [WatchEvent] = []
        var ended = false
        var error: StrataError?
    }
    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ stream: AsyncThrowingStream<WatchEvent, any Error>) {
        let consumer = Task { [self] in
            do {
                for try await event in stream { self.state.withLock { $0.events.append(event) } }
                self.state.withLock { $0.ended = true }
            } catch {
                self.state.withLock {
                    $0.error = error as? StrataError ?? StrataError(.io, "not a StrataError: \(error)")
                    $0.ended = true
                }
            }
        }
        task.withLock { $0 = consumer }
    }

    var events: [WatchEvent] { state.withLock { $0.events } }
    var ended: Bool { state.withLock { $0.ended } }
    var error: StrataError? { state.withLock { $0.error } }

    /// Cancels the watch.
    func stop() { task.withLock { $0?.cancel() } }
}

/// Polls `condition` until it holds or `deadlineSeconds` pass; returns whether it held.
func poll(deadlineSeconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(deadlineSeconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    return try await condition()
}

/// A loopback port nothing listens on (bound, read, released).
func freePort() throws -> Int {
    let server = try ScriptedEtcdServer { _ in .silence(seconds: 0) }
    server.stop()
    return Int(server.endpoint.split(separator: ":").last!)!
}
