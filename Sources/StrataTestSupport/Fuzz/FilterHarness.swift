// The `filter` fuzz harness (tools/fuzz FuzzFilter, replayed by FuzzFilterRegressionTests): filter
// JSON text from arbitrary bytes. The input, decoded as UTF-8 (invalid sequences become U+FFFD, as a
// command-line argument would), goes to `Filter(json:)`: deep or wide nesting, numbers of any size,
// strings with any escapes and lone surrogates, broken syntax. A parsed filter is then validated and
// evaluated on a small template segment (payload indexes on every column, an ANN index):
// rows(matching:), the planner, the exact and graph plans, and the reference evaluator on a few
// rows. A thrown StrataError is fine; a trap, an AddressSanitizer report or a slow input is a bug.
import Foundation
import Strata

/// The filter fuzz harness.
public enum FilterHarness {

    static let schema = SegmentSchema(dimension: 4, elementType: .float32, metric: .l2, columns: [
        ColumnSpec(name: "title", type: .string),
        ColumnSpec(name: "count", type: .int64, nullable: true),
        ColumnSpec(name: "score", type: .float64, nullable: true),
        ColumnSpec(name: "flag", type: .bool),
        ColumnSpec(name: "tags", type: .stringList, nullable: true),
    ])

    /// Seed filters: every condition kind, escapes, big numbers, deep nesting, the empty filter.
    public static let seeds: [String] = [
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

    /// Writes the template segment: 40 rows of 4 dimensions, five columns of every type, each
    /// indexed, and an ANN index.
    public static func writeTemplate(to path: String) throws(StrataError) {
        let options = FuzzSeed.writerOptions(search: SearchSectionOptions(indexedColumns: schema.columns.map(\.name)))
        let words = ["alpha", "beta", "gamma", "Alpha", "épsilon"]
        let writer = try SegmentWriter(path: path, schema: schema, options: options)
        for r in 0..<40 {
            let title: PayloadValue = .string("\(words[r % 5]) \(r % 7)")
            let tags: PayloadValue = r % 6 == 5 ? .null : .stringList((0..<(r % 3)).map { words[(r + $0) % 5] })
            let values = [title] + FuzzSeed.numericValues(row: r) + [tags]
            let vector = (0..<4).map { d in Float((r * 5 + d * 3) % 13 - 6) * 0.5 }
            try vector.withUnsafeBufferPointer { (v) throws(StrataError) in try writer.append(id: UInt64(r) + 100, vector: v, values: values) }
        }
        try writer.finish()
    }

    /// The harness body: bytes in, no trap out. `segment` is the template (``writeTemplate(to:)``).
    public static func run(_ data: [UInt8], segment seg: Segment) {
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
}
