// The S3 client against a real S3-compatible store (SeaweedFS in tests and CI): objects, ranges,
// conditional writes and their races, listings across pages, multipart uploads and parallel
// downloads, pending uploads, refused credentials and a stopped store. Each test works under its
// own key prefix and removes what it wrote.
import XCTest
@testable import StrataFormat
@testable import StrataRemote

final class S3ClientTests: XCTestCase {
    var client: S3Client!
    var prefix = ""
    var extraClients: [S3Client] = []
    var scratch = ""

    /// The store's settings from the environment, or a skip.
    static func testConfiguration(partSize: Int = 8 << 20) throws -> S3Configuration {
        let env = ProcessInfo.processInfo.environment
        guard let endpoint = env["STRATA_TEST_S3_ENDPOINT"], env["AWS_ACCESS_KEY_ID"] != nil, env["AWS_SECRET_ACCESS_KEY"] != nil else {
            throw XCTSkip("STRATA_TEST_S3_ENDPOINT / AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY not set: run tools/test.sh, which starts SeaweedFS and etcd")
        }
        var configuration = try S3Configuration.fromEnvironment(endpoint: endpoint, bucket: env["STRATA_TEST_S3_BUCKET"] ?? "strata")
        configuration.partSize = partSize
        return configuration
    }

    override func setUp() async throws {
        try await super.setUp()
        client = S3Client(configuration: try Self.testConfiguration())
        prefix = "s3-client-tests/\(UUID().uuidString.lowercased())/"
        scratch = NSTemporaryDirectory() + "/s3-client-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        if let client {
            if let objects = try? await client.list(prefix: prefix) {
                for object in objects { try? await client.delete(object.key) }
            }
            if let uploads = try? await client.pendingUploads(prefix: prefix) {
                for upload in uploads { try? await client.abortUpload(upload) }
            }
            try await client.shutdown()
        }
        for other in extraClients { try await other.shutdown() }
        extraClients = []
        client = nil
        try? FileManager.default.removeItem(atPath: scratch)
        try await super.tearDown()
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

    /// `count` bytes of a deterministic pattern.
    func pattern(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    func testPutGetRangeHeadDelete() async throws {
        let key = prefix + "object.bin"
        let body = pattern(10_000)
        let etag = try await client.put(key, body: body, condition: .none)
        XCTAssertFalse(etag.isEmpty)
        let whole = try await client.get(key)
        XCTAssertEqual(whole, body)
        let part = try await client.get(key, range: 1_000..<1_010)
        XCTAssertEqual(part, Array(body[1_000..<1_010]))
        let tail = try await client.get(key, range: 9_990..<10_000)
        XCTAssertEqual(tail, Array(body[9_990...]))
        let none = try await client.get(key, range: 5..<5)
        XCTAssertEqual(none, [])
        let info = try await client.head(key)
        XCTAssertEqual(info?.key, key)
        XCTAssertEqual(info?.size, 10_000)
        XCTAssertEqual(info?.etag, etag)
        XCTAssertGreaterThan(info?.lastModifiedMilliseconds ?? 0, 1_600_000_000_000)
        // A range past the end is refused, not silently shortened.
        await expectError(.corrupt, { try await self.client.get(key, range: 9_995..<10_005) })
        await expectError(.corrupt, { try await self.client.get(key, range: 20_000..<20_010) })
        try await client.delete(key)
        let gone = try await client.head(key)
        XCTAssertNil(gone)
        await expectError(.notFound, { try await self.client.get(key) }, ["s3://", key, "404"])
        try await client.delete(key)  // deleting what is gone is not an error
        // An empty object.
        _ = try await client.put(key, body: [], condition: .ifAbsent)
        let empty = try await client.get(key)
        XCTAssertEqual(empty, [])
    }

    func testKeysWithCharactersThatNeedEncoding() async throws {
        let keys = [prefix + "dir/a b+c=d&e%f~g.bin", prefix + "dir/ü/ñ$@:,;!'()*.x", prefix + "dir/plain"]
        for (i, key) in keys.enumerated() { _ = try await client.put(key, body: [UInt8(i)], condition: .ifAbsent) }
        for (i, key) in keys.enumerated() {
            let bytes = try await client.get(key)
            XCTAssertEqual(bytes, [UInt8(i)], key)
        }
        let listed = try await client.list(prefix: prefix + "dir/")
        XCTAssertEqual(Set(listed.map(\.key)), Set(keys))
    }

    func testListingCrossesPagesAndStartsAfter() async throws {
        let keys = (0..<45).map { prefix + String(format: "seg/%05d.seg", $0) }
        let client = self.client!
        _ = try await inParallel(count: keys.count, width: 8, what: "test") { i async throws(StrataError) -> String in
            try await client.put(keys[i], body: [UInt8(i)], condition: .ifAbsent)
        }
        _ = try await client.put(prefix + "other", body: [1], condition: .none)
        // Pages of 7: the store must hand out continuation tokens.
        let all = try await client.list(prefix: prefix + "seg/", startAfter: nil, pageSize: 7)
        XCTAssertEqual(all.map(\.key), keys)
        XCTAssertEqual(all.map(\.size), Array(repeating: 1, count: 45))
        let after = try await client.list(prefix: prefix + "seg/", startAfter: keys[39], pageSize: 4)
        XCTAssertEqual(after.map(\.key), Array(keys[40...]))
        let everything = try await client.list(prefix: prefix)
        XCTAssertEqual(everything.count, 46)
        let nothing = try await client.list(prefix: prefix + "none/")
        XCTAssertEqual(nothing, [])
    }

    func testListingIsInByteOrderAcrossDirectories() async throws {
        // '-' (0x2D) sorts before '/' (0x2F): S3's order puts "a-c" before "a/b"; a store that walks
        // directories does not, and the client restores S3's order.
        let keys = ["a-c", "a/b", "a/c/d", "a/cd/e", "a/cd/e-f", "a/cd/f/g", "a0"].map { prefix + $0 }
        for key in keys.reversed() { _ = try await client.put(key, body: [1], condition: .ifAbsent) }
        let all = try await client.list(prefix: prefix)
        XCTAssertEqual(all.map(\.key), keys)
        let afterDash = try await client.list(prefix: prefix, startAfter: keys[0])
        XCTAssertEqual(afterDash.map(\.key), Array(keys[1...]))
        for (i, key) in keys.enumerated() {
            let after = try await client.list(prefix: prefix, startAfter: key, pageSize: 2)
            XCTAssertEqual(after.map(\.key), Array(keys[(i + 1)...]), key)
        }
        let afterMissing = try await client.list(prefix: prefix, startAfter: prefix + "a/cd/e+", pageSize: 2)
        XCTAssertEqual(afterMissing.map(\.key), Array(keys[4...]))
    }

    func testConditionalPuts() async throws {
        let key = prefix + "head.json"
        let first = try await client.put(key, body: Array("v1".utf8), condition: .ifAbsent)
        await expectError(.alreadyExists, { try await self.client.put(key, body: Array("v2".utf8), condition: .ifAbsent) }, ["412"])
        let second = try await client.put(key, body: Array("v2".utf8), condition: .ifMatch(first))
        XCTAssertNotEqual(first, second)
        await expectError(.alreadyExists, { try await self.client.put(key, body: Array("v3".utf8), condition: .ifMatch(first)) }, ["412"])
        let bytes = try await client.get(key)
        XCTAssertEqual(bytes, Array("v2".utf8))
    }

    func testRacingCreatorsHaveExactlyOneWinner() async throws {
        let client = self.client!
        for round in 0..<5 {
            let key = prefix + "wal/\(round).log"
            let outcomes = try await inParallel(count: 8, width: 8, what: "test") { writer async throws(StrataError) -> Bool in
                do throws(StrataError) {
                    _ = try await client.put(key, body: Array("writer \(writer)".utf8), condition: .ifAbsent)
                    return true
                } catch let error where error.code == .alreadyExists {
                    return false
                }
            }
            XCTAssertEqual(outcomes.filter { $0 }.count, 1, "round \(round)")
            let winner = outcomes.firstIndex(of: true)!
            let bytes = try await client.get(key)
            XCTAssertEqual(bytes, Array("writer \(winner)".utf8))
        }
    }

    func testAWrongSecretIsRefusedWithAHint() async throws {
        var configuration = try Self.testConfiguration()
        configuration.secretKey += "-wrong"
        let wrong = S3Client(configuration: configuration)
        extraClients.append(wrong)
        await expectError(.io, { try await wrong.put(self.prefix + "x", body: [1], condition: .none) },
                          ["403", "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"])
        await expectError(.io, { try await wrong.list(prefix: self.prefix) }, ["403", "AWS_SECRET_ACCESS_KEY"])
    }

    func writeFile(_ name: String, _ bytes: [UInt8]) -> String {
        let path = scratch + "/" + name
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    func testMultipartUploadAndParallelDownload() async throws {
        let small = S3Client(configuration: try Self.testConfiguration(partSize: 5 << 20))
        extraClients.append(small)
        let body = pattern((20 << 20) + 12_345, seed: 7)
        let source = writeFile("big.bin", body)
        let key = prefix + "seg/big.seg"
        let etag = try await small.upload(key, fromFile: source, condition: .ifAbsent)
        let info = try await small.head(key)
        XCTAssertEqual(info?.size, UInt64(body.count))
        XCTAssertEqual(info?.etag, etag)
        let pending = try await small.pendingUploads(prefix: prefix)
        XCTAssertEqual(pending, [], "a completed upload is not pending")
        let target = scratch + "/big.copy"
        let written = try await small.download(key, toFile: target)
        XCTAssertEqual(written, UInt64(body.count))
        XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: target))), body)
        // A ranged GET across a part boundary.
        let across = try await small.get(key, range: (5 << 20) - 3..<(5 << 20) + 3)
        XCTAssertEqual(across, Array(body[((5 << 20) - 3)..<((5 << 20) + 3)]))
        // The same key again, if absent: refused before any part is sent.
        await expectError(.alreadyExists, { try await small.upload(key, fromFile: source, condition: .ifAbsent) })
        // If-Match the current tag: replaced.
        let replaced = try await small.upload(key, fromFile: source, condition: .ifMatch(etag))
        XCTAssertFalse(replaced.isEmpty)
        let stillPending = try await small.pendingUploads(prefix: prefix)
        XCTAssertEqual(stillPending, [])
    }

    func testACompletionLosesToAWriterThatCameFirst() async throws {
        // The check before a conditional multipart upload cannot see a writer that lands while the
        // parts go up; the condition sent with the completion is what refuses it.
        let key = prefix + "seg/raced.seg"
        let uploadId = try await client.createUpload(key)
        let part = try await client.uploadPart(key, uploadId: uploadId, number: 1, bytes: pattern(1000))
        _ = try await client.put(key, body: Array("first".utf8), condition: .ifAbsent)
        await expectError(.alreadyExists, {
            try await self.client.completeUpload(key, uploadId: uploadId, etags: [part], size: 1000, condition: .ifAbsent)
        }, ["412"])
        let bytes = try await client.get(key)
        XCTAssertEqual(bytes, Array("first".utf8))
    }

    func testSmallAndEmptyFilesGoInOnePut() async throws {
        for (name, count) in [("small", 1_000), ("empty", 0)] {
            let body = pattern(count, seed: 3)
            let key = prefix + name
            _ = try await client.upload(key, fromFile: writeFile(name, body), condition: .ifAbsent)
            let bytes = try await client.get(key)
            XCTAssertEqual(bytes, body)
            let target = scratch + "/\(name).copy"
            let written = try await client.download(key, toFile: target)
            XCTAssertEqual(written, UInt64(count))
            XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: target))), body)
        }
        await expectError(.notFound, { try await self.client.download(self.prefix + "missing", toFile: self.scratch + "/m") })
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch + "/m"))
        await expectError(.io, { try await self.client.upload(self.prefix + "x", fromFile: self.scratch + "/absent", condition: .none) })
    }

    func testPendingUploadsAreListedAndAborted() async throws {
        let first = try await client.createUpload(prefix + "tmp/a.seg")
        let second = try await client.createUpload(prefix + "tmp/b.seg")
        _ = try await client.uploadPart(prefix + "tmp/a.seg", uploadId: first, number: 1, bytes: pattern(1000))
        let pending = try await client.pendingUploads(prefix: prefix + "tmp/")
        XCTAssertEqual(Set(pending.map(\.uploadId)), [first, second])
        XCTAssertEqual(Set(pending.map(\.key)), [prefix + "tmp/a.seg", prefix + "tmp/b.seg"])
        for upload in pending { try await client.abortUpload(upload) }
        let after = try await client.pendingUploads(prefix: prefix + "tmp/")
        XCTAssertEqual(after, [])
        let none = try await client.list(prefix: prefix + "tmp/")
        XCTAssertEqual(none, [], "an aborted upload leaves no object")
    }

    func testAStoppedStoreFailsWithinTheTimeout() async throws {
        var configuration = try Self.testConfiguration()
        let probe = try ScriptedHTTPServer { _, _ in .silence(seconds: 0) }
        probe.stop()  // its port is now free: nothing listens there
        configuration = try S3Configuration(endpoint: "http://127.0.0.1:\(probe.port)", bucket: configuration.bucket,
                                            accessKey: configuration.accessKey, secretKey: configuration.secretKey,
                                            requestTimeoutSeconds: 3, retries: 2, initialBackoffSeconds: 0.05)
        let stopped = S3Client(configuration: configuration)
        extraClients.append(stopped)
        await expectError(.io, { try await stopped.get(self.prefix + "x") }, ["3 attempts", "s3://"])
        await expectError(.io, { try await stopped.upload(self.prefix + "x", fromFile: self.writeFile("f", [1]), condition: .ifAbsent) })
    }
    /// Prints upload and download throughput for a 100 MiB object with the default settings (8 MiB
    /// parts, 4 in flight), and how far each raised the process's peak resident memory (Linux
    /// resets the peak when 5 is written to /proc/self/clear_refs). Opt-in (STRATA_S3_THROUGHPUT=1):
    /// it measures, it does not assert speed.
    func testThroughputOf100MiB() async throws {
        guard ProcessInfo.processInfo.environment["STRATA_S3_THROUGHPUT"] == "1" else {
            throw XCTSkip("set STRATA_S3_THROUGHPUT=1 to measure upload and download MB/s")
        }
        let mib = 100
        let source = scratch + "/100mib.bin"
        XCTAssertTrue(FileManager.default.createFile(atPath: source, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: source))
        for chunk in 0..<mib { handle.write(Data(pattern(1 << 20, seed: UInt64(chunk)))) }
        try handle.close()
        func residentKiB(_ field: String) -> Int {
            let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        func resetPeak() { try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8) }
        let key = prefix + "seg/100mib.seg"
        resetPeak()
        var base = residentKiB("VmRSS")
        let started = monotonicSeconds()
        _ = try await client.upload(key, fromFile: source, condition: .ifAbsent)
        let uploaded = monotonicSeconds()
        let uploadPeak = residentKiB("VmHWM") - base
        let target = scratch + "/100mib.copy"
        resetPeak()
        base = residentKiB("VmRSS")
        let downloadStarted = monotonicSeconds()
        _ = try await client.download(key, toFile: target)
        let downloaded = monotonicSeconds()
        let downloadPeak = residentKiB("VmHWM") - base
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target)), try Data(contentsOf: URL(fileURLWithPath: source)))
        let mb = Double(mib << 20) / 1e6
        print(String(format: "S3 throughput, 100 MiB: upload %.1f MB/s (%.2f s, peak RSS +%d MiB), download %.1f MB/s (%.2f s, peak RSS +%d MiB)",
                     mb / (uploaded - started), uploaded - started, uploadPeak >> 10,
                     mb / (downloaded - downloadStarted), downloaded - downloadStarted, downloadPeak >> 10))
    }
}
