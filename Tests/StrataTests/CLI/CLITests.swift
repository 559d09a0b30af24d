// The `strata` executable, run as a process: build from the sample dataset, dump, verify exit
// codes, exact search recall against the sample ground truth, and the golden dump.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class CLITests: StrataTestCase {
    var sample: URL { SampleDataset.directory }

    func json(_ r: CLIResult, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: r.stdout)
        return try XCTUnwrap(object as? [String: Any], "stdout is not a JSON object: \(r.stdoutText.prefix(500))", file: file, line: line)
    }

    func buildSample(_ name: String, extra: [String] = []) throws -> String {
        let out = tmpPath(name)
        let r = try runStrata(["build", "--vectors", sample.appendingPathComponent("base.fvecs").path,
                               "--payload", sample.appendingPathComponent("payload.tsv").path,
                               "--schema", SampleDataset.schemaSpec, "--out", out, "--json"] + extra, scratch: tmp)
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try json(r)
        XCTAssertEqual(summary["rows"] as? Int, SampleDataset.baseCount)
        XCTAssertEqual(summary["dimension"] as? Int, SampleDataset.dimension)
        return out
    }

    func testBuildDumpVerifySearchOnSample() throws {
        let seg = try buildSample("sample.seg", extra: ["--metric", "ip", "--rows-per-block", "128"])

        // The library sees exactly the TSV payload and the fvecs vectors.
        let opened = try Segment.open(path: seg)
        XCTAssertEqual(opened.rowCount, SampleDataset.baseCount)
        XCTAssertEqual(opened.schema.metric, .innerProduct)
        XCTAssertEqual(opened.schema.columns, try SegmentSchema.parseColumns(SampleDataset.schemaSpec))
        let generated = SampleDataset.generate()
        for r in [0, 1, 127, 128, 1000, 1999] {
            XCTAssertEqual(try opened.id(ofRow: r), UInt64(r))
            XCTAssertEqual(try opened.vector(row: r), generated.base[r])
            XCTAssertTrue(samePayload(try opened.payload(row: r), SampleDataset.payload(line: generated.payloadLines[r])), "row \(r)")
        }
        XCTAssertTrue(opened.verify().isSound)

        // dump --json parses and describes the segment.
        let dump = try runStrata(["dump", seg, "--json", "--rows", "10..13"], scratch: tmp)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let doc = try json(dump)
        XCTAssertEqual(doc["rows"] as? Int, SampleDataset.baseCount)
        XCTAssertEqual(doc["dimension"] as? Int, SampleDataset.dimension)
        XCTAssertEqual(doc["metric"] as? String, "ip")
        XCTAssertEqual(doc["element_type"] as? String, "float32")
        XCTAssertEqual(doc["format_version"] as? String, "\(SegmentFormat.writerMajor).\(SegmentFormat.writerMinor)")
        let columns = try XCTUnwrap(doc["columns"] as? [[String: Any]])
        XCTAssertEqual(columns.map { $0["name"] as? String }, ["name", "version", "month", "rank", "summary"])
        let rankNulls = generated.payloadLines.filter { $0.split(separator: "\t", omittingEmptySubsequences: false)[3].isEmpty }.count
        XCTAssertEqual(columns[3]["nulls"] as? Int, rankNulls)
        XCTAssertEqual(columns[0]["blocks"] as? Int, (SampleDataset.baseCount + 127) / 128)
        let sections = try XCTUnwrap(doc["sections"] as? [[String: Any]])
        XCTAssertEqual(sections.count, 4 + 5)
        let rowData = try XCTUnwrap(doc["row_data"] as? [[String: Any]])
        XCTAssertEqual(rowData.map { $0["row"] as? Int }, [10, 11, 12])
        let payload10 = try XCTUnwrap(rowData[0]["payload"] as? [String: Any])
        XCTAssertEqual(payload10["name"] as? String, generated.payloadLines[10].split(separator: "\t").first.map(String.init))
        // Human-readable dump and a single-column dump work too.
        let human = try runStrata(["dump", seg, "--rows", "0..2", "--column", "rank"], scratch: tmp)
        XCTAssertEqual(human.status, 0, human.stderr)
        XCTAssertTrue(human.stdoutText.contains("rank"))
        let unknown = try runStrata(["dump", seg, "--column", "nope"], scratch: tmp)
        XCTAssertEqual(unknown.status, 1, "unknownColumn: the data has no such column (exit 1, README \"Exit codes\") \(unknown.stderr)")

        // verify: 0 on the good file.
        let good = try runStrata(["verify", seg], scratch: tmp)
        XCTAssertEqual(good.status, 0, good.stdoutText + good.stderr)
        XCTAssertTrue(good.stdoutText.contains("OK"))
        let goodJSON = try runStrata(["verify", seg, "--json"], scratch: tmp)
        XCTAssertEqual(goodJSON.status, 0)
        XCTAssertEqual(try json(goodJSON)["ok"] as? Bool, true)

        // search: exact results reproduce the ground truth (recall 1.0), single and batched.
        for (k, batch) in [(10, "1"), (10, "8"), (100, "50"), (1, "1")] {
            let s = try runStrata(["search", seg, "--query", sample.appendingPathComponent("query.fvecs").path, "--k", String(k),
                                   "--batch", batch, "--groundtruth", sample.appendingPathComponent("groundtruth.ivecs").path, "--json"],
                                  scratch: tmp)
            XCTAssertEqual(s.status, 0, s.stderr)
            let out = try json(s)
            XCTAssertEqual(out["queries"] as? Int, SampleDataset.queryCount)
            XCTAssertEqual(out["recall_at_k"] as? Double, 1.0, "k \(k) batch \(batch)")
            let results = try XCTUnwrap(out["results"] as? [[String: Any]])
            XCTAssertEqual(results.count, SampleDataset.queryCount)
            let hits0 = try XCTUnwrap(results[0]["hits"] as? [[String: Any]])
            XCTAssertEqual(hits0.compactMap { $0["row"] as? Int }, generated.groundtruth[0].prefix(k).map(Int.init))
        }
    }

    func testVerifyExitCodes() throws {
        let seg = try buildSample("v.seg", extra: ["--metric", "cosine"])
        // Corrupt one byte of the vectors section in a copy: exit 1, and the report names the section.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: seg))
        bytes[4096 + 100] ^= 0x20
        let bad = tmpPath("bad.seg")
        try bytes.write(to: URL(fileURLWithPath: bad))
        let r = try runStrata(["verify", bad], scratch: tmp)
        XCTAssertEqual(r.status, 1, r.stdoutText + r.stderr)
        XCTAssertTrue(r.stdoutText.contains("CORRUPT"))
        XCTAssertTrue(r.stdoutText.contains("vectors"), r.stdoutText)
        let rj = try runStrata(["verify", bad, "--json"], scratch: tmp)
        XCTAssertEqual(rj.status, 1)
        let doc = try json(rj)
        XCTAssertEqual(doc["ok"] as? Bool, false)
        let problems = try XCTUnwrap(doc["problems"] as? [[String: Any]])
        XCTAssertEqual(problems.first?["code"] as? String, "checksumMismatch")
        XCTAssertEqual(problems.first?["section"] as? String, "vectors")
        XCTAssertEqual(problems.first?["offset"] as? Int, 4096)
        // Damage that open refuses (footer): still exit 1 ("corrupt"), not 2.
        var cut = try Data(contentsOf: URL(fileURLWithPath: seg))
        cut.removeLast(10)
        try cut.write(to: URL(fileURLWithPath: tmpPath("cut.seg")))
        XCTAssertEqual(try runStrata(["verify", tmpPath("cut.seg")], scratch: tmp).status, 1)
        try Data("not a segment".utf8).write(to: URL(fileURLWithPath: tmpPath("text.seg")))
        XCTAssertEqual(try runStrata(["verify", tmpPath("text.seg")], scratch: tmp).status, 1)
        // Missing file and usage errors: exit 2.
        XCTAssertEqual(try runStrata(["verify", tmpPath("missing.seg")], scratch: tmp).status, 2)
        XCTAssertEqual(try runStrata(["verify"], scratch: tmp).status, 2)
        XCTAssertEqual(try runStrata(["dump", tmpPath("missing.seg")], scratch: tmp).status, 2)
        XCTAssertEqual(try runStrata(["search", tmpPath("missing.seg"), "--query", sample.appendingPathComponent("query.fvecs").path],
                                     scratch: tmp).status, 2)
        XCTAssertEqual(try runStrata(["search", seg, "--query", sample.appendingPathComponent("query.fvecs").path, "--k", "0"],
                                     scratch: tmp).status, 2)
        XCTAssertEqual(try runStrata(["frobnicate"], scratch: tmp).status, 2)
    }

    func testBuildErrors() throws {
        let base = sample.appendingPathComponent("base.fvecs").path
        // --payload without --schema, unknown metric: usage errors.
        XCTAssertEqual(try runStrata(["build", "--vectors", base, "--payload", sample.appendingPathComponent("payload.tsv").path,
                                      "--out", tmpPath("x.seg")], scratch: tmp).status, 2)
        XCTAssertEqual(try runStrata(["build", "--vectors", base, "--metric", "manhattan", "--out", tmpPath("x.seg")], scratch: tmp).status, 2)
        // Payload with too few lines.
        let short = tmpPath("short.tsv")
        try Data("a\t1\n".utf8).write(to: URL(fileURLWithPath: short))
        let r = try runStrata(["build", "--vectors", base, "--payload", short, "--schema", "name:string,n:int64", "--out", tmpPath("x.seg")],
                              scratch: tmp)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmpPath("x.seg")), "failed build publishes nothing")
        // Missing input file.
        XCTAssertEqual(try runStrata(["build", "--vectors", tmpPath("none.fvecs"), "--out", tmpPath("y.seg")], scratch: tmp).status, 2)
    }

    func testFloat16BuildWithIds() throws {
        let ids = tmpPath("ids.txt")
        try Data((0..<SampleDataset.baseCount).map { "\(UInt64.max - UInt64($0) * 3)\n" }.joined().utf8).write(to: URL(fileURLWithPath: ids))
        let seg = try buildSample("f16.seg", extra: ["--f16", "--ids", ids, "--metric", "ip"])
        let opened = try Segment.open(path: seg)
        XCTAssertEqual(opened.schema.elementType, .float16)
        XCTAssertEqual(try opened.id(ofRow: 5), UInt64.max - 15)
        XCTAssertEqual(try opened.row(forId: UInt64.max - 15), 5)
        let s = try runStrata(["search", seg, "--query", sample.appendingPathComponent("query.fvecs").path, "--k", "10",
                               "--groundtruth", sample.appendingPathComponent("groundtruth.ivecs").path, "--json"], scratch: tmp)
        XCTAssertEqual(s.status, 0, s.stderr)
        let recall = try XCTUnwrap(try json(s)["recall_at_k"] as? Double)
        XCTAssertGreaterThanOrEqual(recall, 0.95, "float16 storage loses little")
    }

    /// float64 payload may hold ±inf and NaN (the writer accepts them; the TSV parser accepts "inf").
    /// `dump --json` must still print one JSON document for such a segment.
    func testDumpJSONWithNonFiniteFloats() throws {
        let schema = SegmentSchema(dimension: 2, elementType: .float32, metric: .l2,
                                   columns: [ColumnSpec(name: "x", type: .float64, nullable: true)])
        let values: [Double] = [.infinity, -.infinity, .nan, 1.5]
        let rows = values.enumerated().map { TestRow(id: UInt64($0.offset), vector: [1, 2], values: [.float64($0.element)]) }
        let path = tmpPath("nonfinite.seg")
        try writeSegment(path: path, schema: schema, rows: rows)
        XCTAssertTrue(try Segment.open(path: path).verify().isSound)
        let r = try runStrata(["dump", path, "--json", "--rows", "0..4"], scratch: tmp)
        XCTAssertEqual(r.status, 0, "dump --json of a segment holding inf/NaN: \(r.stderr)")
        let doc = try json(r)
        let rowData = try XCTUnwrap(doc["row_data"] as? [[String: Any]])
        // (A column's zone-map `min` / `max` are text for every column type by design, as in the
        // golden dump: "-9223372036854775808", "inf". Row values are typed JSON.)
        assertNoNumberAsString(rowData)
        XCTAssertEqual(rowData.map { ($0["payload"] as? [String: Any])?["x"] is NSNull }, [true, true, true, false],
                       "a non-finite float64 prints as null, never as a string")
        // The human-readable dump copes already.
        XCTAssertEqual(try runStrata(["dump", path, "--rows", "0..4"], scratch: tmp).status, 0)
    }

    /// A segment written before the norm limit (VectorLimits) can hold a vector whose squared l2
    /// distance to a query overflows to +inf (made here by patching a stored vector and re-sealing
    /// the checksums; the writer now refuses such vectors). `search --json` must print one JSON
    /// document in which the distance is null, a JSON number or null and never a string.
    func testSearchJSONWithInfiniteDistance() throws {
        let schema = SegmentSchema(dimension: 2, elementType: .float32, metric: .l2)
        let path = tmpPath("far.seg")
        try writeSegment(path: path, schema: schema, rows: [TestRow(id: 7, vector: [1, 2], values: []), TestRow(id: 8, vector: [3, 4], values: [])])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for (i, x) in [Float(3e38), -3e38].enumerated() {       // row 0's vector: the vectors section starts at 4096
            for b in 0..<4 { bytes[4096 + 4 * i + b] = UInt8(truncatingIfNeeded: x.bitPattern >> (8 * UInt32(b))) }
        }
        Reseal.segmentDeep(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let seg = try Segment.open(path: path)
        XCTAssertTrue(seg.verify().isSound)
        XCTAssertEqual(try seg.exactSearch(query: [0, 0], k: 2).map(\.distance), [25, .infinity])
        let query = tmpPath("origin.fvecs")
        try fvecsData([[0, 0]]).write(to: URL(fileURLWithPath: query))
        for extra in [[], ["--filter", "{}"]] as [[String]] {
            let r = try runStrata(["search", path, "--query", query, "--k", "2", "--json"] + extra, scratch: tmp)
            XCTAssertEqual(r.status, 0, "search --json with an infinite distance: \(r.stderr)")
            let doc = try json(r)
            assertNoNumberAsString(doc)
            let hits = try XCTUnwrap((doc["results"] as? [[String: Any]])?.first?["hits"] as? [[String: Any]], r.stdoutText)
            XCTAssertEqual(hits.map { $0["id"] as? Int }, [8, 7])
            XCTAssertEqual(hits[0]["distance"] as? Double, 25)
            XCTAssertTrue(hits[1]["distance"] is NSNull, "an infinite distance prints as null: \(r.stdoutText)")
        }
        XCTAssertEqual(try runStrata(["search", path, "--query", query, "--k", "2"], scratch: tmp).status, 0, "text output copes")
    }

    /// `--rows` is user input: any spelling must give exit 0 or a usage error (2), never a trap.
    func testDumpRowsArgumentNeverTraps() throws {
        let seg = GoldenV1.fixtureRelativePath
        let cases: [(String, Set<Int32>)] = [
            ("0..20", [0]), ("19", [0]), ("20", [0]), ("5..5", [0]), ("3..9223372036854775807", [0]),
            ("9223372036854775806", [0]), ("9223372036854775807", [0, 2]), // a + 1 overflows: empty or usage error
            ("5..3", [2]), ("-1", [2]), ("x", [2]), ("1..", [2]), ("..3", [2]), ("99999999999999999999", [2]),
        ]
        for (rows, want) in cases {
            let r = try runStrata(["dump", seg, "--json", "--rows", rows], scratch: tmp)
            XCTAssertFalse(r.crashed, "strata dump --rows \(rows) crashed (signal \(r.status)): \(r.stderr.prefix(300))")
            if !r.crashed { XCTAssertTrue(want.contains(r.status), "--rows \(rows): exit \(r.status) \(r.stderr)") }
        }
    }

    func testGoldenDump() throws {
        guard FileManager.default.fileExists(atPath: GoldenV1.dumpURL.path) else {
            return XCTFail("missing \(GoldenV1.dumpURL.path): run STRATA_WRITE_FIXTURES=1 swift test --filter SegmentGoldenTests/testWriteFixtures")
        }
        let r = try runStrata(["dump", GoldenV1.fixtureRelativePath, "--json", "--rows", "0..\(GoldenV1.rowCount)"], scratch: tmp)
        XCTAssertEqual(r.status, 0, r.stderr)
        let want = try Data(contentsOf: GoldenV1.dumpURL)
        // The build's own versions (`strata_version`, `format_versions`) change with every release,
        // not with the file: they are checked against the constants and left out of the golden.
        var gotObject = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        XCTAssertEqual(gotObject.removeValue(forKey: "strata_version") as? String, StrataRelease.version)
        XCTAssertEqual(gotObject.removeValue(forKey: "format_versions") as? [String: String],
                       ["segment": StrataRelease.segmentFormat, "manifest": StrataRelease.manifestFormat, "wal": StrataRelease.walFormat])
        var wantObject = try XCTUnwrap(try JSONSerialization.jsonObject(with: want) as? [String: Any])
        wantObject["strata_version"] = nil
        wantObject["format_versions"] = nil
        let got = gotObject as NSDictionary?
        let expected = wantObject as NSDictionary?
        XCTAssertNotNil(got)
        XCTAssertEqual(got, expected, "strata dump output differs from Fixtures/v1/small.dump.json")
        if got != expected { print(r.stdoutText) }
    }
}
