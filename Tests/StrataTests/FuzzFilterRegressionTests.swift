// Replays Fixtures/fuzz-regressions/filter/ (and the target's seeds) through a copy of the filter
// fuzz target's harness (tools/fuzz/Sources/FuzzFilter/FuzzFilter.swift): keep the two in sync, as
// for the segment and collection targets in FuzzRegressionTests.swift.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

// MARK: - Mirror of tools/fuzz/Sources/FuzzFilter/FuzzFilter.swift (verbatim from here to the next MARK)

enum FuzzFilterTemplate {
    static let schema = SegmentSchema(dimension: 4, elementType: .float32, metric: .l2, columns: [
        ColumnSpec(name: "title", type: .string),
        ColumnSpec(name: "count", type: .int64, nullable: true),
        ColumnSpec(name: "score", type: .float64, nullable: true),
        ColumnSpec(name: "flag", type: .bool),
        ColumnSpec(name: "tags", type: .stringList, nullable: true),
    ])

    static let seeds: [String] = [
        #"{"must":[{"key":"title","match":{"value":"alpha 3"}}]}"#,
        #"{"must":[{"key":"count","range":{"gte":-5,"lt":1e3}},{"key":"score","range":{"gt":-1.5,"lte":2.5e1}}]}"#,
        #"{"should":[{"key":"tags","match":{"any":["beta","gamma"]}},{"key":"flag","match":{"value":true}}]}"#,
        #"{"must_not":[{"is_null":{"key":"count"}}],"must":{"key":"title","prefix":{"value":"AL","case_insensitive":true}}}"#,
        #"{"must":[{"key":"score","is_null":false},{"must":[{"should":[{"key":"title","prefix":"b"}]}]}]}"#,
        #"{"must":[{"key":"title","match":{"value":"\u00e9\ud83d\ude80\n\"q\""}}]}"#,
        #"{"must":[{"key":"count","match":{"value":9223372036854775807}},{"key":"score","match":{"any":[1e-300,-0.0,4]}}]}"#,
        String(repeating: #"{"must":["#, count: 64) + #"{"key":"flag","match":{"value":false}}"# + String(repeating: "]}", count: 64),
        "{}",
    ]

    static func write(to path: String) throws {
        var options = SegmentWriterOptions()
        options.rowsPerBlock = 8
        var index = IndexOptions()
        index.minimumRows = 16
        index.pqSubspaces = 2
        index.pqIterations = 4
        index.graph.maxDegree = 8
        index.graph.buildListSize = 16
        index.graph.threads = 1
        options.index = index
        options.search = SearchSectionOptions(indexedColumns: schema.columns.map(\.name))
        let words = ["alpha", "beta", "gamma", "Alpha", "épsilon"]
        let writer = try SegmentWriter(path: path, schema: schema, options: options)
        for r in 0..<40 {
            let values: [PayloadValue] = [
                .string("\(words[r % 5]) \(r % 7)"),
                r % 5 == 2 ? .null : .int64(Int64(r * r) - 300),
                r % 4 == 1 ? .null : .float64(Double(r) * 0.75 - 10),
                .bool(r % 3 == 0),
                r % 6 == 5 ? .null : .stringList((0..<(r % 3)).map { words[(r + $0) % 5] }),
            ]
            let vector = (0..<4).map { d in Float((r * 5 + d * 3) % 13 - 6) * 0.5 }
            try vector.withUnsafeBufferPointer { v in try writer.append(id: UInt64(r) + 100, vector: v, values: values) }
        }
        try writer.finish()
    }
}

/// The harness body: bytes in, no trap out.
func fuzzFilter(_ data: Data, segment seg: Segment) {
    guard let filter = try? Filter(json: String(decoding: data, as: UTF8.self)) else { return }
    guard (try? filter.validate(against: seg.schema)) != nil else { return }
    _ = try? seg.rows(matching: filter)
    _ = try? seg.planFilter(filter)
    for plan in [FilterPlanKind.exact, .graph, nil] {
        var options = FilteredSearchOptions(k: 5, listSize: 16)
        options.plan = plan
        _ = try? seg.search(query: [0.5, -1, 0, 2], filter: filter, options: options)
    }
    _ = try? seg.exactSearch(query: [0.5, -1, 0, 2], k: 5, filter: filter)
    for row in [0, 7, 39] where row < seg.rowCount {
        if let values = try? seg.payload(row: row) { _ = filter.matches(values, schema: seg.schema) }
    }
}

// MARK: - Replay

final class FuzzFilterRegressionTests: StrataTestCase {
    func testFilterRegressionInputs() throws {
        let path = tmpPath("template.seg")
        try FuzzFilterTemplate.write(to: path)
        let seg = try Segment.open(path: path)
        defer { seg.close() }
        XCTAssertTrue(seg.hasIndex)
        // Every seed parses and fits the template's schema (so the fuzzer starts past the parser).
        for seed in FuzzFilterTemplate.seeds {
            XCTAssertNoThrow(try Filter(json: seed).validate(against: seg.schema), seed)
        }
        var inputs = FuzzFilterTemplate.seeds.map { Data($0.utf8) }
        let dir = repoRoot.appendingPathComponent("Fixtures/fuzz-regressions/filter")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        inputs += try names.filter { !$0.hasPrefix(".") }.sorted().map { try Data(contentsOf: dir.appendingPathComponent($0)) }
        for data in inputs { fuzzFilter(data, segment: seg) }
    }
}
