// Filter language, payload indexes, planner and filtered search.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class FilterTests: StrataTestCase {
    static let schema = SegmentSchema(dimension: 16, metric: .cosine, columns: [
        ColumnSpec(name: "name", type: .string),
        ColumnSpec(name: "month", type: .string),
        ColumnSpec(name: "rank", type: .int64, nullable: true),
        ColumnSpec(name: "score", type: .float64, nullable: true),
        ColumnSpec(name: "tags", type: .stringList),
        ColumnSpec(name: "flag", type: .bool),
        ColumnSpec(name: "seq", type: .int64),
    ])

    static func rows(_ count: Int, seed: UInt64 = 5) -> [SegmentRow] {
        var rng = SplitMix64(seed: seed)
        let centers = (0..<12).map { _ in (0..<16).map { _ in rng.gaussianish() * 3 } }
        let prefixes = ["py", "Py", "PY", "np", "django-", "x", "pyt", "ä"]
        let tagPool = ["web", "ml", "cli", "db", "async"]
        return (0..<count).map { i in
            let c = centers[rng.int(centers.count)]
            var p: [String: PayloadValue] = [:]
            p["name"] = .string(prefixes[rng.int(prefixes.count)] + String(rng.int(500)))
            p["month"] = .string(String(format: "%04d-%02d", 2020 + rng.int(6), 1 + rng.int(12)))
            p["rank"] = rng.int(10) < 3 ? .int64(Int64(rng.int(15000)) - 20) : .null
            p["score"] = rng.int(10) < 8 ? .float64(Double(rng.int(2000)) / 10 - 50) : .null
            p["tags"] = .stringList((0..<rng.int(3)).map { _ in tagPool[rng.int(tagPool.count)] })
            p["flag"] = .bool(rng.int(2) == 0)
            p["seq"] = .int64(Int64(i))
            return SegmentRow(id: UInt64(i) * 7 + 3, vector: c.map { $0 + rng.gaussianish() }, payload: p)
        }
    }

    /// Writes the rows with every column indexed (`indexed`) or none, with an ANN index.
    func write(_ path: String, rows: [SegmentRow], indexed: Bool, rowsPerBlock: Int = 128) throws {
        var options = SegmentWriterOptions()
        options.rowsPerBlock = rowsPerBlock
        options.index = .smallTestIndex
        if indexed { options.search = SearchSectionOptions(indexedColumns: Self.schema.columns.map(\.name)) }
        let w = try SegmentWriter(path: path, schema: Self.schema, options: options)
        try w.append(rows)
        try w.finish()
    }

    static let filters: [String] = [
        #"{"must":[{"key":"month","range":{"gte":"2025-01"}}]}"#,
        #"{"must":[{"key":"month","range":{"gte":"2024-01","lte":"2024-12"}}]}"#,
        #"{"must":[{"key":"month","range":{"gt":"2024-03","lt":"2024-07"}}]}"#,
        #"{"must":[{"key":"name","prefix":{"value":"py","case_insensitive":true}}]}"#,
        #"{"must":[{"key":"name","prefix":"py"}]}"#,
        #"{"must":[{"key":"name","prefix":"ä"}]}"#,
        #"{"must_not":[{"is_null":{"key":"rank"}}]}"#,
        #"{"must":[{"key":"rank","is_null":false}]}"#,
        #"{"must":[{"is_null":{"key":"rank"}}]}"#,
        #"{"must":[{"key":"rank","range":{"gte":0,"lt":100}}]}"#,
        #"{"must":[{"key":"rank","range":{"gt":-5.5,"lte":7000.0}}]}"#,
        #"{"must":[{"key":"rank","match":{"value":42}}]}"#,
        #"{"must":[{"key":"score","range":{"gte":-10,"lt":10.5}}]}"#,
        #"{"must":[{"key":"score","match":{"any":[0.0, 12.5, -3]}}]}"#,
        #"{"must":[{"key":"tags","match":{"value":"ml"}}]}"#,
        #"{"must":[{"key":"tags","match":{"any":["cli","db"]}}]}"#,
        #"{"must":[{"key":"tags","prefix":"as"}]}"#,
        #"{"must":[{"is_null":{"key":"score"}}]}"#,
        #"{"must":[{"key":"flag","match":{"value":true}}]}"#,
        #"{"must":[{"key":"month","match":{"value":"2023-05"}}]}"#,
        #"{"must":[{"key":"month","match":{"any":["2023-05","2021-01","1999-01"]}}]}"#,
        #"{"should":[{"key":"tags","match":{"value":"web"}},{"key":"rank","range":{"lt":1000}}]}"#,
        #"{"must":[{"key":"flag","match":{"value":false}}],"must_not":[{"key":"month","range":{"lt":"2023-01"}}]}"#,
        #"{"must":[{"should":[{"key":"name","prefix":"np"},{"key":"name","prefix":"x"}]},{"key":"seq","range":{"gte":500,"lt":2500}}]}"#,
        #"{"must_not":[{"key":"tags","match":{"value":"ml"}},{"key":"flag","match":{"value":true}}]}"#,
        #"{"must":[{"key":"seq","range":{"gte":100,"lt":180}}]}"#,
        #"{"must":[{"key":"month","match":{"value":"2099-01"}}]}"#,
        #"{"must":[{"key":"name","prefix":"zz"}]}"#,
        #"{}"#,
    ]

    // MARK: language

    func testParsesEveryOperator() throws {
        let f = try Filter(json: #"{"must":[{"key":"a","match":{"value":"x"}},{"key":"b","match":{"any":[1,2]}},{"key":"c","range":{"gt":1,"lte":2.5}},{"key":"d","prefix":"p"},{"is_null":{"key":"e"}},{"should":[{"key":"f","match":{"value":true}}]}],"must_not":[{"key":"g","is_null":true}]}"#)
        XCTAssertEqual(f.must.count, 6)
        XCTAssertEqual(f.must[0], .match(key: "a", value: .string("x")))
        XCTAssertEqual(f.must[1], .matchAny(key: "b", values: [.int(1), .int(2)]))
        XCTAssertEqual(f.must[2], .range(key: "c", FilterRange(gt: .int(1), lte: .float(2.5))))
        XCTAssertEqual(f.must[3], .prefix(key: "d", prefix: "p", caseInsensitive: false))
        XCTAssertEqual(f.must[4], .isNull(key: "e"))
        XCTAssertEqual(f.must[5], .filter(Filter(should: [.match(key: "f", value: .bool(true))])))
        XCTAssertEqual(f.mustNot, [.isNull(key: "g")])
    }

    func testUnknownFieldsAndTypeMismatchesAreClearErrors() throws {
        func message(_ json: String) -> String {
            do { _ = try Filter(json: json); return "parsed" } catch { return error.message }
        }
        XCTAssertTrue(message(#"{"mustt":[]}"#).contains("unknown field 'mustt'"))
        XCTAssertTrue(message(#"{"must":[{"key":"a","range":{"gtee":1}}]}"#).contains("filter.must[0].range: unknown field 'gtee'"))
        XCTAssertTrue(message(#"{"must":[{"key":"a","equals":1}]}"#).contains("unknown operator 'equals'"))
        XCTAssertTrue(message(#"{"must":[{"key":"a","match":{"value":[1]}}]}"#).contains("got an array"))
        XCTAssertTrue(message(#"{"must":[{"key":"a","match":{"value":1},"range":{"gt":1}}]}"#).contains("several operators"))
        XCTAssertTrue(message(#"{"must":[{"key":"a","range":{"gt":true}}]}"#).contains("number or a string"))
        XCTAssertTrue(message(#"{"must":[{"match":{"value":1}}]}"#).contains("needs \"key\""))
        XCTAssertTrue(message(#"{"must": 3"#).contains("not valid JSON"))

        let path = tmpPath("s.seg")
        try write(path, rows: Self.rows(50), indexed: true)
        let seg = try Segment.open(path: path)
        assertStrataError(.unknownColumn) { try seg.planFilter(try Filter(json: #"{"must":[{"key":"nope","match":{"value":1}}]}"#)) }
        assertStrataError(.typeMismatch) { try seg.planFilter(try Filter(json: #"{"must":[{"key":"rank","match":{"value":"x"}}]}"#)) }
        assertStrataError(.typeMismatch) { try seg.planFilter(try Filter(json: #"{"must":[{"key":"month","range":{"gte":2024}}]}"#)) }
        assertStrataError(.typeMismatch) { try seg.planFilter(try Filter(json: #"{"must":[{"key":"rank","prefix":"1"}]}"#)) }
        assertStrataError(.typeMismatch) { try seg.planFilter(try Filter(json: #"{"must":[{"key":"flag","range":{"gt":0}}]}"#)) }
        assertStrataError(.typeMismatch) { try seg.planFilter(try Filter(json: #"{"must":[{"key":"flag","match":{"value":1}}]}"#)) }
    }

    // MARK: every operator, indexed and scanned, against the reference evaluator

    func testEveryOperatorMatchesTheReferenceIndexedAndScanned() throws {
        let rows = Self.rows(3000)
        let a = tmpPath("indexed.seg"), b = tmpPath("scanned.seg")
        try write(a, rows: rows, indexed: true)
        try write(b, rows: rows, indexed: false)
        let indexed = try Segment.open(path: a), scanned = try Segment.open(path: b)
        XCTAssertTrue(indexed.formatVersion == (SegmentFormat.writerMajor, SegmentFormat.writerMinor))
        XCTAssertTrue(indexed.sections.contains { $0.kind == .payloadIndex && !$0.required })
        XCTAssertEqual(Set(indexed.payloadIndexSizes.keys), Set(Self.schema.columns.map(\.name)))
        XCTAssertTrue(indexed.verify().isSound)
        let values = rows.map { r in Self.schema.columns.map { r.payload[$0.name] ?? .null } }
        for json in Self.filters {
            let f = try Filter(json: json)
            let want = (0..<rows.count).filter { f.matches(values[$0], schema: Self.schema) }
            XCTAssertEqual(try indexed.rows(matching: f), want, "indexed: \(json)")
            XCTAssertEqual(try scanned.rows(matching: f), want, "scanned: \(json)")
            XCTAssertTrue(try indexed.planFilter(f).scannedColumns.isEmpty, "every column is indexed: \(json)")
        }
    }

    func testZoneMapsSkipBlocksWhenScanning() throws {
        let path = tmpPath("z.seg")
        try write(path, rows: Self.rows(3000), indexed: false, rowsPerBlock: 100)
        let seg = try Segment.open(path: path)
        let plan = try seg.planFilter(try Filter(json: #"{"must":[{"key":"seq","range":{"gte":1000,"lt":1200}}]}"#))
        XCTAssertEqual(plan.scannedColumns, ["seq"])
        XCTAssertEqual(plan.blocksSkipped, 28, "30 blocks of 100 rows; only rows 1000..<1200 (2 blocks) can pass")
        XCTAssertEqual(plan.estimatedRows, 200)
        let p2 = try seg.planFilter(try Filter(json: #"{"must":[{"key":"month","range":{"gte":"2030-01"}}]}"#))
        XCTAssertEqual(p2.blocksSkipped, 30)
        XCTAssertEqual(p2.kind, .empty)
    }

    // MARK: planner

    func testPlannerChoosesByEstimatedCardinality() throws {
        let rows = Self.rows(3000)
        let path = tmpPath("p.seg")
        try write(path, rows: rows, indexed: true)
        let seg = try Segment.open(path: path)
        let o = FilteredSearchOptions(exactThreshold: 300)
        // ~1/6 of the rows in 2025 -> ~500 rows: graph; one month ~40 rows: exact.
        let wide = try seg.planFilter(try Filter(json: #"{"must":[{"key":"month","range":{"gte":"2024-01"}}]}"#), options: o)
        XCTAssertEqual(wide.kind, .graph)
        XCTAssertEqual(wide.estimatedRows, try seg.rows(matching: try Filter(json: #"{"must":[{"key":"month","range":{"gte":"2024-01"}}]}"#)).count,
                       "a single indexed condition is counted exactly")
        let narrow = try seg.planFilter(try Filter(json: #"{"must":[{"key":"month","match":{"value":"2023-05"}}]}"#), options: o)
        XCTAssertEqual(narrow.kind, .exact)
        XCTAssertLessThanOrEqual(narrow.estimatedRows, 300)
        XCTAssertEqual(try seg.planFilter(try Filter(json: #"{"must":[{"key":"month","match":{"value":"2099-01"}}]}"#), options: o).kind, .empty)
        XCTAssertEqual(try seg.planFilter(Filter(), options: o).kind, .unfiltered)
        // Combination: product of selectivities.
        let both = try seg.planFilter(try Filter(json: #"{"must":[{"key":"month","range":{"gte":"2024-01"}},{"key":"flag","match":{"value":true}}]}"#), options: o)
        XCTAssertEqual(Double(both.estimatedRows), Double(wide.estimatedRows) * 0.5, accuracy: Double(wide.estimatedRows) * 0.1)
        // Defaults on a large segment: 20%.
        XCTAssertEqual(FilteredSearchOptions.defaultExactThreshold(rowCount: 100_000), 20_000)
        XCTAssertEqual(FilteredSearchOptions.defaultExactThreshold(rowCount: 3_000), 2_000)
        // Forcing.
        XCTAssertEqual(try seg.planFilter(try Filter(json: #"{"must":[{"key":"month","match":{"value":"2023-05"}}]}"#),
                                          options: FilteredSearchOptions(plan: .graph)).kind, .graph)
    }

    // MARK: filtered search against an exact filtered scan

    func testFilteredSearchEqualsExactFilteredScan() throws {
        let rows = Self.rows(3000)
        let path = tmpPath("f.seg")
        try write(path, rows: rows, indexed: true)
        let seg = try Segment.open(path: path)
        let values = rows.map { r in Self.schema.columns.map { r.payload[$0.name] ?? .null } }
        let stored = rows.map { expectedStoredVector($0.vector, schema: Self.schema) }
        var rng = SplitMix64(seed: 99)
        var recallSum = 0.0, recallCount = 0
        for json in Self.filters {
            let f = try Filter(json: json)
            let passing = Set((0..<rows.count).filter { f.matches(values[$0], schema: Self.schema) })
            for _ in 0..<5 {
                let q = rows[rng.int(rows.count)].vector.map { $0 + rng.gaussianish() * 0.5 }
                // Reference: brute force over the passing rows only.
                let ref = referenceSearch(vectors: stored, ids: rows.map(\.id), query: q, k: 10, metric: .cosine) { passing.contains($0) }
                let exact = try seg.exactSearch(query: q, k: 10, filter: f)
                XCTAssertEqual(exact.map(\.id), ref.map(\.id), "exact filtered scan: \(json)")
                // Exact plan with a rerank covering every passing row is exact.
                let e = try seg.search(query: q, filter: f, options: FilteredSearchOptions(k: 10, rerank: 3000, plan: .exact))
                XCTAssertEqual(e.hits.map(\.id), exact.map(\.id), "exact plan: \(json)")
                // Graph plan: every hit passes; recall vs exact.
                let g = try seg.search(query: q, filter: f, options: FilteredSearchOptions(k: 10, listSize: 64, plan: .graph))
                for h in g.hits { XCTAssertTrue(passing.contains(h.row), "graph plan returned a failing row: \(json)") }
                if passing.count >= rows.count / 5 {   // selective filters are the exact plan's job
                    recallSum += Double(Set(g.hits.map(\.id)).intersection(exact.map(\.id)).count) / Double(exact.count)
                    recallCount += 1
                }
                // Planner's own choice: every hit passes.
                let auto = try seg.search(query: q, filter: f)
                for h in auto.hits { XCTAssertTrue(passing.contains(h.row), "\(auto.plan.kind) returned a failing row: \(json)") }
                XCTAssertEqual(auto.hits.count, min(10, passing.count), json)
            }
        }
        XCTAssertGreaterThan(recallSum / Double(recallCount), 0.9, "graph-plan recall@10 vs the exact filtered scan")
    }

    /// The graph plan on a segment with an ANN index but no search sections (no payload index): the
    /// filter is bound by scanning the columns. This once trapped on a missing payload-index view.
    func testGraphPlanOnASegmentWithoutPayloadIndexes() throws {
        let rows = Self.rows(1500)
        let path = tmpPath("ann-only.seg")
        try write(path, rows: rows, indexed: false)
        let seg = try Segment.open(path: path)
        XCTAssertTrue(seg.sections.contains { $0.kind == .graph })
        XCTAssertFalse(seg.sections.contains { $0.kind == .payloadIndex })
        let values = rows.map { r in Self.schema.columns.map { r.payload[$0.name] ?? .null } }
        for json in Self.filters {
            let f = try Filter(json: json)
            let passing = Set((0..<rows.count).filter { f.matches(values[$0], schema: Self.schema) })
            let g = try seg.search(query: rows[7].vector, filter: f, options: FilteredSearchOptions(k: 10, listSize: 64, plan: .graph))
            XCTAssertTrue(g.plan.kind == .graph || g.plan.kind == .empty, "\(g.plan.kind): \(json)")
            if passing.count >= 300 { XCTAssertEqual(g.hits.count, 10, json) }
            for h in g.hits { XCTAssertTrue(passing.contains(h.row), "graph plan returned a failing row: \(json)") }
        }
    }

    func testSegmentWithoutIndexesOrANNStillFilters() throws {
        let rows = Self.rows(400)
        let path = tmpPath("plain.seg")
        let w = try SegmentWriter(path: path, schema: Self.schema)
        try w.append(rows)
        try w.finish()
        let seg = try Segment.open(path: path)
        XCTAssertTrue(seg.formatVersion == (SegmentFormat.writerMajor, SegmentFormat.writerMinor))
        XCTAssertFalse(seg.sections.contains { $0.kind == .payloadIndex })
        let f = try Filter(json: #"{"must":[{"key":"month","range":{"gte":"2024-01"}}]}"#)
        let r = try seg.search(query: rows[0].vector, filter: f)
        XCTAssertEqual(r.plan.kind, .exact)
        XCTAssertEqual(r.hits.map(\.id), try seg.exactSearch(query: rows[0].vector, k: 10, filter: f).map(\.id))
    }

    func testCorruptPayloadIndexNeverTraps() throws {
        let rows = Self.rows(600)
        let path = tmpPath("c.seg")
        try write(path, rows: rows, indexed: true)
        let section = try Segment.open(path: path).sections.first { $0.kind == .payloadIndex }!
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        var rng = SplitMix64(seed: 1)
        let filters = try Self.filters.map { try Filter(json: $0) }
        for trial in 0..<40 {
            var bytes = original
            // Scribble over the bodies (past the entry table), where open checks only sizes.
            let start = Int(section.offset) + 32 + 32 * 7
            for _ in 0..<(1 + trial % 8) {
                let at = start + rng.int(Int(section.length) - 32 * 8)
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            let p = tmpPath("c\(trial).seg")
            try bytes.write(to: URL(fileURLWithPath: p))
            guard let seg = try? Segment.open(path: p) else { continue }   // a size check caught it
            XCTAssertFalse(seg.verify().isSound, "trial \(trial): the section checksum must catch the damage")
            for f in filters {
                _ = try? seg.rows(matching: f)
                _ = try? seg.search(query: rows[0].vector, filter: f)
                _ = try? seg.search(query: rows[0].vector, filter: f, options: FilteredSearchOptions(plan: .graph))
            }
        }
    }

    func testCLIFilteredSearchAndBuildFlags() throws {
        guard strataExecutable() != nil else { throw XCTSkip("strata executable not built") }
        let rows = Self.rows(300)
        let vectors = tmp.appendingPathComponent("v.fvecs"), payload = tmp.appendingPathComponent("p.tsv")
        try fvecsData(rows.map(\.vector)).write(to: vectors)
        let tsv = rows.map { r -> String in
            let rank: String
            if case .int64(let v)? = r.payload["rank"] { rank = String(v) } else { rank = "" }
            return "\(r.payload["name"]!)\t\(r.payload["month"]!)\t\(rank)"
        }.joined(separator: "\n") + "\n"
        try tsv.write(to: payload, atomically: true, encoding: .utf8)
        let seg = tmpPath("cli.seg")
        let build = try runStrata(["build", "--vectors", vectors.path, "--payload", payload.path,
                                   "--schema", "name:string,month:string,rank:int64?", "--payload-index", "month,rank",
                                   "--bm25", "name", "--out", seg], scratch: tmp)
        XCTAssertEqual(build.status, 0, build.stderr)
        let json = #"{"must":[{"key":"month","range":{"gte":"2024-01"}}],"must_not":[{"is_null":{"key":"rank"}}]}"#
        let search = try runStrata(["search", seg, "--query", vectors.path, "--limit", "5", "--k", "5", "--filter", json, "--json"], scratch: tmp)
        XCTAssertEqual(search.status, 0, search.stderr)
        let doc = try JSONSerialization.jsonObject(with: search.stdout) as! [String: Any]
        let f = try Filter(json: json)
        let opened = try Segment.open(path: seg)
        for r in doc["results"] as! [[String: Any]] {
            XCTAssertEqual(r["plan"] as? String, "exact")
            for h in r["hits"] as! [[String: Any]] {
                XCTAssertTrue(f.matches(try opened.payload(row: h["row"] as! Int), schema: opened.schema))
            }
        }
        let text = try runStrata(["search", seg, "--query-text", "py", "--k", "3", "--json"], scratch: tmp)
        XCTAssertEqual(text.status, 0, text.stderr)
        let bad = try runStrata(["search", seg, "--query", vectors.path, "--filter", #"{"must":[{"key":"nope","match":{"value":1}}]}"#], scratch: tmp)
        XCTAssertEqual(bad.status, 1, "unknownColumn is a data error (README \"Exit codes\")")
        XCTAssertTrue(bad.stderr.contains("no column 'nope'"), bad.stderr)
    }
}
