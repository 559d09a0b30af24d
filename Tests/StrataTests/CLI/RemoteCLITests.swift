// The `strata` executable on collections at s3://BUCKET/PATH, against the real SeaweedFS and etcd
// (tools/services.sh): the same commands, output and exit codes as on a local collection, the
// head and WAL objects in `dump`, `verify` reading the store's bytes (a corrupted object is
// reported by name), and the settings from flags or the environment.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataRemote

final class RemoteCLITests: StrataTestCase {
    var sample: URL { SampleDataset.directory }
    var env: RemoteTestEnvironment!

    override func setUpWithError() throws {
        try super.setUpWithError()
        env = try RemoteTestEnvironment.current()
    }

    /// `s3://bucket/<unique prefix>` for one collection of this test.
    func address(_ name: String) -> String { "s3://\(env.bucket)/\(env.uniquePrefix(name))" }

    /// Runs `strata` with the services given as flags and a cache in the test's directory.
    func strata(_ args: [String], environment: [String: String] = [:]) throws -> CLIResult {
        let flags = ["--s3-endpoint", env.s3Endpoint, "--etcd", env.etcdEndpoint, "--cache-dir", tmpPath("cache")]
        // The services' own variables are cleared, so that the flags are what is used.
        let cleared = ["STRATA_S3_ENDPOINT": "", "STRATA_ETCD": "", "STRATA_CACHE_DIR": "", "STRATA_CACHE_BYTES": ""]
        return try runStrata(args + flags, scratch: tmp, environment: cleared.merging(environment) { $1 })
    }

    func json(_ r: CLIResult, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        let object = try JSONSerialization.jsonObject(with: r.stdout)
        return try XCTUnwrap(object as? [String: Any], "stdout is not a JSON object: \(r.stdoutText.prefix(500))", file: file, line: line)
    }

    /// Creates a collection of the sample's shape at `target` (a directory or an address) and
    /// inserts the sample's rows in batches of 500.
    func createAndInsert(_ target: String) throws {
        let created = try json(try strata(["create", target, "--dim", "32", "--metric", "cosine", "--schema", SampleDataset.schemaSpec, "--json"]))
        XCTAssertEqual(created["path"] as? String, target)
        XCTAssertEqual(created["dimension"] as? Int, 32)
        let inserted = try json(try strata(["insert", target, "--vectors", sample.appendingPathComponent("base.fvecs").path,
                                            "--payload", sample.appendingPathComponent("payload.tsv").path, "--batch", "500", "--json"]))
        XCTAssertEqual(inserted["rows"] as? Int, SampleDataset.baseCount)
        XCTAssertEqual(inserted["batches"] as? Int, 4)
        XCTAssertEqual(inserted["live_rows"] as? Int, SampleDataset.baseCount)
    }

    /// The ids and distances of `search --json`, per query.
    func results(_ doc: [String: Any]) throws -> [[String]] {
        let results = try XCTUnwrap(doc["results"] as? [[String: Any]])
        return try results.map { r in
            try XCTUnwrap(r["hits"] as? [[String: Any]]).map { "\($0["id"] ?? "?")@\($0["distance"] ?? "?")" }
        }
    }

    func testRemoteCollectionAnswersAsTheLocalOneDoes() throws {
        let remote = address("cli")
        let local = tmpPath("local")
        try createAndInsert(remote)
        try createAndInsert(local)
        let query = ["--query", sample.appendingPathComponent("query.fvecs").path, "--k", "10", "--exact",
                     "--groundtruth", sample.appendingPathComponent("groundtruth.ivecs").path, "--json"]

        // Searches before the flush: rows from WAL objects, exact; then after deletes and a flush.
        for phase in ["buffer", "flushed"] {
            let r = try json(try strata(["search", remote] + query))
            let l = try json(try strata(["search", local] + query))
            // Before the deletes, exact search reproduces the ground truth; after, both lack the same rows.
            if phase == "buffer" { XCTAssertEqual(r["recall_at_k"] as? Double, 1.0) }
            XCTAssertEqual(try results(r), try results(l), phase)
            XCTAssertEqual(r["queries"] as? Int, SampleDataset.queryCount)
            if phase == "buffer" {
                for target in [remote, local] {
                    let d = try json(try strata(["delete", target, "--ids", "1,5,10..20", "--json"]))
                    XCTAssertEqual(d["deleted"] as? Int, 12)
                    let f = try json(try strata(["flush", target, "--json"]))
                    XCTAssertEqual(f["flushed"] as? Bool, true)
                    XCTAssertEqual(f["rows"] as? Int, SampleDataset.baseCount - 12)
                }
            }
        }

        // stats --json: the same numbers (live_rows above all) as the local collection.
        let rs = try json(try strata(["stats", remote, "--json"]))
        let ls = try json(try strata(["stats", local, "--json"]))
        XCTAssertEqual(rs["live_rows"] as? Int, SampleDataset.baseCount - 12)
        for key in ["live_rows", "total_rows", "deleted_rows", "buffered_rows", "pending_deletes", "segment_bytes", "dimension", "metric"] {
            XCTAssertEqual(rs[key] as? NSObject, ls[key] as? NSObject, key)
        }
        XCTAssertEqual(rs["path"] as? String, remote)
        XCTAssertEqual((rs["segments"] as? [Any])?.count, 1)
        let human = try strata(["stats", remote])
        XCTAssertEqual(human.status, 0, human.stderr)
        XCTAssertTrue(human.stdoutText.contains("live rows \(SampleDataset.baseCount - 12)"), human.stdoutText)

        // dump: the head in etcd, the manifest, its segment; --segment NAME through the cache.
        let dump = try json(try strata(["dump", remote, "--json", "--rows", "0..3"]))
        let head = try XCTUnwrap(dump["head"] as? [String: Any])
        let prefix = String(remote.dropFirst("s3://\(env.bucket)/".count))
        XCTAssertEqual(head["key"] as? String, "/strata/v1/\(env.bucket)/\(prefix)/head")
        XCTAssertEqual(head["generation"] as? Int, dump["manifest_generation"] as? Int)
        XCTAssertTrue((head["manifest"] as? String)?.hasPrefix(prefix + "/man/") ?? false, "\(head)")
        XCTAssertEqual((dump["rows"] as? [Any])?.count, 3)
        XCTAssertNotNil(dump["wal_objects"] as? [Any])
        let segments = try XCTUnwrap(dump["segments"] as? [[String: Any]])
        XCTAssertEqual(segments.count, 1)
        let name = try XCTUnwrap(segments[0]["name"] as? String)
        let seg = try json(try strata(["dump", remote, "--segment", name, "--json"]))
        XCTAssertEqual(seg["rows"] as? Int, SampleDataset.baseCount - 12)
        XCTAssertEqual(seg["path"] as? String, "\(remote)/seg/\(name)")
        let text = try strata(["dump", remote])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdoutText.contains("head /strata/v1/"), text.stdoutText)
        XCTAssertTrue(text.stdoutText.contains(name), text.stdoutText)
        XCTAssertEqual(try strata(["dump", remote, "--segment", "seg-nothere.seg"]).status, 1)

        // verify: sound.
        let v = try strata(["verify", remote])
        XCTAssertEqual(v.status, 0, v.stdoutText + v.stderr)
        XCTAssertTrue(v.stdoutText.contains("OK"), v.stdoutText)
        let vj = try json(try strata(["verify", remote, "--json"]))
        XCTAssertEqual(vj["ok"] as? Bool, true)
        XCTAssertEqual(vj["live_rows"] as? Int, SampleDataset.baseCount - 12)
        XCTAssertEqual(vj["segments_checked"] as? Int, 1)
    }

    func testImportIntoARemoteCollectionAnswersAsALocalImport() throws {
        let remote = address("import")
        let local = tmpPath("import-local")
        let base = sample.appendingPathComponent("base.fvecs").path
        let payload = sample.appendingPathComponent("payload.tsv").path
        for target in [remote, local] {
            _ = try json(try strata(["create", target, "--dim", "32", "--metric", "cosine", "--schema", SampleDataset.schemaSpec, "--json"]))
        }
        let importArgs = ["--vectors", base, "--payload", payload, "--segment-rows", "800", "--threads", "2", "--json"]
        // Killed after its segments are uploaded, before its commit: nothing is visible.
        let killed = try strata(["import", remote] + importArgs, environment: ["STRATA_FAULT_EXIT_AT": "after-segment-upload"])
        XCTAssertEqual(killed.status, 86, killed.stderr)
        let empty = try json(try strata(["stats", remote, "--json"]))
        XCTAssertEqual(empty["live_rows"] as? Int, 0)
        // Once the killed writer's lease has lapsed, the same import runs in full.
        var done: CLIResult? = nil
        for _ in 0..<40 {
            let r = try strata(["import", remote] + importArgs)
            if r.status == 0 { done = r; break }
            XCTAssertTrue(r.stderr.contains("writer"), r.stderr)
            Thread.sleep(forTimeInterval: 0.5)
        }
        let r = try json(try XCTUnwrap(done, "the import never got the writer lease"))
        let l = try json(try strata(["import", local] + importArgs))
        for doc in [r, l] {
            XCTAssertEqual(doc["rows"] as? Int, SampleDataset.baseCount)
            XCTAssertEqual((doc["segments"] as? [String])?.count, (SampleDataset.baseCount + 799) / 800)
        }
        let query = ["--query", sample.appendingPathComponent("query.fvecs").path, "--k", "10", "--exact", "--json"]
        XCTAssertEqual(try results(try json(try strata(["search", remote] + query))), try results(try json(try strata(["search", local] + query))))
        let stats = try json(try strata(["stats", remote, "--json"]))
        XCTAssertEqual(stats["live_rows"] as? Int, SampleDataset.baseCount)
        // Every id is live now: a second import is refused (exit 1) and commits nothing.
        let again = try strata(["import", remote] + importArgs)
        XCTAssertEqual(again.status, 1, again.stderr)
        XCTAssertTrue(again.stderr.contains("already exists in the collection"), again.stderr)
    }

    func testVerifyReportsCorruptObjectsByName() async throws {
        let remote = address("corrupt")
        try createAndInsert(remote)
        XCTAssertEqual(try strata(["flush", remote]).status, 0)
        // Rows after the flush: a WAL object after the head (the query vectors, with payload lines of the base rows).
        let payload = try String(contentsOf: sample.appendingPathComponent("payload.tsv"), encoding: .utf8)
            .split(separator: "\n").prefix(SampleDataset.queryCount).joined(separator: "\n") + "\n"
        try payload.write(toFile: tmpPath("q.tsv"), atomically: true, encoding: .utf8)
        let more = try strata(["insert", remote, "--vectors", sample.appendingPathComponent("query.fvecs").path, "--payload", tmpPath("q.tsv"),
                               "--first-id", "100000"])
        XCTAssertEqual(more.status, 0, more.stderr)
        XCTAssertEqual(try strata(["verify", remote]).status, 0)
        let dump = try json(try strata(["dump", remote, "--json"]))
        let name = try XCTUnwrap((dump["segments"] as? [[String: Any]])?.first?["name"] as? String)
        let walKeys = try XCTUnwrap(dump["wal_objects"] as? [[String: Any]]).compactMap { $0["key"] as? String }
        XCTAssertFalse(walKeys.isEmpty)
        let prefix = String(remote.dropFirst("s3://\(env.bucket)/".count))

        // Flip one byte of the segment object in the store (the cache of the writer above still
        // holds a sound copy: verify must read the store's bytes) and of the last WAL object.
        let s3 = S3Client(configuration: try S3Configuration(endpoint: env.s3Endpoint, bucket: env.bucket, region: env.region,
                                                             accessKey: env.accessKey, secretKey: env.secretKey))
        let segmentKey = prefix + "/seg/" + name
        let walKey = walKeys.last!
        for (key, at) in [(segmentKey, 4096 + 17), (walKey, 40)] {
            var bytes = try await s3.get(key)
            bytes[min(at, bytes.count - 1)] ^= 0x40
            _ = try await s3.put(key, body: bytes, condition: .none)
        }
        try await s3.shutdown()

        let r = try strata(["verify", remote])
        XCTAssertEqual(r.status, 1, r.stdoutText + r.stderr)
        XCTAssertTrue(r.stdoutText.contains("CORRUPT"), r.stdoutText)
        let doc = try JSONSerialization.jsonObject(with: try strata(["verify", remote, "--json"]).stdout) as? [String: Any]
        XCTAssertEqual(doc?["ok"] as? Bool, false)
        let messages = (doc?["problems"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
        XCTAssertTrue(messages.contains { $0.hasPrefix("s3://\(env.bucket)/\(segmentKey): ") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.hasPrefix("s3://\(env.bucket)/\(walKey): ") }, "\(messages)")
    }

    func testExitCodesForBadAddressesAndUnreachableServices() throws {
        // A bad address is a usage error (2), whatever the command.
        for bad in ["s3://Bad_Bucket/x", "s3://\(env.bucket)", "s3://\(env.bucket)/a/../b"] {
            for args in [["stats", bad], ["create", bad, "--dim", "4"], ["verify", bad], ["insert", bad, "--vectors", "v.fvecs"]] {
                let r = try strata(args)
                XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
                XCTAssertTrue(r.stderr.contains("bad S3 address"), r.stderr)
            }
        }
        let remote = address("codes")
        // Unreachable etcd: an I/O error (2) naming etcd, not a hang.
        let down = try runStrata(["stats", remote, "--s3-endpoint", env.s3Endpoint, "--etcd", "http://127.0.0.1:1", "--cache-dir", tmpPath("c")],
                                 scratch: tmp)
        XCTAssertEqual(down.status, 2, down.stderr)
        XCTAssertTrue(down.stderr.contains("io:") && down.stderr.contains("127.0.0.1:1"), down.stderr)
        // No etcd or no endpoint at all: usage (2).
        let noEtcd = try runStrata(["stats", remote, "--s3-endpoint", env.s3Endpoint], scratch: tmp, environment: ["STRATA_ETCD": ""])
        XCTAssertEqual(noEtcd.status, 2, noEtcd.stderr)
        XCTAssertTrue(noEtcd.stderr.contains("--etcd"), noEtcd.stderr)
        let noS3 = try runStrata(["stats", remote, "--etcd", env.etcdEndpoint], scratch: tmp, environment: ["STRATA_S3_ENDPOINT": ""])
        XCTAssertEqual(noS3.status, 2, noS3.stderr)
        XCTAssertTrue(noS3.stderr.contains("--s3-endpoint"), noS3.stderr)
        // No collection at the address: 2, as for a missing directory.
        XCTAssertEqual(try strata(["stats", remote]).status, 2)
        XCTAssertEqual(try strata(["verify", remote]).status, 2)

        // Bad data is 1 and writes nothing; a second create is 1.
        XCTAssertEqual(try strata(["create", remote, "--dim", "8"]).status, 0)
        XCTAssertEqual(try strata(["create", remote, "--dim", "8"]).status, 1)
        let wrongDim = try strata(["insert", remote, "--vectors", sample.appendingPathComponent("base.fvecs").path])
        XCTAssertEqual(wrongDim.status, 1, wrongDim.stderr)
        XCTAssertTrue(wrongDim.stderr.contains("dimensionMismatch"), wrongDim.stderr)
        XCTAssertEqual(try json(try strata(["stats", remote, "--json"]))["live_rows"] as? Int, 0)
    }

    func testSettingsComeFromTheEnvironment() throws {
        let remote = address("env")
        let cache = tmpPath("env-cache")
        let environment = ["STRATA_S3_ENDPOINT": env.s3Endpoint, "STRATA_ETCD": env.etcdEndpoint, "STRATA_CACHE_DIR": cache,
                           "STRATA_CACHE_BYTES": "64M"]
        let run = { (args: [String]) in try runStrata(args, scratch: self.tmp, environment: environment) }
        XCTAssertEqual(try run(["create", remote, "--dim", "32", "--schema", SampleDataset.schemaSpec]).status, 0)
        let ins = try run(["insert", remote, "--vectors", sample.appendingPathComponent("base.fvecs").path,
                           "--payload", sample.appendingPathComponent("payload.tsv").path, "--flush"])
        XCTAssertEqual(ins.status, 0, ins.stderr)
        XCTAssertTrue(ins.stdoutText.contains("one WAL object per batch"), ins.stdoutText)
        // The flushed segment went through the cache directory the environment names.
        let cached = FileManager.default.enumerator(atPath: cache)?.compactMap { $0 as? String } ?? []
        XCTAssertTrue(cached.contains { $0.hasSuffix(".seg") }, "\(cached)")
        let stats = try run(["stats", remote, "--json"])
        XCTAssertEqual(stats.status, 0, stats.stderr)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: stats.stdout) as? [String: Any])?["live_rows"] as? Int, SampleDataset.baseCount)
        // A bad size in the environment is a usage error.
        let bad = try runStrata(["stats", remote], scratch: tmp, environment: environment.merging(["STRATA_CACHE_BYTES": "lots"]) { $1 })
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("STRATA_CACHE_BYTES"), bad.stderr)
    }

    func testPushCompactGCPullRoundTrip() throws {
        let local = tmpPath("local")
        let remote = address("maint")
        try createAndInsert(local)
        XCTAssertEqual(try strata(["flush", local]).status, 0)
        // push: the local collection becomes a remote one with the same rows.
        let pushed = try json(try strata(["push", local, remote, "--json"]))
        XCTAssertEqual(pushed["segments"] as? Int, 1)
        XCTAssertEqual(pushed["segment_rows"] as? Int, SampleDataset.baseCount)
        XCTAssertEqual(try strata(["push", local, remote]).status, 1, "a second push to the same address is refused")

        // Three small flushed segments and deletes: a merge for compact.
        let payload = try String(contentsOf: sample.appendingPathComponent("payload.tsv"), encoding: .utf8)
            .split(separator: "\n").prefix(SampleDataset.queryCount).joined(separator: "\n") + "\n"
        try payload.write(toFile: tmpPath("q.tsv"), atomically: true, encoding: .utf8)
        for first in [100_000, 100_100, 100_200] {
            let r = try strata(["insert", remote, "--vectors", sample.appendingPathComponent("query.fvecs").path, "--payload", tmpPath("q.tsv"),
                                "--first-id", String(first), "--flush", "--no-index"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        XCTAssertEqual(try json(try strata(["delete", remote, "--ids", "100000..100040", "--flush", "--json"]))["deleted"] as? Int, 40)
        let live = SampleDataset.baseCount + 3 * SampleDataset.queryCount - 40
        let plan = try json(try strata(["compact", remote, "--dry-run", "--merge-factor", "2", "--no-index", "--json"]))
        XCTAssertEqual((plan["tasks"] as? [Any])?.count, 1, "\(plan)")
        let compacted = try json(try strata(["compact", remote, "--merge-factor", "2", "--no-index", "--json"]))
        XCTAssertEqual(compacted["lock_busy"] as? Bool, false)
        let task = try XCTUnwrap((compacted["tasks"] as? [[String: Any]])?.first)
        XCTAssertEqual((task["inputs"] as? [String])?.count, 3)
        XCTAssertEqual(task["rows_written"] as? Int, 3 * SampleDataset.queryCount - 40)
        XCTAssertGreaterThan(compacted["bytes_uploaded"] as? Int ?? 0, 0)
        let stats = try json(try strata(["stats", remote, "--json"]))
        XCTAssertEqual(stats["live_rows"] as? Int, live)
        XCTAssertEqual((stats["segments"] as? [Any])?.count, 2)

        // gc: a dry run removes nothing; then the compacted inputs and flushed WAL objects go.
        let dry = try json(try strata(["gc", remote, "--grace-seconds", "0", "--dry-run", "--json"]))
        XCTAssertEqual(dry["dry_run"] as? Bool, true)
        let wouldGo = try XCTUnwrap(dry["deleted_objects"] as? Int)
        XCTAssertGreaterThanOrEqual((dry["deleted"] as? [String: [String: Any]])?["segment"]?["objects"] as? Int ?? 0, 3)
        let gc = try json(try strata(["gc", remote, "--grace-seconds", "0", "--json"]))
        XCTAssertEqual(gc["deleted_objects"] as? Int, wouldGo)
        XCTAssertEqual((gc["deleted_keys"] as? [Any])?.count, wouldGo)
        // Again: at most the manifest the first pass's commit replaced goes (gc keeps the head's predecessor one round).
        let again = try json(try strata(["gc", remote, "--grace-seconds", "0", "--json"]))
        XCTAssertEqual(Set((again["deleted"] as? [String: [String: Any]] ?? [:]).filter { ($0.value["objects"] as? Int ?? 0) > 0 }.keys)
                       .subtracting(["manifest"]), [], "\(again)")
        XCTAssertEqual(try strata(["verify", remote]).status, 0)

        // pull: a local copy that verifies and holds the same rows; not into a non-empty directory.
        let copy = tmpPath("copy")
        let pulled = try json(try strata(["pull", remote, copy, "--json"]))
        XCTAssertEqual(pulled["segments"] as? Int, 2)
        XCTAssertEqual(try strata(["verify", copy]).status, 0)
        XCTAssertEqual(try json(try strata(["stats", copy, "--json"]))["live_rows"] as? Int, live)
        XCTAssertEqual(try strata(["pull", remote, copy]).status, 1)

        // The wrong kind of argument is a usage error.
        XCTAssertEqual(try strata(["gc", local]).status, 2)
        XCTAssertEqual(try strata(["push", remote, remote]).status, 2)
        XCTAssertEqual(try strata(["pull", remote, remote]).status, 2)
        XCTAssertEqual(try strata(["gc", address("none"), "--grace-seconds", "0"]).status, 2, "no collection there")
    }
}
