// The CLI's exit-code rule (README.md "Exit codes", `strata --help`): every StrataError code has one
// category (StrataError+Category.swift), data errors exit 1, usage and system errors exit 2. The
// table in the README and the help text are checked against the categories, and the built binary
// is run for every code the CLI can reach, checking both the code it prints and its exit status.
// Also: the busy code for a held writer lock, and --weights.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class CLIExitCodeTests: StrataTestCase {
    /// The exit status the rule gives a code.
    static func expectedExit(_ code: StrataError.Code) -> Int32 { code.category == .data ? 1 : 2 }

    // MARK: the documented table

    /// README.md's "Exit codes" table: code name -> exit status, each code in exactly one row.
    func readmeTable() throws -> [String: Int32] {
        let text = try String(contentsOf: repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try XCTUnwrap(text.range(of: "### Exit codes"), "README.md has an \"Exit codes\" section")
        var table: [String: Int32] = [:]
        for line in text[section.upperBound...].split(separator: "\n") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4, let exit = Int32(cells[1]) else { continue }
            // Backticked names in the codes cell (the rest of the cell is prose).
            for (i, part) in cells[3].split(separator: "`", omittingEmptySubsequences: false).enumerated() where i % 2 == 1 {
                XCTAssertNil(table[String(part)], "\(part) appears twice in README's exit-code table")
                table[String(part)] = exit
            }
            if line.hasPrefix("| 2 | system") { break }
        }
        return table
    }

    func testReadmeTableAndHelpListEveryCodeUnderItsExitStatus() throws {
        let table = try readmeTable()
        XCTAssertEqual(Set(table.keys), Set(StrataError.Code.allCases.map(\.rawValue)), "README lists exactly the codes that exist")
        for code in StrataError.Code.allCases {
            XCTAssertEqual(table[code.rawValue], Self.expectedExit(code), "README: \(code) (category \(code.category))")
        }
        XCTAssertEqual(StrataError.Code.busy.category, .system)
        XCTAssertEqual(StrataError.Code.invalidArgument.category, .usage)
        for code in [StrataError.Code.dimensionMismatch, .unknownColumn, .notFound, .invalidValue, .typeMismatch, .corrupt] {
            XCTAssertEqual(code.category, .data, "\(code) is a data error")
        }

        // `strata --help`: the code names sit under "1" or "2".
        let help = try runStrata(["--help"], scratch: tmp)
        XCTAssertEqual(help.status, 0)
        let text = help.stdoutText + help.stderr
        let one = try XCTUnwrap(text.range(of: "\n  1  ")), two = try XCTUnwrap(text.range(of: "\n  2  "))
        let end = text.range(of: "USAGE:")?.lowerBound ?? text.endIndex
        for code in StrataError.Code.allCases {
            let block = Self.expectedExit(code) == 1 ? text[one.upperBound..<two.lowerBound] : text[two.upperBound..<end]
            XCTAssertNotNil(block.range(of: "\\b\(code.rawValue)\\b", options: .regularExpression), "--help lists \(code) under exit \(Self.expectedExit(code))")
        }
    }

    // MARK: every reachable code, through the binary

    /// Runs `args`, expects `strata: CODE:` on stderr and the exit status of CODE's category.
    @discardableResult
    func expect(_ code: StrataError.Code, _ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> CLIResult {
        let r = try runStrata(args, scratch: tmp)
        XCTAssertFalse(r.crashed, "\(args) crashed: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("strata: \(code.rawValue): "), "\(args): expected \(code), stderr: \(r.stderr.prefix(400))", file: file, line: line)
        XCTAssertEqual(r.status, Self.expectedExit(code), "\(args): exit status for \(code); stderr: \(r.stderr.prefix(400))", file: file, line: line)
        return r
    }

    func segmentBytes() throws -> [UInt8] {
        [UInt8](try Data(contentsOf: repoRoot.appendingPathComponent(GoldenV1.fixtureRelativePath)))
    }

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = tmpPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testFileDamageExitsOne() throws {
        let good = try segmentBytes()
        var magic = good
        magic[0] ^= 0xFF
        try expect(.badMagic, ["dump", try write(magic, "magic.seg")])

        var newer = good
        let future = UInt8(SegmentFormat.readerMajor + 1)
        for at in [8, 12] { newer[at] = future; newer[at + 1] = 0 }    // major and min reader major past this build's
        Reseal.segment(&newer)
        try expect(.unsupportedVersion, ["dump", try write(newer, "future.seg")])

        var unsealed = good
        unsealed[12] = 2
        try expect(.checksumMismatch, ["dump", try write(unsealed, "unsealed.seg")])

        var cut = good                                                 // a page missing before the footer
        cut.removeSubrange(4096..<8192)
        try expect(.truncated, ["dump", try write(cut, "cut.seg")])

        var directory = good                                           // the footer's directory offset out of range
        Reseal.store64(&directory, directory.count - 64, 1 << 40)
        Reseal.segment(&directory)
        try expect(.corrupt, ["dump", try write(directory, "dir.seg")])

        var compression = good                                         // first directory entry: unknown compression
        let dirOffset = Int(Reseal.load64(good, good.count - 64))
        compression[dirOffset + 6] = 200
        Reseal.segment(&compression)
        try expect(.unsupportedFeature, ["dump", try write(compression, "compression.seg")])
    }

    func testInputDataErrorsExitOne() throws {
        let seg = GoldenV1.fixtureRelativePath                         // 8 dimensions, l2; columns title, count, score, flag, tags
        let q4 = tmpPath("q4.fvecs"), q8 = tmpPath("q8.fvecs"), huge = tmpPath("huge.fvecs"), nan = tmpPath("nan.fvecs")
        try fvecsData([[1, 2, 3, 4]]).write(to: URL(fileURLWithPath: q4))
        try fvecsData([[Float](repeating: 0.5, count: 8)]).write(to: URL(fileURLWithPath: q8))
        try fvecsData([[3e38] + [Float](repeating: 0, count: 7)]).write(to: URL(fileURLWithPath: huge))
        try fvecsData([[1, .nan] + [Float](repeating: 0, count: 6)]).write(to: URL(fileURLWithPath: nan))

        try expect(.dimensionMismatch, ["search", seg, "--query", q4])
        try expect(.unknownColumn, ["search", seg, "--query", q8, "--filter", #"{"must":[{"key":"nope","match":{"value":1}}]}"#])
        try expect(.unknownColumn, ["dump", seg, "--column", "nope"])
        try expect(.typeMismatch, ["search", seg, "--query", q8, "--filter", #"{"must":[{"key":"count","match":{"value":"x"}}]}"#])
        let big = try expect(.invalidValue, ["search", seg, "--query", huge])
        XCTAssertTrue(big.stderr.contains("squared norm"), big.stderr)

        // build: an overflowing vector (l2, ip, cosine), a NaN, a duplicate id. Nothing published.
        for metric in ["l2", "ip", "cosine"] {
            try expect(.invalidValue, ["build", "--vectors", huge, "--metric", metric, "--out", tmpPath("huge-\(metric).seg")])
            XCTAssertFalse(FileManager.default.fileExists(atPath: tmpPath("huge-\(metric).seg")))
        }
        try expect(.nonFiniteValue, ["build", "--vectors", nan, "--out", tmpPath("nan.seg")])
        let two = tmpPath("two.fvecs"), ids = tmpPath("ids.txt")
        try fvecsData([[Float](repeating: 1, count: 8), [Float](repeating: 2, count: 8)]).write(to: URL(fileURLWithPath: two))
        try Data("5\n5\n".utf8).write(to: URL(fileURLWithPath: ids))
        try expect(.duplicateId, ["build", "--vectors", two, "--ids", ids, "--out", tmpPath("dup.seg")])

        // Collections: insert of an overflowing vector, search with one.
        let dir = tmpPath("coll")
        XCTAssertEqual(try runStrata(["create", dir, "--dim", "8", "--metric", "ip"], scratch: tmp).status, 0)
        try expect(.invalidValue, ["insert", dir, "--vectors", huge])
        try expect(.invalidValue, ["search", dir, "--query", huge])
        XCTAssertEqual(try StrataCollection.open(path: dir, access: .readOnly).count(), 0, "nothing was inserted")
    }

    func testUsageAndSystemErrorsExitTwo() throws {
        let seg = GoldenV1.fixtureRelativePath
        let q8 = tmpPath("q8.fvecs")
        try fvecsData([[Float](repeating: 0.5, count: 8)]).write(to: URL(fileURLWithPath: q8))
        try expect(.invalidArgument, ["search", seg, "--query", q8, "--filter", #"{"must": ["#])
        let deep = FilterJSONTests.nested(levels: 65)
        let r = try expect(.invalidArgument, ["search", seg, "--query", q8, "--filter", deep])
        XCTAssertTrue(r.stderr.contains("at most 64 levels"), r.stderr)
        for bad in [#"{"must":[{"key":"count","match":{"value":1e400}}]}"#, #"{"must":[{"key":"title","match":{"value":"\ud800"}}]}"#] {
            let e = try expect(.invalidArgument, ["search", seg, "--query", q8, "--filter", bad])
            XCTAssertTrue(e.stderr.contains("filter.must[0].match.value"), e.stderr)
            XCTAssertFalse(e.stderr.contains("Expected to decode"), e.stderr)
        }
        try expect(.io, ["dump", tmpPath("missing.seg")])
        try expect(.io, ["search", tmpPath("missing-dir/"), "--query", q8])
    }

    func testHeldWriterLockIsBusyExitTwo() throws {
        let dir = tmpPath("coll")
        let v = tmpPath("v.fvecs")
        try fvecsData([[1, 2, 3, 4]]).write(to: URL(fileURLWithPath: v))
        XCTAssertEqual(try runStrata(["create", dir, "--dim", "4", "--metric", "l2"], scratch: tmp).status, 0)
        let holder = try StrataCollection.open(path: dir, access: .readWrite)     // holds LOCK (flock) in this process
        assertStrataError(.busy) { try StrataCollection.open(path: dir, access: .readWrite) }
        let insert = try expect(.busy, ["insert", dir, "--vectors", v])
        XCTAssertTrue(insert.stderr.contains("another process has the collection open for writing"), insert.stderr)
        try expect(.busy, ["delete", dir, "--ids", "1"])
        try expect(.busy, ["flush", dir])
        // Readers are not blocked by the writer.
        XCTAssertEqual(try runStrata(["stats", dir, "--json"], scratch: tmp).status, 0)
        holder.close()
        XCTAssertEqual(try runStrata(["insert", dir, "--vectors", v], scratch: tmp).status, 0, "free again once released")

        // compact's own busy lock is not an error: exit 0 with lock_busy (documented).
        let compactLock = try XCTUnwrap(try FileLock.acquire(CollectionFiles.compactLock(dir), wait: false))
        let c = try runStrata(["compact", dir, "--json"], scratch: tmp)
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: c.stdout) as? [String: Any])?["lock_busy"] as? Bool, true)
        compactLock.unlock()
    }

    func testWeightsMustBeFiniteNumbers() throws {
        let seg = GoldenV1.fixtureRelativePath
        let q8 = tmpPath("q8.fvecs")
        try fvecsData([[Float](repeating: 0.5, count: 8)]).write(to: URL(fileURLWithPath: q8))
        for bad in ["nan,1,1", "1,inf,1", "1,1,-inf", "1e400,1,1", "1e308,1e308,1", "1,,1,1", "1,1", "a,1,1"] {
            let r = try runStrata(["search", seg, "--query", q8, "--fusion", "weighted", "--weights", bad], scratch: tmp)
            XCTAssertEqual(r.status, 2, "--weights \(bad): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("--weights"), r.stderr)
        }
        XCTAssertEqual(try runStrata(["search", seg, "--query", q8, "--fusion", "weighted", "--weights", "1,0.5,-2"], scratch: tmp).status, 0)
    }
}
