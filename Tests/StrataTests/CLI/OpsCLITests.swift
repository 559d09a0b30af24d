// `strata scroll` (pages in id order, hostile limits and cursors refused with exit 2), `strata stats
// --parts --json` (parts add up to the files) and `--progress json` (one parseable object per line
// on stderr, ending with the phase done), run as a process.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class OpsCLITests: StrataTestCase {
    static let schema = SegmentSchema(dimension: 4, elementType: .float32, metric: .l2,
                                      columns: [ColumnSpec(name: "n", type: .int64), ColumnSpec(name: "s", type: .string, nullable: true)])

    /// A collection with two segments, deletes and a buffered tail; returns its directory and live ids.
    func makeCollection() throws -> (String, [UInt64]) {
        let dir = tmpPath("c")
        var o = CollectionOptions()
        o.index = nil
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: o)
        func rows(_ ids: [UInt64]) -> [SegmentRow] {
            ids.map { SegmentRow(id: $0, vector: [Float($0), 1, 2, 3], payload: ["n": .int64(Int64($0)), "s": $0 % 2 == 0 ? .string("e") : .null]) }
        }
        var live = Set<UInt64>()
        try c.insert(rows(Array(stride(from: 100, to: 0, by: -2)).map(UInt64.init)))
        try c.flush()
        try c.insert(rows((0..<40).map { UInt64($0 * 5 + 101) }))
        try c.delete(ids: [2, 4, 6, 111])
        try c.flush()
        try c.insert(rows([1000, 3, 7]))
        try c.delete(ids: [8])
        for id in stride(from: 100, to: 0, by: -2) { live.insert(UInt64(id)) }
        for i in 0..<40 { live.insert(UInt64(i * 5 + 101)) }
        live.subtract([2, 4, 6, 111, 8])
        live.formUnion([1000, 3, 7])
        c.close()
        return (dir, live.sorted())
    }

    func jsonObject(_ data: Data) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func testScrollPages() throws {
        let (dir, live) = try makeCollection()
        var got: [UInt64] = []
        var after: UInt64? = nil
        for _ in 0..<100 {
            let r = try runStrata(["scroll", dir, "--limit", "9", "--json"] + (after.map { ["--after", String($0)] } ?? []), scratch: tmp)
            XCTAssertEqual(r.status, 0, r.stderr)
            let doc = try jsonObject(r.stdout)
            let rows = try XCTUnwrap(doc["rows"] as? [[String: Any]])
            got += rows.compactMap { ($0["id"] as? NSNumber)?.uint64Value }
            XCTAssertEqual((rows.first?["payload"] as? [String: Any])?["n"] as? Int, rows.first.flatMap { ($0["id"] as? NSNumber)?.intValue })
            XCTAssertTrue(doc.keys.contains("next_id"), "next_id is always present (null after the last page)")
            guard let next = (doc["next_id"] as? NSNumber)?.uint64Value else { break }
            after = next
        }
        XCTAssertEqual(got, live)
        // A filter, and vectors on request.
        let f = try runStrata(["scroll", dir, "--limit", "1000", "--filter", #"{"must":[{"is_null":{"key":"s"}}]}"#, "--vectors", "--json"], scratch: tmp)
        XCTAssertEqual(f.status, 0, f.stderr)
        let rows = try XCTUnwrap(try jsonObject(f.stdout)["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.compactMap { ($0["id"] as? NSNumber)?.uint64Value }, live.filter { $0 % 2 == 1 })
        XCTAssertEqual((rows.first?["vector"] as? [Double])?.count, 4)
        // Text output ends with the cursor line.
        let text = try runStrata(["scroll", dir, "--limit", "2"], scratch: tmp)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdoutText.hasSuffix("next: --after \(live[1])\n"), text.stdoutText)
    }

    func testScrollRefusesHostileArguments() throws {
        let (dir, _) = try makeCollection()
        for args in [["--limit", "0"], ["--limit", "-1"], ["--limit", "100001"], ["--limit", "99999999999999999999"], ["--limit", "x"],
                     ["--after", "-1"], ["--after", "18446744073709551616"], ["--after", "1e3"], ["--filter", "{"]] {
            let r = try runStrata(["scroll", dir, "--json"] + args, scratch: tmp)
            XCTAssertFalse(r.crashed, "\(args)")
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stdoutText, "", "\(args)")
        }
        // A filter on a column the collection lacks is a data error (exit 1), as for `search --filter`.
        let unknown = try runStrata(["scroll", dir, "--filter", #"{"must":[{"is_null":{"key":"nope"}}]}"#], scratch: tmp)
        XCTAssertEqual(unknown.status, 1, unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("unknownColumn"), unknown.stderr)
    }

    func testStatsParts() throws {
        let (dir, _) = try makeCollection()
        let r = try runStrata(["stats", dir, "--parts", "--json"], scratch: tmp)
        XCTAssertEqual(r.status, 0, r.stderr)
        let parts = try XCTUnwrap(try jsonObject(r.stdout)["parts"] as? [String: Any])
        let files = try XCTUnwrap(parts["files"] as? [[String: Any]])
        var sum: UInt64 = 0
        for f in files {
            let name = try XCTUnwrap(f["name"] as? String)
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: "\(dir)/\(name)")[.size] as? NSNumber).uint64Value
            XCTAssertEqual((f["bytes"] as? NSNumber)?.uint64Value, size, name)
            let p = try XCTUnwrap(f["parts"] as? [[String: Any]])
            XCTAssertEqual(p.reduce(UInt64(0)) { $0 + (($1["bytes"] as? NSNumber)?.uint64Value ?? 0) }, size, name)
            sum += size
        }
        XCTAssertEqual((parts["total_bytes"] as? NSNumber)?.uint64Value, sum)
        let totals = try XCTUnwrap(parts["totals"] as? [[String: Any]])
        XCTAssertEqual(totals.reduce(0.0) { $0 + (($1["percent"] as? Double) ?? 0) }, 100, accuracy: 0.01)
        XCTAssertTrue(totals.contains { $0["name"] as? String == "column:s" })
        XCTAssertTrue(totals.contains { $0["name"] as? String == "wal" })
        let text = try runStrata(["stats", dir, "--parts"], scratch: tmp)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdoutText.contains("vectors"), text.stdoutText)
        XCTAssertEqual(try runStrata(["stats", "s3://bucket/c", "--parts"], scratch: tmp).status, 2)
    }

    /// Every stderr line is one JSON progress object of `command`; returns them.
    func progressEvents(_ r: CLIResult, command: String, file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let lines = r.stderr.split(separator: "\n").map(String.init)
        XCTAssertFalse(lines.isEmpty, "no progress lines", file: file, line: line)
        return try lines.map { l in
            let o = try jsonObject(Data(l.utf8))
            XCTAssertEqual(o["command"] as? String, command, l, file: file, line: line)
            XCTAssertNotNil(o["phase"] as? String, l, file: file, line: line)
            XCTAssertNotNil(o["done"] as? Int, l, file: file, line: line)
            XCTAssertNotNil(o["elapsed_s"] as? Double, l, file: file, line: line)
            return o
        }
    }

    func testProgressJSON() throws {
        let out = tmpPath("gen")
        let gen = try runStrata(["gen", "--rows", "3000", "--dim", "8", "--clusters", "4", "--queries", "5", "--gt-k", "3", "--out", out, "--progress", "json"],
                                scratch: tmp)
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let events = try progressEvents(gen, command: "gen")
        XCTAssertEqual(events.last?["done"] as? Int, 3000)
        XCTAssertEqual(events.last?["total"] as? Int, 3000)

        let seg = tmpPath("s.seg")
        let build = try runStrata(["build", "--vectors", "\(out)/base.fvecs", "--out", seg, "--metric", "l2", "--index", "--progress", "json"], scratch: tmp)
        XCTAssertEqual(build.status, 0, build.stderr)
        let phases = Set(try progressEvents(build, command: "build").compactMap { $0["phase"] as? String })
        XCTAssertTrue(phases.contains { $0.hasPrefix("index:") }, "index build phases reported: \(phases)")

        let (dir, _) = try makeCollection()
        for (command, args) in [("scrub", ["scrub", dir]), ("verify", ["verify", dir]), ("compact", ["compact", dir, "--merge-factor", "2"])] {
            let r = try runStrata(args + ["--progress", "json", "--json"], scratch: tmp)
            XCTAssertEqual(r.status, 0, "\(command): \(r.stderr)")
            let e = try progressEvents(r, command: command)
            XCTAssertEqual(e.first?["done"] as? Int, 0, command)
            XCTAssertEqual(e.last?["done"] as? Int, e.last?["total"] as? Int, "\(command) ends with its phase done")
            if command == "compact" { XCTAssertEqual(e.last?["done"] as? Int, 1, "the two segments merged: \(r.stderr)") }
            if command != "compact" {
                XCTAssertEqual(e.last?["unit"] as? String, "bytes", "\(command) counts the bytes of the segment files")
                XCTAssertGreaterThan(e.last?["total"] as? Int ?? 0, 0, command)
            }
        }
        // Without --progress json, and stderr not a terminal: nothing on stderr.
        let quiet = try runStrata(["scrub", dir, "--json"], scratch: tmp)
        XCTAssertEqual(quiet.stderr, "")
        XCTAssertEqual(try runStrata(["scrub", dir, "--progress", "yaml"], scratch: tmp).status, 2)
    }
}
