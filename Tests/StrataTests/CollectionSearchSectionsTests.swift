// Payload indexes and BM25 columns in collections: flushed segments get them from
// CollectionOptions.search, and compaction keeps them (issue 5: "rebuilt by the compactor").
import Foundation
import XCTest
@testable import Strata

final class CollectionSearchSectionsTests: StrataTestCase {
    func testFlushBuildsAndCompactionKeepsPayloadIndexes() throws {
        let schema = SegmentSchema(dimension: 4, metric: .l2,
                                   columns: [ColumnSpec(name: "month", type: .string), ColumnSpec(name: "text", type: .string)])
        var options = CollectionOptions()
        options.index = nil
        options.search = SearchSectionOptions(indexedColumns: ["month"], bm25Columns: ["text"])
        let dir = tmpPath("coll")
        let c = try StrataCollection.create(path: dir, schema: schema, options: options)
        for batch in 0..<4 {
            let rows = (0..<10).map { i -> SegmentRow in
                let id = UInt64(batch * 10 + i)
                return SegmentRow(id: id, vector: [Float(id), 0, 0, 1],
                                  payload: ["month": .string("2024-0\(i % 3 + 1)"), "text": .string("row \(id) fast parser")])
            }
            try c.insert(rows)
            _ = try c.flush()
        }
        func segments() throws -> [Segment] {
            try c.snapshot().manifest.segments.map { try Segment.open(path: "\(dir)/\($0.name)") }
        }
        let before = try segments()
        XCTAssertEqual(before.count, 4)
        for s in before {
            XCTAssertEqual(Array(s.payloadIndexSizes.keys), ["month"])
            XCTAssertEqual(s.bm25Columns, ["text"])
        }
        var policy = CompactionPolicy()
        policy.index = nil
        policy.graceSeconds = 0
        let result = try Compactor(path: dir, policy: policy).run()
        XCTAssertFalse(result.done.isEmpty, "four equal small segments should merge")
        try c.refresh()
        let after = try segments()
        XCTAssertLessThan(after.count, before.count)
        for s in after {
            XCTAssertEqual(Array(s.payloadIndexSizes.keys), ["month"], "compaction must keep the payload index")
            XCTAssertEqual(s.bm25Columns, ["text"], "compaction must keep the BM25 column")
        }
        // The merged segment answers a filtered query through its index.
        let merged = try XCTUnwrap(after.max { $0.rowCount < $1.rowCount })
        let filter = try Filter(json: #"{"must":[{"key":"month","match":{"value":"2024-02"}}]}"#)
        let hits = try merged.search(query: [5, 0, 0, 1], filter: filter, options: FilteredSearchOptions(k: 5)).hits
        XCTAssertFalse(hits.isEmpty)
        for h in hits { XCTAssertEqual(try merged.value(row: h.row, column: "month"), .string("2024-02")) }
        c.close()
    }
}
