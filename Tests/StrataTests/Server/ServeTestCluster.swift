// Real `strata serve` processes on loopback for the serving tests: each started with its own node
// id, cache and ready file over the test run's SeaweedFS and etcd (a prefix no other test uses),
// stopped by PID (SIGTERM, or SIGKILL to simulate a crash), and plain HTTP requests to them.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import XCTest

/// A running `strata serve` process.
final class ServeTestNode: @unchecked Sendable {
    let id: String
    let process: Process
    let url: String
    let logPath: String

    init(id: String, process: Process, url: String, logPath: String) {
        self.id = id
        self.process = process
        self.url = url
        self.logPath = logPath
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGKILL: no graceful shutdown, leases expire on their own.
    func kill() {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then wait (SIGKILL after `seconds`).
    func stop(seconds: Double = 20) {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { kill() }
    }
}

/// Nodes of one test cluster and an HTTP client for them.
final class ServeTestCluster: @unchecked Sendable {
    let env: RemoteTestEnvironment
    let store: String
    let scratch: URL
    let apiKey: String?
    var nodes: [ServeTestNode] = []
    let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)

    init(env: RemoteTestEnvironment, name: String, scratch: URL, apiKey: String? = nil) {
        self.env = env
        self.store = "s3://\(env.bucket)/\(env.uniquePrefix(name))"
        self.scratch = scratch
        self.apiKey = apiKey
    }

    deinit { try? http.syncShutdown() }

    /// Starts a node and waits until it serves. `extra`: more flags.
    @discardableResult
    func start(_ id: String, extra: [String] = []) throws -> ServeTestNode {
        guard let exe = strataExecutable() else { throw XCTSkip("strata executable not built (run swift build first)") }
        let ready = scratch.appendingPathComponent("ready-\(id)").path
        try? FileManager.default.removeItem(atPath: ready)
        let logPath = scratch.appendingPathComponent("serve-\(id).log").path
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let p = Process()
        p.executableURL = exe
        var args = ["serve", "--listen", "127.0.0.1:0", "--node-id", id, "--store", store, "--s3-endpoint", env.s3Endpoint,
                    "--etcd", env.etcdEndpoint, "--cache-dir", scratch.appendingPathComponent("cache-\(id)").path,
                    "--ready-file", ready, "--lease-seconds", "4"]
        if let apiKey { args += ["--api-key", apiKey] }
        p.arguments = args + extra
        var environment = ProcessInfo.processInfo.environment
        environment["AWS_ACCESS_KEY_ID"] = env.accessKey
        environment["AWS_SECRET_ACCESS_KEY"] = env.secretKey
        p.environment = environment
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        p.standardOutput = log
        p.standardError = log
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: ready, encoding: .utf8), !text.isEmpty {
                let node = ServeTestNode(id: id, process: p, url: text.trimmingCharacters(in: .whitespacesAndNewlines), logPath: logPath)
                nodes.append(node)
                return node
            }
            guard p.isRunning else { break }
            usleep(50_000)
        }
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        if p.isRunning { Glibc.kill(p.processIdentifier, SIGKILL) }
        throw ServeTestFailure(description: "node \(id) did not start: \(text.suffix(2000))")
    }

    /// Stops every node still running (SIGTERM).
    func stopAll() {
        for n in nodes { n.stop() }
    }

    /// A request; returns the status and the parsed JSON body (nil when not JSON).
    func request(_ node: ServeTestNode, _ method: HTTPMethod, _ path: String, body: Any? = nil,
                 headers: [(String, String)] = [], timeout: Int64 = 60) async throws -> (status: Int, json: Any?, text: String, headers: HTTPHeaders) {
        var r = HTTPClientRequest(url: node.url + path)
        r.method = method
        if let apiKey { r.headers.add(name: "api-key", value: apiKey) }
        for (k, v) in headers { r.headers.replaceOrAdd(name: k, value: v) }
        if let body {
            r.headers.add(name: "content-type", value: "application/json")
            let data = try JSONSerialization.data(withJSONObject: body)
            r.body = .bytes(ByteBuffer(bytes: Array(data)))
        }
        let response = try await http.execute(r, timeout: .seconds(timeout))
        let bytes = try await response.body.collect(upTo: 256 << 20)
        let text = String(buffer: bytes)
        let json = try? JSONSerialization.jsonObject(with: Data(text.utf8))
        return (Int(response.status.code), json, text, response.headers)
    }

    /// `result` of a 200 answer, or a test failure naming the status and body.
    func result(_ node: ServeTestNode, _ method: HTTPMethod, _ path: String, body: Any? = nil,
                file: StaticString = #filePath, line: UInt = #line) async throws -> Any {
        let r = try await request(node, method, path, body: body)
        guard r.status == 200, let o = r.json as? [String: Any], let result = o["result"] else {
            throw ServeTestFailure(description: "\(method) \(path) on \(node.id): \(r.status) \(r.text.prefix(500))")
        }
        return result
    }
}

extension ServeTestCluster {
    /// Every point id of `collection` through `node`'s scroll, page by page, in the order received.
    func scrollAll(_ node: ServeTestNode, _ collection: String, pageSize: Int) async throws -> [Int] {
        var seen: [Int] = []
        var offset: Any? = nil
        repeat {
            var body: [String: Any] = ["limit": pageSize, "with_payload": false]
            if let offset { body["offset"] = offset }
            let page = try await result(node, .POST, "/collections/\(collection)/points/scroll", body: body) as? [String: Any]
            seen += (page?["points"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
            offset = page?["next_page_offset"]
            if offset is NSNull { offset = nil }
        } while offset != nil
        return seen
    }
}

/// Runs `python` with `arguments`; its exit status and everything it printed.
func runPython(_ python: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

struct ServeTestFailure: Error, CustomStringConvertible {
    var description: String
}

/// The Python with qdrant-client 1.20.0 that tools/test.sh installs (STRATA_TEST_QDRANT_PYTHON):
/// a skip without it, a failure under CI (where a skip would hide broken wiring).
func qdrantClientPython() throws -> String {
    let env = ProcessInfo.processInfo.environment
    if let p = env["STRATA_TEST_QDRANT_PYTHON"], !p.isEmpty { return p }
    if env["CI"] == "true" { throw ServeTestFailure(description: "CI=true but STRATA_TEST_QDRANT_PYTHON is not set (tools/test.sh sets it)") }
    throw XCTSkip("STRATA_TEST_QDRANT_PYTHON not set: run tools/test.sh, which installs qdrant-client 1.20.0 (tools/qdrant-client.sh)")
}

extension StrataTestCase {
    /// Starts two nodes with an API key (no background compaction, flushes every 1,000 rows) and
    /// runs a qdrant-client check script (Tests/StrataTests/Server/`script`) against the second:
    /// it must exit 0 and print `"ok": true`.
    func runQdrantClientCheck(_ script: String, cluster name: String, nodes: (String, String)) throws {
        let python = try qdrantClientPython()
        let env = try RemoteTestEnvironment.current()
        let cluster = ServeTestCluster(env: env, name: name, scratch: tmp, apiKey: "test-key-\(UInt32.random(in: 0...UInt32.max))")
        addTeardownBlock { cluster.stopAll() }
        for id in [nodes.0, nodes.1] { try cluster.start(id, extra: ["--compact-interval", "0", "--flush-rows", "1000"]) }
        let path = repoRoot.appendingPathComponent("Tests/StrataTests/Server/\(script)").path
        let (status, text) = try runPython(python, [path, cluster.nodes[1].url, cluster.apiKey!])
        XCTAssertEqual(status, 0, "\(script): \(text.suffix(3000))\nnode \(nodes.1): \(cluster.nodes[1].log.suffix(2000))")
        XCTAssertTrue(text.contains("\"ok\": true"), text.suffix(2000).description)
    }
}
