// libFuzzer target: filter JSON text from arbitrary bytes.
//
// The input, decoded as UTF-8 (invalid sequences become U+FFFD, as a command-line argument would),
// goes to `Filter(json:)`: deep or wide nesting, numbers of any size, strings with any escapes and
// lone surrogates, broken syntax. A parsed filter is then validated and evaluated on a small
// template segment (payload indexes on every column, an ANN index): rows(matching:), the planner,
// the exact and graph plans, and the reference evaluator on a few rows. A thrown StrataError is fine;
// a trap, an AddressSanitizer report or a slow input (libFuzzer -timeout) is a bug.
// Mirrored by `FuzzHarness.filter` in Tests/StrataTests/FuzzRegressionTests.swift.
//
// `STRATA_FUZZ_WRITE_SEEDS=DIR` writes the seed filters into DIR and exits.
import Foundation
import Strata

/// The template segment: 40 rows of 4 dimensions, five columns of every type, each indexed.
private let filterSegment: Segment = {
    let dir = NSTemporaryDirectory() + "strata-fuzz-filter-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "strata-fuzz-filter-\(getpid())") }
    let path = dir + "/template.seg"
    do {
        try FuzzFilterTemplate.write(to: path)
        return try Segment.open(path: path)
    } catch {
        fatalError("cannot build the template segment: \(error)")
    }
}()

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

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let bytes else { return 0 }
    fuzzFilter(Data(bytes: bytes, count: count), segment: filterSegment)
    return 0
}

// SwiftPM links an executable target with `--defsym main=FuzzFilter_main` and, under
// -parse-as-library, no such entry point is generated; so define it and hand over to libFuzzer's
// driver (the archive's own `main` is then never pulled in).
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("FuzzFilter_main")
public func fuzzFilterMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    if let seedDir = ProcessInfo.processInfo.environment["STRATA_FUZZ_WRITE_SEEDS"] {
        try? FileManager.default.createDirectory(atPath: seedDir, withIntermediateDirectories: true)
        for (i, seed) in FuzzFilterTemplate.seeds.enumerated() {
            _ = FileManager.default.createFile(atPath: seedDir + "/seed-\(i).json", contents: Data(seed.utf8))
        }
        return 0
    }
    var argc = argc
    var argv = argv
    return llvmFuzzerRunDriver(&argc, &argv) { fuzzTestOneInput($0, $1) }
}
