// Payload indexes and BM25 columns in collections: flushed segments get them from
// CollectionOptions.search, and compaction keeps them ("rebuilt by the compactor").
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

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

    /// Filtered collection search equals a brute-force filtered scan over the live rows: sealed
    /// segments (indexed and not), pending and flushed deletes, and the unflushed buffer.
    func testFilteredCollectionSearchEqualsBruteForce() throws {
        let schema = SegmentSchema(dimension: 8, metric: .l2,
                                   columns: [ColumnSpec(name: "tag", type: .string), ColumnSpec(name: "n", type: .int64, nullable: true)])
        var options = CollectionOptions()
        options.index?.minimumRows = 500
        options.index?.graph.maxDegree = 16
        options.index?.graph.buildListSize = 32
        options.index?.pqSubspaces = 4
        options.search = SearchSectionOptions(indexedColumns: ["tag", "n"])
        options.backgroundIndex = false             // the flush itself indexes the first segment
        let c = try StrataCollection.create(path: tmpPath("fc"), schema: schema, options: options)
        var rng = SplitMix64(seed: 42)
        var live: [UInt64: ([Float], [PayloadValue])] = [:]
        var nextId: UInt64 = 0
        func batch(_ count: Int) throws {
            var rows: [SegmentRow] = []
            for _ in 0..<count {
                let v = (0..<8).map { _ in rng.gaussianish() }
                let tag = ["a", "b", "c", "d"][rng.int(4)]
                let n: PayloadValue = rng.int(5) == 0 ? .null : .int64(Int64(rng.int(100)))
                rows.append(SegmentRow(id: nextId, vector: v, payload: ["tag": .string(tag), "n": n]))
                live[nextId] = (v, [.string(tag), n])
                nextId += 1
            }
            try c.insert(rows)
        }
        try batch(800); _ = try c.flush()          // indexed segment
        try batch(300); _ = try c.flush()          // exact-only segment
        XCTAssertEqual(try c.snapshot().manifest.segments.map(\.indexed), [true, false])
        let doomed = live.keys.sorted().filter { $0 % 7 == 0 }
        _ = try c.delete(ids: doomed)                // pending deletes of sealed rows
        for id in doomed { live[id] = nil }
        try batch(200)                               // unflushed buffer
        let filters = [#"{"must":[{"key":"tag","match":{"value":"b"}}]}"#,
                       #"{"must":[{"key":"n","range":{"gte":20,"lt":60}}],"must_not":[{"key":"tag","match":{"value":"a"}}]}"#,
                       #"{"should":[{"key":"n","is_null":true},{"key":"tag","match":{"any":["c"]}}]}"#]
        for json in filters {
            let filter = try Filter(json: json)
            for _ in 0..<10 {
                let q = (0..<8).map { _ in rng.gaussianish() }
                var want: [(Float, UInt64)] = []
                for (id, (v, values)) in live where filter.matches(values, schema: schema) {
                    var d: Float = 0
                    for i in 0..<8 { d += (v[i] - q[i]) * (v[i] - q[i]) }
                    want.append((d, id))
                }
                want.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
                let exact = try c.search(query: q, filter: filter, options: SearchOptions(k: 10, exact: true))
                XCTAssertEqual(exact.map(\.id), want.prefix(10).map(\.1), json)
                let approx = try c.search(query: q, filter: filter, options: SearchOptions(k: 10, listSize: 64))
                let allowed = Set(want.map(\.1))
                for h in approx { XCTAssertTrue(allowed.contains(h.id), "row \(h.id) fails the filter or is deleted") }
                XCTAssertGreaterThanOrEqual(Set(approx.map(\.id)).intersection(want.prefix(10).map(\.1)).count, 8, json)
            }
        }
        assertStrataError(.unknownColumn) { try c.search(query: [Float](repeating: 0, count: 8), filter: try Filter(json: #"{"must":[{"key":"nope","match":{"value":1}}]}"#)) }
        c.close()
    }
}
