// Collections across processes: a writer and a compactor killed with SIGKILL at random points
// (every acknowledged insert/upsert/delete must be there exactly once after reopening), a reader
// process searching while this process writes, flushes and compacts, and the CLI commands.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

#if canImport(Glibc)
import Glibc
#endif

final class CollectionCrashTests: CollectionTestCase {
    /// The driver's vector for (id, version) (`SoakDriverCommand.vector`, tools/soak).
    func driverVector(_ id: UInt64, _ version: Int64) -> [Float] {
        (0..<Self.dim).map { d in Float((Int64(id % 100_000) &* 31 &+ version &* 17 &+ Int64(d) &* 7) % 1000) / 100 - 5 }
    }

    func spawn(_ args: [String], output: URL) throws -> Process {
        guard let exe = strataSoakExecutable() else { throw XCTSkip("strata-soak executable not built (run swift build first)") }
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let p = Process()
        p.executableURL = exe
        p.arguments = args
        p.standardOutput = try FileHandle(forWritingTo: output)
        FileManager.default.createFile(atPath: output.appendingPathExtension("err").path, contents: nil)
        p.standardError = try FileHandle(forWritingTo: output.appendingPathExtension("err"))
        try p.run()
        return p
    }

    enum Op { case put(version: Int64, ids: [UInt64]), delete([UInt64]), flush }

    /// Parses the driver's "B n ..." / "A n" lines; returns the acknowledged ops in order and the
    /// one begun but not acknowledged, if any. A last line without its newline is ignored.
    func parse(_ text: String) -> (acked: [Op], inflight: Op?) {
        var lines = text.components(separatedBy: "\n")
        lines.removeLast() // "" after the final newline, or a partial line
        var begun: [Int: Op] = [:]
        var acked: [Op] = []
        var last: Int? = nil
        for line in lines {
            let f = line.split(separator: " ")
            if f.first == "B", f.count >= 3, let n = Int(f[1]) {
                let ids = f.count > 3 ? f[f.count - 1].split(separator: ",").compactMap { UInt64($0) } : []
                switch f[2] {
                case "P": begun[n] = .put(version: Int64(f[3])!, ids: ids)
                case "D": begun[n] = .delete(f.count > 3 ? f[3].split(separator: ",").compactMap { UInt64($0) } : [])
                default: begun[n] = .flush
                }
                last = n
            } else if f.first == "A", f.count == 2, let n = Int(f[1]), let op = begun[n] {
                acked.append(op)
                if last == n { last = nil }
            }
        }
        return (acked, last.flatMap { begun[$0] })
    }

    func apply(_ op: Op, to model: inout Model) {
        switch op {
        case .put(let v, let ids): for id in ids { model[id] = v }
        case .delete(let ids): for id in ids { model[id] = nil }
        case .flush: break
        }
    }

    /// Live content as id -> version, checking vectors and that no id is live twice.
    func content(_ c: StrataCollection) throws -> Model {
        var seen: Model = [:]
        try c.snapshot().forEachRow { r in
            guard case .int64(let v) = r.payload[0] else { XCTFail("bad payload"); return }
            XCTAssertNil(seen.updateValue(v, forKey: r.id), "id \(r.id) live twice")
            XCTAssertEqual(r.vector, self.driverVector(r.id, v), "vector of \(r.id)")
        }
        return seen
    }

    func testKillWriterAndCompactorAtRandomPoints() throws {
        let dir = tmpPath("c")
        try StrataCollection.create(path: dir, schema: Self.schema, options: options()).close()
        var model: Model = [:]
        var rng = SplitMix64(seed: 2026)
        let rounds = 30
        var acknowledged = 0, inflightApplied = 0, inflightLost = 0, tornTails = 0, simulatedTears = 0
        for round in 0..<rounds {
            let wout = tmp.appendingPathComponent("writer-\(round).out")
            let cout = tmp.appendingPathComponent("compactor-\(round).out")
            let writer = try spawn(["writer", dir, "--seed", String(round + 1), "--op-base", String(round * 1_000_000),
                                    "--flush-rows", String(60 + rng.int(200)), "--id-space", "1500"], output: wout)
            let compactor = try spawn(["compact-loop", dir, "--seconds", "60"], output: cout)
            // Kill each at its own random instant (startup of a debug binary takes ~0.1 s).
            let t1 = 0.15 + Double(rng.int(700)) / 1000, t2 = 0.15 + Double(rng.int(700)) / 1000
            let order = t1 < t2 ? [(t1, compactor), (t2, writer)] : [(t2, writer), (t1, compactor)]
            var elapsed = 0.0
            for (t, p) in order {
                usleep(UInt32(max(0, t - elapsed) * 1e6))
                elapsed = max(elapsed, t)
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
            let text = String(decoding: try Data(contentsOf: wout), as: UTF8.self)
            let errText = String(decoding: (try? Data(contentsOf: wout.appendingPathExtension("err"))) ?? Data(), as: UTF8.self)
            let cerr = String(decoding: (try? Data(contentsOf: cout.appendingPathExtension("err"))) ?? Data(), as: UTF8.self)
            XCTAssertEqual(errText, "", "writer stderr, round \(round)")
            XCTAssertEqual(cerr, "", "compactor stderr, round \(round)")
            let (acked, inflight) = parse(text)
            acknowledged += acked.count
            for op in acked { apply(op, to: &model) }
            // Reopen in this process: replays the WAL, moves a torn tail to a side file, removes the
            // writer's leftovers. A kill never damages a complete record, so the open must not refuse.
            let walSequence = try Manifest.read(directory: dir).walSequence
            let walPath = "\(dir)/\(CollectionFiles.walName(walSequence))"
            // Every third round, what a power cut during one more append would leave: a prefix of a
            // next record (never acknowledged, so not in the model). A kill -9 rarely tears a record
            // (the write system call is done or not), so this is how the campaign reaches torn tails.
            let scan = try WALReader.scan(path: walPath, sequence: walSequence, schema: Self.schema)
            if round % 3 == 1, scan.end == .clean {
                let record = WALFormat.encode(.put(rows: [BufferedInput(id: 999_999, vector: driverVector(999_999, 0), values: [.int64(0), .null])],
                                                   upsert: false), schema: Self.schema, number: scan.nextRecordNumber)
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: walPath))
                try handle.seekToEnd()
                try handle.write(contentsOf: record[0..<(1 + rng.int(record.count - 1))])
                try handle.close()
                simulatedTears += 1
            }
            let walBefore = try Data(contentsOf: URL(fileURLWithPath: walPath))
            let c = try StrataCollection.open(path: dir, options: options())
            if c.recovery.droppedBytes > 0 {
                tornTails += 1
                let side = try XCTUnwrap(c.recovery.tornTailFile, "round \(round)")
                XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(side)")), walBefore.suffix(Int(c.recovery.droppedBytes)),
                               "round \(round): the torn tail's bytes are kept exactly")
            }
            let got = try content(c)
            if got == model {
                if inflight != nil { inflightLost += 1 }
            } else if let inflight {
                var withInflight = model
                apply(inflight, to: &withInflight)
                XCTAssertEqual(got, withInflight, "round \(round): content is neither the acknowledged state nor it plus the in-flight op")
                model = withInflight
                inflightApplied += 1
            } else {
                let missing = model.filter { got[$0.key] != $0.value }.prefix(5)
                let extra = got.filter { model[$0.key] == nil }.prefix(5)
                XCTFail("round \(round): content differs from the acknowledged state; missing/wrong \(Array(missing)), extra \(Array(extra))")
                model = got
            }
            XCTAssertEqual(try c.count(), model.count)
            c.close()
            if round % 4 == 3 {
                let report = try StrataCollection.verify(path: dir)
                XCTAssertTrue(report.isSound, "round \(round): \(report.problems)")
            }
        }
        XCTAssertGreaterThan(acknowledged, rounds, "the writer got work done before being killed")
        // A final compaction recovers whatever the killed one left, and changes nothing visible.
        var policy = CompactionPolicy()
        policy.index = nil
        policy.graceSeconds = 0
        policy.mergeFactor = 2
        _ = try Compactor(path: dir, policy: policy).run()
        let c = try StrataCollection.open(path: dir, options: options())
        XCTAssertEqual(try content(c), model)
        try c.flush()
        XCTAssertEqual(try content(c), model)
        let report = try StrataCollection.verify(path: dir)
        XCTAssertTrue(report.isSound, "\(report.problems)")
        XCTAssertEqual(report.notes.filter { $0.contains("leftover") }, [])
        print("crash test: \(rounds) rounds, \(acknowledged) acknowledged ops, in-flight op applied \(inflightApplied), not applied \(inflightLost), "
              + "torn WAL tails moved aside \(tornTails) (\(simulatedTears) of them simulated power cuts), \(model.count) live rows")
        XCTAssertGreaterThanOrEqual(tornTails, simulatedTears)
    }

    /// A second process searches (read-only) while this one inserts, deletes, flushes and compacts
    /// with no grace period: each of its results equals a brute-force scan of its snapshot.
    func testReaderProcessDuringWritesFlushesAndCompactions() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options(flushRows: 100))
        try c.insert(rows(0..<300))
        let out = tmp.appendingPathComponent("reader.out")
        let reader = try spawn(["reader", dir, "--seconds", "4"], output: out)
        var policy = CompactionPolicy()
        policy.index = nil
        policy.graceSeconds = 0
        policy.tierBaseRows = 50
        policy.mergeFactor = 2
        var next: UInt64 = 300
        var rng = SplitMix64(seed: 9)
        var round = 0
        while reader.isRunning {
            try c.insert(rows(next..<(next + 15)))
            next += 15
            try c.delete(ids: (0..<4).map { _ in UInt64(rng.int(Int(next))) })
            if round % 5 == 0 { try c.flush() }
            if round % 7 == 0 { _ = try Compactor(path: dir, policy: policy).run() }
            round += 1
            usleep(5_000)
        }
        reader.waitUntilExit()
        XCTAssertEqual(reader.terminationStatus, 0, String(decoding: (try? Data(contentsOf: out.appendingPathExtension("err"))) ?? Data(), as: UTF8.self))
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [String: Any])
        XCTAssertEqual(report["mismatches"] as? Int, 0, "\(report)")
        XCTAssertEqual(report["errors"] as? Int, 0, "\(report)")
        XCTAssertGreaterThan(report["searches"] as? Int ?? 0, 5, "\(report)")
        XCTAssertGreaterThan(report["generations"] as? Int ?? 0, 1, "the reader saw new manifest versions: \(report)")
    }

    func testCLICommands() throws {
        let dir = tmpPath("cli.coll")
        let sample = SampleDataset.directory
        func run(_ args: [String], status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
            let r = try runStrata(args, scratch: tmp)
            XCTAssertEqual(r.status, status, "\(args): \(r.stderr)", file: file, line: line)
            return (try? JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]) ?? [:]
        }
        _ = try run(["create", dir, "--dim", "32", "--metric", "ip", "--schema", SampleDataset.schemaSpec, "--json"])
        _ = try run(["create", dir, "--dim", "32"], status: 1)
        let ins = try run(["insert", dir, "--vectors", sample.appendingPathComponent("base.fvecs").path,
                           "--payload", sample.appendingPathComponent("payload.tsv").path, "--batch", "250", "--flush-rows", "500",
                           "--no-index", "--json"])
        XCTAssertEqual(ins["rows"] as? Int, SampleDataset.baseCount)
        XCTAssertEqual(ins["batches"] as? Int, 8)
        let del = try run(["delete", dir, "--ids", "0..400,1000000", "--flush", "--json"])
        XCTAssertEqual(del["deleted"] as? Int, 400)
        XCTAssertEqual(del["ignored"] as? Int, 1)
        let stats = try run(["stats", dir, "--json"])
        XCTAssertEqual(stats["live_rows"] as? Int, 1600)
        XCTAssertEqual((stats["segments"] as? [Any])?.count, 4)
        let plan = try run(["compact", dir, "--dry-run", "--json", "--no-index"])
        XCTAssertEqual((plan["tasks"] as? [Any])?.count, 1)
        let done = try run(["compact", dir, "--json", "--no-index", "--grace-seconds", "0"])
        XCTAssertEqual((done["tasks"] as? [[String: Any]])?.first?["rows_written"] as? Int, 1600)
        _ = try run(["compact", dir, "--memory-budget", "lots"], status: 2)
        let search = try run(["search", dir, "--query", sample.appendingPathComponent("query.fvecs").path, "--k", "10",
                              "--groundtruth", sample.appendingPathComponent("groundtruth.ivecs").path, "--json"])
        XCTAssertEqual(search["queries"] as? Int, SampleDataset.queryCount)
        // Ground truth covers all 2,000 rows; ids 0..<400 are deleted, so recall is below 1 but the
        // results must never contain a deleted id.
        for r in search["results"] as? [[String: Any]] ?? [] {
            for h in r["hits"] as? [[String: Any]] ?? [] { XCTAssertGreaterThanOrEqual(h["id"] as? Int ?? 0, 400) }
        }
        let verify = try run(["verify", dir, "--json"])
        XCTAssertEqual(verify["ok"] as? Bool, true)
        let dump = try run(["dump", dir, "--json", "--rows", "0..3"])
        XCTAssertEqual((dump["rows"] as? [Any])?.count, 3)
        XCTAssertEqual(dump["live_rows"] as? Int, 1600)
        // A damaged manifest: verify exits 1.
        let m = "\(dir)/MANIFEST"
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: m)))
        bytes[20] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: m))
        let bad = try runStrata(["verify", dir], scratch: tmp)
        XCTAssertEqual(bad.status, 1, bad.stdoutText + bad.stderr)
        XCTAssertTrue(bad.stdoutText.contains("checksumMismatch"), bad.stdoutText)
    }
}
