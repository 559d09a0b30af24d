// Crashes of a remote writer at every step of the protocol, against the real SeaweedFS and etcd:
// a child process (`strata-soak remote-writer`) exits at a named fault point (during a segment
// upload's aftermath, between the manifest PUT and the etcd transaction, after the transaction
// before local clean-up, after a WAL PUT before its acknowledgement) or is killed with SIGKILL at
// a random moment. Then a new writer takes over once the dead one's lease expires, and every
// acknowledged write must be present exactly once, every acknowledged delete absent, and a reader
// on an empty cache must see the same.
import Foundation
import XCTest
@testable import Strata
@testable import StrataRemote
import StrataFormat
import StrataTestSupport

final class RemoteCrashTests: XCTestCase {
    /// What the child acknowledged.
    struct Acknowledged {
        var inserted = Set<UInt64>()
        var deleted = Set<UInt64>()
        var flushes = 0
    }

    func parse(_ text: String) -> Acknowledged {
        var a = Acknowledged()
        var lines = text.components(separatedBy: "\n")
        lines.removeLast() // "" after the final newline, or a partial line
        for line in lines {
            let f = line.split(separator: " ")
            if f.first == "A", f.count == 3, let lo = UInt64(f[1]), let hi = UInt64(f[2]) { for id in lo...hi { a.inserted.insert(id) } }
            if f.first == "D", f.count == 2, let id = UInt64(f[1]) { a.deleted.insert(id) }
            if f.first == "F" { a.flushes += 1 }
        }
        return a
    }

    /// Runs the child to its end (or its fault point) or kills it after `killAfter` seconds.
    func runChild(_ f: RemoteFixture, fault: String?, ops: Int, flushEvery: Int, killAfter: Double? = nil) throws -> (Acknowledged, Int32) {
        guard let exe = strataSoakExecutable() else { throw XCTSkip("strata-soak executable not built (run swift build first)") }
        let out = URL(fileURLWithPath: f.cacheRoot + "-child.out")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        let p = Process()
        p.executableURL = exe
        p.arguments = ["remote-writer", f.cacheRoot + "/child", "--ops", String(ops), "--flush-rows", String(flushEvery)]
        var env = ProcessInfo.processInfo.environment
        env["STRATA_SOAK_ADDRESS"] = f.layout.address
        env["STRATA_S3_ENDPOINT"] = env["STRATA_TEST_S3_ENDPOINT"]
        env["STRATA_ETCD"] = env["STRATA_TEST_ETCD"]
        env["STRATA_FAULT_EXIT_AT"] = fault
        p.environment = env
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = FileHandle.nullDevice
        try p.run()
        if let killAfter {
            Thread.sleep(forTimeInterval: killAfter)
            kill(p.processIdentifier, SIGKILL)
        }
        p.waitUntilExit()
        return (parse(try String(contentsOf: out, encoding: .utf8)), p.terminationStatus)
    }

    /// Opens the collection as the next writer, waiting (at most 30 s) for the dead one's lease.
    func takeOver(_ f: RemoteFixture) async throws -> RemoteCollection {
        let deadline = Date().addingTimeInterval(30)
        while true {
            do {
                return try await f.open(cache: "next")
            } catch let e as StrataError where e.code == .busy && Date() < deadline {
                try await Task.sleep(nanoseconds: 200_000_000)
            }
        }
    }

    /// Every acknowledged insert present once, every acknowledged delete absent; rows beyond those
    /// may only be the child's last batch in flight (ids above the last acknowledged).
    func check(_ c: RemoteCollection, _ a: Acknowledged, plus: Set<UInt64> = [], file: StaticString = #filePath, line: UInt = #line) async throws {
        var seen: [UInt64: Int] = [:]
        try await c.snapshot().snapshot.forEachRow { seen[$0.id, default: 0] += 1 }
        XCTAssertTrue(seen.values.allSatisfy { $0 == 1 }, "a row appears twice", file: file, line: line)
        let want = a.inserted.subtracting(a.deleted).union(plus)
        // The one write in flight when the child died may have landed without being acknowledged:
        // when it was a delete, its victim (the first id of the batch before the last) may be gone.
        let highest = a.inserted.max() ?? 0
        let inFlightVictim: Set<UInt64> = highest >= 19 ? [highest - 19] : []
        let missing = want.subtracting(seen.keys)
        XCTAssertTrue(missing.isSubset(of: inFlightVictim), "acknowledged rows lost: \(missing.sorted().prefix(10))", file: file, line: line)
        XCTAssertTrue(a.deleted.isDisjoint(with: seen.keys), "acknowledged deletes undone", file: file, line: line)
        let extra = Set(seen.keys).subtracting(want)
        XCTAssertTrue(extra.allSatisfy { a.inserted.isEmpty || $0 > highest }, "rows present that were never written or were deleted: \(extra.sorted().prefix(10))",
                      file: file, line: line)
    }

    func crash(at fault: String?, ops: Int, flushEvery: Int, killAfter: Double? = nil) async throws {
        let f = try RemoteFixture("crash-" + (fault ?? "kill"))
        defer { Task { await f.shutdown() } }
        let c = try await f.create(options: f.options(leaseSeconds: 2))
        await c.close()
        let (acked, status) = try runChild(f, fault: fault, ops: ops, flushEvery: flushEvery, killAfter: killAfter)
        if fault != nil { XCTAssertEqual(status, 86, "the child did not reach fault point \(fault!)") }
        if fault != "after-wal-put" { XCTAssertFalse(acked.inserted.isEmpty, "the child acknowledged nothing") }
        let next = try await takeOver(f)
        try await check(next, acked)
        // The new writer works: it writes, flushes, and a reader on an empty cache agrees.
        try await next.insert([SegmentRow(id: 9_999_999, vector: [Float](repeating: 1, count: RemoteFixture.schema.dimension))])
        try await next.flush()
        await next.close()
        let reader = try await f.open(.readOnly, cache: "reader")
        try await check(reader, acked, plus: [9_999_999])
        await reader.close()
    }

    func testCrashAfterSegmentUpload() async throws { try await crash(at: "after-segment-upload", ops: 6, flushEvery: 4) }
    func testCrashBetweenManifestPutAndCommit() async throws { try await crash(at: "after-manifest-put", ops: 6, flushEvery: 4) }
    func testCrashAfterCommitBeforeLocalCleanUp() async throws { try await crash(at: "after-commit", ops: 6, flushEvery: 4) }
    func testCrashAfterWALPutBeforeAcknowledgement() async throws { try await crash(at: "after-wal-put", ops: 6, flushEvery: 4) }
    func testKillAtARandomMoment() async throws { try await crash(at: nil, ops: 100_000, flushEvery: 7, killAfter: 1.5) }
}
