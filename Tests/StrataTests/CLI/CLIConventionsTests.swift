// Command-line conventions a script relies on: `strata --version`, the versions in `dump --json` and
// `stats --json`, `strata help CMD` agreeing with `strata CMD --help`, and an unknown command
// refused with exit 2 (also when `--help` follows it). All through the built binary.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class CLIConventionsTests: StrataTestCase {
    /// Every subcommand name `strata` lists in its help (hidden ones included, from the source; there
    /// are none: the collection test rig is the separate `strata-soak` executable).
    static let subcommands = ["build", "dump", "verify", "search", "bench", "create", "insert", "import", "delete", "flush", "stats",
                              "compact", "recover", "scrub", "gc", "push", "pull", "bench-filter", "bench-remote", "bench-ingest", "gen", "serve", "scroll"]

    func jsonObject(_ r: CLIResult) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], "not one JSON object: \(r.stdoutText.prefix(300))")
    }

    func assertVersions(_ doc: [String: Any], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(doc["strata_version"] as? String, StrataRelease.version, "\(what): strata_version", file: file, line: line)
        let formats = doc["format_versions"] as? [String: String]
        XCTAssertEqual(formats, ["segment": "\(SegmentFormat.writerMajor).\(SegmentFormat.writerMinor)", "manifest": "1.0", "wal": "2.0"],
                       "\(what): format_versions", file: file, line: line)
    }

    func testVersion() throws {
        let r = try runStrata(["--version"], scratch: tmp)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdoutText.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "strata \(StrataRelease.version)")
        XCTAssertTrue(StrataRelease.version.range(of: #"^\d+\.\d+\.\d+$"#, options: .regularExpression) != nil)
        XCTAssertEqual(lines.dropFirst().first,
                       "segment format \(SegmentFormat.writerMajor).\(SegmentFormat.writerMinor), manifest format 1.0, WAL format 2.0")
    }

    func testVersionsInDumpAndStatsJSON() throws {
        let seg = try runStrata(["dump", GoldenV1.fixtureRelativePath, "--json"], scratch: tmp)
        XCTAssertEqual(seg.status, 0, seg.stderr)
        let segDoc = try jsonObject(seg)
        assertVersions(segDoc, "dump --json (segment)")
        XCTAssertEqual(segDoc["format_version"] as? String, "1.1", "the file's own version stays under format_version")

        let dir = tmp.appendingPathComponent("c").path
        try FileManager.default.copyItem(atPath: repoRoot.appendingPathComponent("Fixtures/collection-wal2.0").path, toPath: dir)
        let dump = try runStrata(["dump", dir, "--json"], scratch: tmp)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        assertVersions(try jsonObject(dump), "dump --json (collection)")
        let stats = try runStrata(["stats", dir, "--json"], scratch: tmp)
        XCTAssertEqual(stats.status, 0, stats.stderr)
        let statsDoc = try jsonObject(stats)
        assertVersions(statsDoc, "stats --json")
        XCTAssertNotNil(statsDoc["wal_format"], "existing keys stay")
    }

    func testHelpCommandAndHelpFlagAgree() throws {
        for name in Self.subcommands {
            let viaCommand = try runStrata(["help", name], scratch: tmp)
            let viaFlag = try runStrata([name, "--help"], scratch: tmp)
            XCTAssertEqual(viaCommand.status, 0, "strata help \(name): \(viaCommand.stderr)")
            XCTAssertEqual(viaFlag.status, 0, "strata \(name) --help: \(viaFlag.stderr)")
            XCTAssertEqual(viaCommand.stdoutText, viaFlag.stdoutText, "strata help \(name) and strata \(name) --help differ")
            XCTAssertTrue(viaFlag.stdoutText.contains("USAGE: strata \(name)"), "\(name) --help shows its own usage: \(viaFlag.stdoutText.prefix(200))")
        }
    }

    func testSubcommandListMatchesTheCommand() throws {
        // Guards the list above: a new subcommand must be added there (and so gets the help check).
        let help = try runStrata(["--help"], scratch: tmp)
        XCTAssertEqual(help.status, 0)
        for name in Self.subcommands where !name.hasPrefix("_") {
            XCTAssertTrue(help.stdoutText.contains("\n  \(name) "), "root help lists \(name)")
        }
        let listed = help.stdoutText.components(separatedBy: "SUBCOMMANDS:").last ?? ""
        let names = listed.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }
            return line.split(separator: " ").first.map(String.init)
        }.filter { $0 != "help" && !$0.hasPrefix("See") }
        XCTAssertEqual(Set(names).subtracting(Self.subcommands), [], "subcommands missing from CLIConventionsTests.subcommands")
    }

    func testUnknownCommandIsAUsageError() throws {
        for args in [["frobnicate", "--help"], ["frobnicate"], ["frobnicate", "-h"], ["help", "frobnicate"], ["--help", "frobnicate"], ["frobnicate", "x", "--json"]] {
            let r = try runStrata(args, scratch: tmp)
            XCTAssertEqual(r.status, 2, "strata \(args.joined(separator: " ")) exits 2")
            XCTAssertTrue(r.stderr.contains("unknown command 'frobnicate'"), "strata \(args.joined(separator: " ")): \(r.stderr)")
            XCTAssertFalse(r.stdoutText.contains("SUBCOMMANDS"), "no root help on stdout for \(args)")
        }
        // The known forms still work.
        XCTAssertEqual(try runStrata(["--help"], scratch: tmp).status, 0)
        XCTAssertEqual(try runStrata(["help"], scratch: tmp).status, 0)
        XCTAssertEqual(try runStrata(["dump", "--help"], scratch: tmp).status, 0)
    }

    /// The product ships no test rig: the collection test driver is `strata-soak`, not a hidden
    /// `strata` subcommand.
    func testTestDriverIsNotAStrataCommand() throws {
        let r = try runStrata(["_collection-test", "reader", tmp.path, "--seconds", "0"], scratch: tmp)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("unknown command '_collection-test'"), r.stderr)
        XCTAssertNotNil(strataSoakExecutable(), "strata-soak is built beside strata")
    }
}
