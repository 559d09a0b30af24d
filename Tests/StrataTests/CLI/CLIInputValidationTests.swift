// The `strata` commands that take input files (build, insert, delete, search, bench), run as a
// process: a command with bad input fails before writing and names the row of the input file;
// a write that fails part-way says what was committed; FIFOs are refused, not waited on; a
// file-size limit is an I/O error with no temporary file left; invalid UTF-8 is rejected;
// options are never silently clamped or ignored; data-file errors exit 1, usage and I/O 2.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

#if canImport(Glibc)
import Glibc
#endif

final class CLIInputValidationTests: StrataTestCase {
    // MARK: helpers

    /// One run of the CLI under a wall-clock limit (killed after it, so that a regression that
    /// hangs fails the test instead of the suite).
    struct Run {
        var status: Int32
        var crashed: Bool
        var timedOut: Bool
        var stdout: String
        var stderr: String
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] }
    }

    /// Runs `strata args...`; with `shellPrefix`, through `bash -c "<prefix>; exec strata args"`
    /// (for `ulimit` and for arguments that are not valid UTF-8: `$'...'` quoting in `rawArgs`).
    /// Unlike `runStrata`, SIGXFSZ is left at its default action, so the CLI must ignore it itself.
    func run(_ args: [String], timeout: Double = 60, shellPrefix: String? = nil, rawArgs: String = "") throws -> Run {
        guard let exe = strataExecutable() else { throw XCTSkip("strata executable not built") }
        let out = tmp.appendingPathComponent("run-\(UUID().uuidString).out")
        let err = tmp.appendingPathComponent("run-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
        let p = Process()
        if shellPrefix != nil || !rawArgs.isEmpty {
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = ["-c", "\(shellPrefix ?? "true"); exec \"$0\" \"$@\" \(rawArgs)", exe.path] + args
        } else {
            p.executableURL = exe
            p.arguments = args
        }
        p.currentDirectoryURL = tmp
        let o = try FileHandle(forWritingTo: out), e = try FileHandle(forWritingTo: err)
        p.standardOutput = o
        p.standardError = e
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning, Date() < deadline { usleep(10_000) }
        let timedOut = p.isRunning
        if timedOut {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        try o.close()
        try e.close()
        return Run(status: p.terminationStatus, crashed: p.terminationReason == .uncaughtSignal, timedOut: timedOut,
                   stdout: String(decoding: try Data(contentsOf: out), as: UTF8.self),
                   stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self))
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = tmpPath(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func writeBytes(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = tmpPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `n` 4-d vectors (row i: [i + 1, i % 7, 1, 0.5]) as .fvecs, with `nanRow` holding a NaN.
    func vectors(_ name: String, rows n: Int, nanRow: Int? = nil) throws -> String {
        let rows = (0..<n).map { i -> [Float] in [Float(i + 1), Float(i % 7), i == nanRow ? .nan : 1, 0.5] }
        let path = tmpPath(name)
        try fvecsData(rows).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `name:string,n:int64` payload lines for `n` rows.
    func payload(_ name: String, rows n: Int) throws -> String {
        try write(name, (0..<n).map { "name \($0)\t\($0)\n" }.joined())
    }

    func createCollection(_ name: String = "c") throws -> String {
        let dir = tmpPath(name)
        let r = try run(["create", dir, "--dim", "4", "--metric", "l2", "--schema", "name:string,n:int64"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return dir
    }

    func liveRows(_ dir: String) throws -> Int {
        let c = try StrataCollection.open(path: dir, access: .readOnly)
        defer { c.close() }
        return try c.count()
    }

    func assertFails(_ r: Run, status: Int32, mentions: [String] = [], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(r.timedOut, "timed out (hung): \(r.stderr)", file: file, line: line)
        XCTAssertFalse(r.crashed, "killed by a signal: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.status, status, "stdout: \(r.stdout.prefix(300)) stderr: \(r.stderr)", file: file, line: line)
        for m in mentions { XCTAssertTrue(r.stderr.contains(m), "stderr should mention '\(m)': \(r.stderr)", file: file, line: line) }
    }

    /// Names of temporary files (`.NAME.tmp-...`, spool files) under `dir`, recursively.
    func temporaryFiles(under dir: String) -> [String] {
        let all = (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String]) ?? []
        return all.filter { $0.contains(".tmp-") || $0.contains(".col") && !$0.hasSuffix(".seg") }
    }

    // MARK: whole input checked before the first write

    func testInsertWritesNothingWhenAnyRowOfTheInputIsBad() throws {
        let dir = try createCollection()
        let p = try payload("p.tsv", rows: 100)
        // A NaN in row 75 with batches of 10: before, rows 0-69 were durable and the error said
        // "row 5 (id 75)"; now nothing is written and the error names the row of the file.
        let nan = try vectors("nan.fvecs", rows: 100, nanRow: 75)
        let r = try run(["insert", dir, "--vectors", nan, "--payload", p, "--batch", "10"])
        assertFails(r, status: 1, mentions: ["row 75 of", "nan.fvecs", "(id 75)"])
        XCTAssertEqual(try liveRows(dir), 0, "a rejected insert must write nothing")

        let good = try vectors("good.fvecs", rows: 100)
        // A bad payload cell on line 81, a repeated id (line 91 of the ids file repeats line 3),
        // a short ids file: each fails with nothing written, naming file and line.
        var lines = (0..<100).map { "name \($0)\t\($0)" }
        lines[80] = "name 80\teighty"
        let badPayload = try write("bad.tsv", lines.joined(separator: "\n") + "\n")
        assertFails(try run(["insert", dir, "--vectors", good, "--payload", badPayload, "--batch", "10"]), status: 1,
                    mentions: ["line 81", "bad.tsv"])
        var ids = (0..<100).map { String(1000 + $0) }
        ids[90] = "1002"
        let dupIds = try write("dup.ids", ids.joined(separator: "\n") + "\n")
        assertFails(try run(["insert", dir, "--vectors", good, "--ids", dupIds, "--batch", "10"]), status: 1,
                    mentions: ["row 90 of", "1002", "row 2"])
        let shortIds = try write("short.ids", (0..<60).map { "\($0)\n" }.joined())
        assertFails(try run(["insert", dir, "--vectors", good, "--ids", shortIds, "--batch", "10"]), status: 1,
                    mentions: ["line 61", "short.ids"])
        XCTAssertEqual(try liveRows(dir), 0)

        // Ids already in the collection: insert refuses the whole file up front, upsert replaces.
        XCTAssertEqual(try run(["insert", dir, "--vectors", good, "--payload", p, "--rows", "50..60"]).status, 0)
        let again = try run(["insert", dir, "--vectors", good, "--payload", p, "--batch", "10"])
        assertFails(again, status: 1, mentions: ["row 50 of", "already exists"])
        XCTAssertEqual(try liveRows(dir), 10)
        let upsert = try run(["insert", dir, "--vectors", good, "--payload", p, "--batch", "10", "--upsert"])
        XCTAssertEqual(upsert.status, 0, upsert.stderr)
        XCTAssertEqual(try liveRows(dir), 100)
    }

    func testInsertChecksFlagsBeforeWriting() throws {
        let dir = try createCollection()
        let v = try vectors("v.fvecs", rows: 20)
        let p = try payload("p.tsv", rows: 20)
        for flags in [["--payload-index", "nosuch"], ["--bm25", "n"], ["--bm25", "nosuch"], ["--flush-rows", "0"],
                      ["--flush-mb", "-1"], ["--flush-mb", "0"], ["--grace-seconds", "nan"], ["--grace-seconds", "-1"],
                      ["--grace-seconds", "inf"], ["--first-id", "18446744073709551610"], ["--rows", "5..30"], ["--rows", "25"]] {
            let r = try run(["insert", dir, "--vectors", v, "--payload", p] + flags)
            assertFails(r, status: 2)
            XCTAssertEqual(try liveRows(dir), 0, "\(flags) wrote rows")
        }
        for flags in [["--flush-rows", "0"], ["--grace-seconds", "nan"], ["--flush-mb", "-1"]] {
            assertFails(try run(["flush", dir] + flags), status: 2)
            assertFails(try run(["delete", dir, "--ids", "1"] + flags), status: 2)
        }
        assertFails(try run(["flush", dir, "--payload-index", "nosuch"]), status: 2, mentions: ["nosuch"])
    }

    func testInsertReportsTheRowsCommittedBeforeAWriteFailure() throws {
        // 2,000 rows in batches of 100 under a 160 KiB file-size limit: the WAL fills part-way.
        // The error and --json say how many rows were committed, their rows and ids, and the
        // --rows to resume with; resuming with them completes the file exactly.
        let dir = tmpPath("coll")
        XCTAssertEqual(try run(["create", dir, "--dim", "32", "--metric", "l2"]).status, 0)
        let base = SampleDataset.directory.appendingPathComponent("base.fvecs").path
        let r = try run(["insert", dir, "--vectors", base, "--batch", "100", "--no-index", "--first-id", "7", "--json"],
                        shellPrefix: "ulimit -f 160")
        assertFails(r, status: 2, mentions: ["were committed", "--rows"])
        let json = try XCTUnwrap(r.json, "stdout: \(r.stdout)")
        let committed = try XCTUnwrap(json["committed_rows"] as? Int)
        XCTAssertEqual(try liveRows(dir), committed)
        XCTAssertGreaterThan(committed, 0)
        XCTAssertEqual(committed % 100, 0)
        XCTAssertEqual(json["committed_file_rows"] as? [Int], [0, committed])
        XCTAssertEqual(json["committed_first_id"] as? Int, 7)
        XCTAssertEqual(json["committed_last_id"] as? Int, 7 + committed - 1)
        XCTAssertEqual(json["resume_rows"] as? String, "\(committed)..2000")
        XCTAssertTrue(r.stderr.contains("--rows \(committed)..2000 --first-id \(7 + committed)"), r.stderr)

        let resume = try run(["insert", dir, "--vectors", base, "--batch", "100", "--no-index",
                              "--rows", "\(committed)..2000", "--first-id", "\(7 + committed)"])
        XCTAssertEqual(resume.status, 0, resume.stderr)
        let c = try StrataCollection.open(path: dir, access: .readOnly)
        defer { c.close() }
        XCTAssertEqual(try c.count(), 2000)
        let file = try VectorFile(path: base)
        for row in [0, committed - 1, committed, 1999] {
            XCTAssertEqual(try c.get(id: UInt64(7 + row))?.vector, file.row(row), "row \(row)")
        }
    }

    // MARK: id arguments

    /// `ulimit -v` of 4 GiB for a child that must not allocate without bound; none when the suite
    /// runs under a sanitizer (tools/ci-extra.sh sets ASAN_OPTIONS / TSAN_OPTIONS), whose shadow
    /// memory alone reserves terabytes of address space.
    var addressSpaceLimit: String {
        let env = ProcessInfo.processInfo.environment
        return env["ASAN_OPTIONS"] != nil || env["TSAN_OPTIONS"] != nil ? "true" : "ulimit -v 4194304"
    }

    func testDeleteIdRangesAreStreamedAndBounded() throws {
        let dir = try createCollection()
        let v = try vectors("v.fvecs", rows: 100)
        XCTAssertEqual(try run(["insert", dir, "--vectors", v, "--payload", try payload("p.tsv", rows: 100)]).status, 0)
        // Many large ranges in a short argument: before, each range became an array (gigabytes,
        // exit 134); now a usage error at once. The child runs under a 4 GiB address-space limit
        // so that a regression fails without exhausting the machine.
        let many = (0..<30).map { "\($0 * 100_000_000)..\(($0 + 1) * 100_000_000)" }.joined(separator: ",")
        let r = try run(["delete", dir, "--ids", many], timeout: 60, shellPrefix: addressSpaceLimit)
        assertFails(r, status: 2, mentions: ["at most"])
        XCTAssertEqual(try liveRows(dir), 100)
        // Ranges, single ids, an empty range and the largest id, streamed in small batches.
        let ok = try run(["delete", dir, "--ids", "10..20,5,5,30..30,18446744073709551615,90..1000000", "--batch", "7", "--json"],
                         shellPrefix: addressSpaceLimit)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(ok.json?["requested"] as? Int, 10 + 2 + 1 + (1_000_000 - 90))
        XCTAssertEqual(ok.json?["deleted"] as? Int, 10 + 1 + 10)
        XCTAssertEqual(try liveRows(dir), 100 - 21)
        // An ids file is checked whole before anything is deleted.
        let ids = try write("ids.txt", "40\n41\n\n42\nforty-three\n44\n")
        assertFails(try run(["delete", dir, "--ids-file", ids]), status: 1, mentions: ["line 5", "forty-three"])
        XCTAssertEqual(try liveRows(dir), 79)
    }

    func testFirstIdIsTheIdOfTheFirstInsertedRowAndCannotOverflow() throws {
        let dir = try createCollection()
        let v = try vectors("v.fvecs", rows: 100)
        let p = try payload("p.tsv", rows: 100)
        // Before: 18446744073709551610 + row wrapped around to 0.
        let over = try run(["insert", dir, "--vectors", v, "--payload", p, "--first-id", "18446744073709551610"])
        assertFails(over, status: 2, mentions: ["18446744073709551610"])
        XCTAssertEqual(try liveRows(dir), 0)
        // The last id that fits: 100 rows ending at UInt64.max.
        XCTAssertEqual(try run(["insert", dir, "--vectors", v, "--payload", p, "--first-id", "18446744073709551516"]).status, 0)
        // --rows 50..60 --first-id 1000: ids 1000..1009 for rows 50..59 (before: 1050..1059).
        let r = try run(["insert", dir, "--vectors", v, "--payload", p, "--rows", "50..60", "--first-id", "1000"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let c = try StrataCollection.open(path: dir, access: .readOnly)
        defer { c.close() }
        XCTAssertEqual(try c.get(id: 1000)?.payload.first, .string("name 50"))
        XCTAssertEqual(try c.get(id: 1009)?.payload.first, .string("name 59"))
        XCTAssertNil(try c.get(id: 1050))
        XCTAssertEqual(try c.get(id: UInt64.max)?.payload.first, .string("name 99"))
        let help = try run(["insert", "--help"])
        XCTAssertTrue(help.stdout.contains("first row inserted"), help.stdout)
    }

    // MARK: files that are not regular files

    func testFIFOsAndDirectoriesAreRefusedNotWaitedOn() throws {
        let fifo = tmpPath("fifo")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let dir = try createCollection()
        let v = try vectors("v.fvecs", rows: 10)
        let p = try payload("p.tsv", rows: 10)
        let seg = tmpPath("s.seg")
        XCTAssertEqual(try run(["build", "--vectors", v, "--out", seg]).status, 0)
        // Before, each of these blocked in open(2) waiting for a writer (forever).
        let cases: [[String]] = [
            ["build", "--vectors", fifo, "--out", tmpPath("x.seg")],
            ["build", "--vectors", v, "--payload", fifo, "--schema", "name:string,n:int64", "--out", tmpPath("x.seg")],
            ["build", "--vectors", v, "--ids", fifo, "--out", tmpPath("x.seg")],
            ["insert", dir, "--vectors", fifo],
            ["insert", dir, "--vectors", v, "--payload", fifo],
            ["insert", dir, "--vectors", v, "--payload", p, "--ids", fifo],
            ["delete", dir, "--ids-file", fifo],
            ["dump", fifo], ["verify", fifo],
            ["search", fifo, "--query", v],
            ["search", seg, "--query", fifo],
            ["search", seg, "--query", v, "--groundtruth", fifo],
        ]
        for args in cases {
            let r = try run(args, timeout: 10)
            assertFails(r, status: 2, mentions: ["FIFO"])
        }
        XCTAssertEqual(try liveRows(dir), 0)
        // A directory as the vector file: said so, not "mmap failed: No such device".
        let d = try run(["build", "--vectors", tmp.path, "--out", tmpPath("y.seg")])
        assertFails(d, status: 2, mentions: ["directory"])
        XCTAssertFalse(d.stderr.contains("mmap"), d.stderr)
    }

    // MARK: file-size limit

    func testFileSizeLimitIsAnIOErrorAndLeavesNoTemporaryFiles() throws {
        // SIGXFSZ is at its default action here (killing the process, exit 153) unless the CLI
        // ignores it; the write then fails with EFBIG and the writers clean up.
        let base = SampleDataset.directory.appendingPathComponent("base.fvecs").path
        let payload = SampleDataset.directory.appendingPathComponent("payload.tsv").path
        let out = tmpPath("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let build = try run(["build", "--vectors", base, "--payload", payload, "--schema", SampleDataset.schemaSpec,
                             "--out", out + "/a.seg"], shellPrefix: "ulimit -f 100")
        assertFails(build, status: 2, mentions: ["io"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), [], "temporary and spool files must be removed")

        // insert: the WAL fits (145 KB for these 1,000 rows), an automatic flush's segment (172 KB)
        // does not.
        let dir = tmpPath("coll")
        XCTAssertEqual(try run(["create", dir, "--dim", "32", "--metric", "ip", "--schema", "n:int64"]).status, 0)
        let numbers = try write("n.tsv", (0..<1000).map { "\($0)\n" }.joined())
        let ins = try run(["insert", dir, "--vectors", base, "--payload", numbers, "--rows", "0..1000", "--flush-rows", "1000",
                           "--no-index"], shellPrefix: "ulimit -f 155")
        assertFails(ins, status: 2, mentions: ["io"])
        XCTAssertEqual(temporaryFiles(under: dir), [], "temporary and spool files must be removed")
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir).contains { $0.hasSuffix(".seg") })
        // The batch was durable in the WAL before the flush failed: the error says so.
        XCTAssertTrue(ins.stderr.contains("1000 rows were committed"), ins.stderr)
        XCTAssertEqual(try liveRows(dir), 1000)
    }

    // MARK: UTF-8

    func testInvalidUTF8InPayloadIsRejectedWithLineAndColumn() throws {
        let v = try vectors("v.fvecs", rows: 3)
        let p = try writeBytes("p.tsv", Array("a\t1\n".utf8) + Array("ok\t2\n".utf8) + [0x78, 0x79, 0xFF, 0x7A, 0x09, 0x33, 0x0A])
        let seg = tmpPath("s.seg")
        let r = try run(["build", "--vectors", v, "--payload", p, "--schema", "name:string,n:int64", "--out", seg])
        assertFails(r, status: 1, mentions: ["line 3", "column 3", "'name'", "0xFF", "UTF-8"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: seg))
        let dir = try createCollection()
        assertFails(try run(["insert", dir, "--vectors", v, "--payload", p]), status: 1, mentions: ["line 3", "UTF-8"])
        XCTAssertEqual(try liveRows(dir), 0)
    }

    func testNonUTF8PathsAreRefusedNotRenamed() throws {
        let v = try vectors("v.fvecs", rows: 3)
        // `--out x<FF>.seg`: before, written as "x\u{FFFD}.seg"; a non-UTF-8 input path was
        // reported as missing under its repaired name.
        let r = try run(["build", "--vectors", v, "--out"], rawArgs: "$'x\\xff.seg'")
        assertFails(r, status: 2, mentions: ["not valid UTF-8", "x\\xFF.seg"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.hasPrefix("x") }, [])
        // A valid non-ASCII path works, byte for byte.
        let ok = try run(["build", "--vectors", v, "--out", "é 日本.seg"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: tmpPath("é 日本.seg")))
    }

    // MARK: options that were clamped or ignored

    func testOptionsAreNeverSilentlyClampedOrIgnored() throws {
        let sample = SampleDataset.directory
        let query = sample.appendingPathComponent("query.fvecs").path
        // bench: L below k printed an empty table with exit 0.
        assertFails(try run(["bench", "--dataset", sample.path, "--L", "5", "--k", "10"]), status: 2)
        assertFails(try run(["bench", "--dataset", sample.path, "--k", "5000"]), status: 2)
        // bench --filter runs the filtered sweep, whose L and rerank must cover recall@10, as bench-filter's.
        assertFails(try run(["bench", "--dataset", sample.path, "--segment", tmpPath("absent.seg"), "--filter", "f", "--L", "5"]),
                    status: 2, mentions: [">= 10"])
        // --memory-budget 1K said "needs at least 0 MiB" after writing the vectors.
        let tiny = try run(["build", "--vectors", sample.appendingPathComponent("base.fvecs").path, "--index", "--memory-budget", "1K",
                            "--out", tmpPath("m.seg")])
        assertFails(tiny, status: 2, mentions: ["64M"])
        XCTAssertFalse(tiny.stderr.contains("0 MiB"), tiny.stderr)

        // Ground truth that cannot support the recall asked for.
        let seg = tmpPath("s.seg")
        XCTAssertEqual(try run(["build", "--vectors", sample.appendingPathComponent("base.fvecs").path, "--metric", "ip", "--out", seg]).status, 0)
        let gt = sample.appendingPathComponent("groundtruth.ivecs").path
        let fine = try run(["search", seg, "--query", query, "--groundtruth", gt, "--k", "10", "--json"])
        XCTAssertEqual(fine.status, 0, fine.stderr)
        XCTAssertEqual(fine.json?["recall_at_k"] as? Double, 1.0)
        // k above the ground truth's width: before, 'recall@200 1.0000'.
        assertFails(try run(["search", seg, "--query", query, "--groundtruth", gt, "--k", "200"]), status: 2, mentions: ["recall@200"])
        // Fewer ground-truth records than queries.
        let short = tmpPath("short.ivecs")
        try ivecsData((0..<10).map { _ in (0..<10).map { Int32($0) } }).write(to: URL(fileURLWithPath: short))
        assertFails(try run(["search", seg, "--query", query, "--groundtruth", short]), status: 2, mentions: ["10 records"])
        XCTAssertEqual(try run(["search", seg, "--query", query, "--groundtruth", short, "--limit", "10"]).status, 0)
        // Ids out of range: bad data.
        let wild = tmpPath("wild.ivecs")
        try ivecsData((0..<SampleDataset.queryCount).map { q in (0..<10).map { Int32(q == 3 && $0 == 4 ? 5000 : $0) } })
            .write(to: URL(fileURLWithPath: wild))
        assertFails(try run(["search", seg, "--query", query, "--groundtruth", wild]), status: 1, mentions: ["record 3", "5000"])

        // --list-size on a segment: graph search when it has an index, an error when it has none
        // (before: ignored, exact search either way); --list-size below k is an error.
        assertFails(try run(["search", seg, "--query", query, "--list-size", "32"]), status: 2, mentions: ["index"])
        assertFails(try run(["search", seg, "--query", query, "--list-size", "5", "--k", "10"]), status: 2)
        XCTAssertEqual(try run(["search", seg, "--query", query, "--exact", "--limit", "2"]).status, 0)
        let indexed = tmpPath("i.seg")
        XCTAssertEqual(try run(["build", "--vectors", sample.appendingPathComponent("base.fvecs").path, "--metric", "ip", "--index",
                                "--min-index-rows", "100", "--out", indexed]).status, 0)
        let graph = try run(["search", indexed, "--query", query, "--list-size", "16", "--k", "10", "--limit", "5"])
        XCTAssertEqual(graph.status, 0, graph.stderr)
        XCTAssertTrue(graph.stdout.contains("graph L=16"), graph.stdout)

        // Collections: --list-size 0 became k.
        let dir = tmpPath("coll")
        XCTAssertEqual(try run(["create", dir, "--dim", "32", "--metric", "ip"]).status, 0)
        XCTAssertEqual(try run(["insert", dir, "--vectors", sample.appendingPathComponent("base.fvecs").path, "--rows", "0..100"]).status, 0)
        assertFails(try run(["search", dir, "--query", query, "--list-size", "0"]), status: 2)
        // insert --rows past the end of the file inserted what there was.
        assertFails(try run(["insert", dir, "--vectors", sample.appendingPathComponent("base.fvecs").path, "--rows", "1990..2030"]),
                    status: 2, mentions: ["2000 rows"])
        XCTAssertEqual(try liveRows(dir), 100)
    }

    // MARK: exit codes of data-file errors

    func testDataFileErrorsExitOneUsageAndIOExitTwo() throws {
        let v = try vectors("v.fvecs", rows: 3)
        let schema = ["--schema", "name:string,n:int64"]
        // Bad data: 1, whatever the kind.
        let empty = try writeBytes("empty.fvecs", [])
        assertFails(try run(["build", "--vectors", empty, "--out", tmpPath("a.seg")]), status: 1, mentions: ["empty"])
        let ragged = try writeBytes("ragged.fvecs", Array(fvecsData([[1, 2, 3, 4]])) + [1, 2])
        assertFails(try run(["build", "--vectors", ragged, "--out", tmpPath("a.seg")]), status: 1)
        let columns = try write("columns.tsv", "a\t1\nb\t2\textra\nc\t3\n")
        assertFails(try run(["build", "--vectors", v, "--payload", columns, "--out", tmpPath("a.seg")] + schema), status: 1,
                    mentions: ["line 2", "3 fields"])
        let type = try write("type.tsv", "a\t1\nb\ttwo\nc\t3\n")
        assertFails(try run(["build", "--vectors", v, "--payload", type, "--out", tmpPath("a.seg")] + schema), status: 1, mentions: ["line 2"])
        let extra = try write("extra.tsv", "a\t1\nb\t2\nc\t3\nd\t4\n")
        assertFails(try run(["build", "--vectors", v, "--payload", extra, "--out", tmpPath("a.seg")] + schema), status: 1, mentions: ["more lines"])
        let ids = try write("ids.txt", "1\n2\nthree\n")
        assertFails(try run(["build", "--vectors", v, "--ids", ids, "--out", tmpPath("a.seg")]), status: 1, mentions: ["line 3"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmpPath("a.seg")))
        // Usage and I/O: 2.
        assertFails(try run(["build", "--vectors", tmpPath("missing.fvecs"), "--out", tmpPath("a.seg")]), status: 2)
        assertFails(try run(["build", "--vectors", tmp.path, "--out", tmpPath("a.seg")]), status: 2, mentions: ["directory"])

        // bench-filter --bm25-column with no queries.tsv: a typed io error, not NSCocoaErrorDomain.
        let sample = SampleDataset.directory
        let seg = tmpPath("s.seg")
        XCTAssertEqual(try run(["build", "--vectors", sample.appendingPathComponent("base.fvecs").path,
                                "--payload", sample.appendingPathComponent("payload.tsv").path, "--schema", SampleDataset.schemaSpec,
                                "--bm25", "summary", "--out", seg]).status, 0)
        let dataset = tmpPath("dataset")
        try FileManager.default.createDirectory(atPath: dataset, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: sample.appendingPathComponent("query.fvecs").path, toPath: dataset + "/query.fvecs")
        let r = try run(["bench-filter", "--dataset", dataset, "--segment", seg, "--bm25-column", "summary", "--limit", "5", "--passes", "1"])
        assertFails(r, status: 2, mentions: ["queries.tsv"])
        XCTAssertFalse(r.stderr.contains("NSCocoaErrorDomain"), r.stderr)
    }

    // MARK: sparse vectors

    func testBuildTakesSparseVectorsForSparseSearch() throws {
        let v = try vectors("v.fvecs", rows: 4)
        // Row 2 has none; entries by comma or space; duplicates are summed.
        let sparse = try write("sparse.txt", "3:0.5,17:1.25\n17:2 3:0.25\n\n3:1,3:1\n")
        let seg = tmpPath("s.seg")
        let b = try run(["build", "--vectors", v, "--sparse-vectors", sparse, "--metric", "l2", "--out", seg])
        XCTAssertEqual(b.status, 0, b.stderr)
        let s = try Segment.open(path: seg)
        XCTAssertEqual(try s.sparseSearch(query: SparseVector(indices: [17], values: [1]), k: 4).map(\.id), [1, 0])
        XCTAssertEqual(try s.sparseSearch(query: SparseVector(indices: [3], values: [1]), k: 4).map(\.id), [3, 0, 1])
        let r = try run(["search", seg, "--sparse", "17:1", "--k", "2", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(((r.json?["results"] as? [[String: Any]])?.first?["hits"] as? [[String: Any]])?.compactMap { $0["id"] as? Int }, [1, 0])
        // Bad lines are bad data, named by line.
        for (text, mention) in [("3:0.5\n7\n\n\n", "line 2"), ("3:0.5\n\n1:nan\n\n", "line 3"), ("3:0.5\n\n\n", "line 4")] {
            let bad = try write("bad.txt", text)
            assertFails(try run(["build", "--vectors", v, "--sparse-vectors", bad, "--out", tmpPath("b.seg")]), status: 1, mentions: [mention])
        }
    }
}
