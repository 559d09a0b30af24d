// Schema growth of a local collection: nullable columns appended after rows exist. Rows buffered
// and sealed before read the new columns as null; get, scan and (filtered) search agree with a
// brute-force model across segments of both widths and the buffer; compaction merges the widths;
// reopen replays a WAL written after the change; a read-only handle sees the change on refresh;
// bad requests are refused.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat

/// The model of the schema-growth tests (local and RemoteSchemaGrowthTests).
enum Growth {
    static let added = [ColumnSpec(name: "score", type: .float64, nullable: true),
                        ColumnSpec(name: "labels", type: .stringList, nullable: true),
                        ColumnSpec(name: "flag", type: .bool, nullable: true)]

    /// id -> (vector seed version, payload by column name; missing names are null).
    typealias Rows = [UInt64: (version: Int64, payload: [String: PayloadValue])]

    static func oldRow(_ id: UInt64, version: Int64 = 0) -> SegmentRow { CollectionTestCase.rows([id], version: version)[0] }

    /// A row that sets the new columns (some of them null, by id).
    static func newRow(_ id: UInt64, version: Int64 = 5) -> SegmentRow {
        var r = oldRow(id, version: version)
        r.payload["score"] = id % 4 == 0 ? .null : .float64(Double(id % 50) / 10)
        r.payload["labels"] = id % 5 == 0 ? .null : .stringList(["l\(id % 3)", "m\(id % 7)"])
        r.payload["flag"] = id % 6 == 0 ? .null : .bool(id % 2 == 0)
        return r
    }

    static func record(_ r: SegmentRow, version: Int64) -> (version: Int64, payload: [String: PayloadValue]) { (version, r.payload) }

    /// The model's payload of `id` in `schema` order.
    static func values(_ p: [String: PayloadValue], _ schema: SegmentSchema) -> [PayloadValue] {
        schema.columns.map { p[$0.name] ?? .null }
    }

    /// Filters over old and new columns, with every composition.
    static let filters: [Filter] = [
        .only(.isNull(key: "score")),
        .only(.range(key: "score", FilterRange(gte: .float(1.0), lt: .float(3.5)))),
        .only(.match(key: "labels", value: .string("l1"))),
        .only(.matchAny(key: "labels", values: [.string("m2"), .string("m3")])),
        .only(.match(key: "flag", value: .bool(true))),
        Filter(mustNot: [.isNull(key: "flag")]),
        Filter(mustNot: [.match(key: "flag", value: .bool(false))]),
        Filter(should: [.match(key: "flag", value: .bool(true)), .match(key: "tag", value: .string("t3"))]),
        Filter(should: [.isNull(key: "labels"), .range(key: "ver", FilterRange(gt: .int(3)))]),
        Filter(must: [.range(key: "ver", FilterRange(lte: .int(0)))], mustNot: [.isNull(key: "score")]),
        Filter(must: [.filter(Filter(should: [.isNull(key: "score"), .match(key: "labels", value: .string("l2"))]))],
               mustNot: [.filter(Filter(must: [.isNull(key: "flag"), .isNull(key: "tag")]))]),
        .only(.prefix(key: "tag", prefix: "t1", caseInsensitive: false)),
        Filter(must: [.isNull(key: "tag"), .isNull(key: "labels")]),
    ]

}

/// Checks shared with RemoteSchemaGrowthTests.
extension CollectionTestCase {
    /// Brute-force filtered top-k (l2, Double) of the model.
    func growthReference(_ model: Growth.Rows, schema: SegmentSchema, query: [Float], k: Int, filter: Filter?) -> [(UInt64, Double)] {
        var all: [(UInt64, Double)] = []
        for (id, r) in model where filter?.matches(Growth.values(r.payload, schema), schema: schema) ?? true {
            let v = vector(id, r.version)
            all.append((id, zip(query, v).reduce(0.0) { let d = Double($1.0) - Double($1.1); return $0 + d * d }))
        }
        all.sort { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
        return Array(all.prefix(k))
    }

    /// Checks every read path of `snap` (scan, get, search with and without filters, k small and
    /// over the row count) against the model.
    func checkGrown(_ snap: CollectionSnapshot, _ model: Growth.Rows, file: StaticString = #filePath, line: UInt = #line) throws {
        let schema = snap.schema
        XCTAssertEqual(snap.count, model.count, "count", file: file, line: line)
        var seen = Set<UInt64>()
        try snap.forEachRow { r in
            XCTAssertTrue(seen.insert(r.id).inserted, "id \(r.id) twice", file: file, line: line)
            guard let m = model[r.id] else { return XCTFail("id \(r.id) is not live", file: file, line: line) }
            XCTAssertEqual(r.payload, Growth.values(m.payload, schema), "payload of \(r.id)", file: file, line: line)
            XCTAssertEqual(r.vector, self.vector(r.id, m.version), "vector of \(r.id)", file: file, line: line)
        }
        XCTAssertEqual(seen.count, model.count, file: file, line: line)
        for id in model.keys.sorted().prefix(40) + [model.keys.max()!] {
            let r = try XCTUnwrap(try snap.get(id: id), file: file, line: line)
            XCTAssertEqual(r.payload, Growth.values(model[id]!.payload, schema), "get \(id)", file: file, line: line)
        }
        for (qi, q) in queries(6).enumerated() {
            // Before the growth, the filters on the new columns are refused (unknown columns): left out.
            for filter in [nil] + Growth.filters.filter({ (try? $0.validate(against: schema)) != nil }) {
                for k in [10, model.count + 5] {
                    let hits = try snap.search(query: q, filter: filter, options: SearchOptions(k: k)).map(\.id)
                    let want = growthReference(model, schema: schema, query: q, k: k, filter: filter)
                    if let why = Self.mismatchUpToNearTies(hits, reference: want, k: k) {
                        XCTFail("query \(qi) k \(k) filter \(filter.map { "\($0)" } ?? "none"): \(why)", file: file, line: line)
                    }
                }
            }
        }
    }
}


final class SchemaGrowthTests: CollectionTestCase {
    /// Checks every read path of the collection's current snapshot against the model.
    func check(_ c: StrataCollection, _ model: Growth.Rows, file: StaticString = #filePath, line: UInt = #line) throws {
        try checkGrown(try c.snapshot(), model, file: file, line: line)
    }

    func testAddColumnsWithRowsSealedAndBuffered() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        var model: Growth.Rows = [:]
        try c.insert((0..<300).map { Growth.oldRow($0) })
        for id in UInt64(0)..<300 { model[id] = Growth.record(Growth.oldRow(id), version: 0) }
        try c.flush()                                             // segment A: 2 columns
        try c.insert((300..<400).map { Growth.oldRow($0) })          // buffered at 2 columns
        for id in UInt64(300)..<400 { model[id] = Growth.record(Growth.oldRow(id), version: 0) }
        XCTAssertEqual(try c.delete(ids: [3, 4, 5, 310]), 4)       // pending deletes of sealed and buffered rows
        for id: UInt64 in [3, 4, 5, 310] { model[id] = nil }
        let before = try c.snapshot().generation

        try c.addColumns(Growth.added)
        XCTAssertEqual(c.schema.columns, Self.schema.columns + Growth.added)
        let afterGrowth = try c.snapshot()
        XCTAssertEqual(afterGrowth.generation, before + 1, "one publish: flush and schema")
        XCTAssertEqual(afterGrowth.bufferedRows, 0)
        XCTAssertEqual(afterGrowth.manifest.segments.map { $0.columns(of: afterGrowth.schema) }, [2, 2])
        XCTAssertTrue(afterGrowth.manifest.hasNarrowSegments)
        XCTAssertNotNil(afterGrowth.manifest.segments[0].deleteFile, "the pending deletes became a bitmap")
        try check(c, model)

        // Rows with the new columns: upserts of old ids, new ids; sealed, then buffered.
        let upserted: [UInt64] = [10, 20, 320, 399]
        try c.upsert(upserted.map { Growth.newRow($0) })
        for id in upserted { model[id] = Growth.record(Growth.newRow(id), version: 5) }
        try c.insert((400..<600).map { Growth.newRow($0) })
        for id in UInt64(400)..<600 { model[id] = Growth.record(Growth.newRow(id), version: 5) }
        try c.flush()                                             // segment C: 5 columns
        try c.insert((600..<700).map { Growth.newRow($0) })
        try c.insert([Growth.oldRow(700)])                           // a row that leaves the new columns null
        for id in UInt64(600)..<700 { model[id] = Growth.record(Growth.newRow(id), version: 5) }
        model[700] = Growth.record(Growth.oldRow(700), version: 0)
        XCTAssertEqual(try c.delete(ids: [401, 650]), 2)
        model[401] = nil; model[650] = nil
        let stats = try c.stats()
        XCTAssertEqual(stats.segments.map(\.columns), [2, 2, 5])
        try check(c, model)
        XCTAssertEqual(try c.get(id: 7)?.payload.suffix(3), [.null, .null, .null], "an old row reads the new columns as null")
        XCTAssertEqual(try c.search(query: vector(7, 0), filter: .only(.isNull(key: "score")), options: SearchOptions(k: 1)).first?.id, 7)

        // A filter on a column the manifest lacks is still refused.
        assertStrataError(.unknownColumn) { try c.search(query: vector(1, 0), filter: .only(.isNull(key: "nope"))) }
        // Adding again is a no-op (nothing published).
        let g = try c.snapshot().generation
        try c.addColumns(Growth.added)
        try c.addColumns([Growth.added[1]])
        XCTAssertEqual(try c.snapshot().generation, g)

        // Reopen: the WAL written after the change replays with the new schema.
        c.close()
        let r = try StrataCollection.open(path: dir, options: options())
        XCTAssertEqual(r.schema.columns.count, 5)
        XCTAssertGreaterThan(r.recovery.records, 0)
        try check(r, model)
        let verified = try StrataCollection.verify(path: dir)
        XCTAssertTrue(verified.isSound, "\(verified.problems)")
        XCTAssertTrue(try StrataCollection.scrub(path: dir).isSound)

        // Compaction merges segments of both widths into one of the manifest's width.
        try r.flush()
        var policy = CompactionPolicy()
        policy.mergeFactor = 2
        policy.graceSeconds = 0
        policy.index = nil
        let result = try Compactor(path: dir, policy: policy).run()
        XCTAssertFalse(result.done.isEmpty, "\(result.plan)")
        let compacted = try r.snapshot()
        XCTAssertLessThan(compacted.manifest.segments.count, 4)
        try check(r, model)
        try r.insert([Growth.newRow(800)])
        model[800] = Growth.record(Growth.newRow(800), version: 5)
        try check(r, model)
        r.close()
    }

    func testAddColumnsOnEmptyBufferRotatesTheWAL() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        let m0 = try c.snapshot().manifest
        try c.addColumns(Growth.added)
        let m1 = try c.snapshot().manifest
        XCTAssertEqual(m1.walSequence, m0.walSequence + 1, "a new WAL for the new schema")
        XCTAssertFalse(m1.hasNarrowSegments, "no segment: format 1.0")
        XCTAssertEqual(try Manifest.read(directory: dir).schema.columns.count, 5)
        try c.insert([Growth.newRow(1)])
        c.close()
        let r = try StrataCollection.open(path: dir, options: options())
        XCTAssertEqual(try r.get(id: 1)?.payload, Growth.values(Growth.newRow(1).payload, r.schema))
        r.close()
    }

    func testReadOnlyHandleSeesGrowthOnRefresh() throws {
        let dir = tmpPath("c")
        let w = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try w.insert((0..<50).map { Growth.oldRow($0) })
        let reader = try StrataCollection.open(path: dir, access: .readOnly, options: options())
        XCTAssertEqual(try reader.count(), 50)
        XCTAssertEqual(reader.schema.columns.count, 2)
        try w.addColumns(Growth.added)
        try w.insert((50..<80).map { Growth.newRow($0) })
        let snap = try reader.snapshot()
        XCTAssertEqual(snap.schema.columns.count, 5)
        XCTAssertEqual(reader.schema.columns.count, 5)
        XCTAssertEqual(snap.count, 80)
        XCTAssertEqual(try reader.get(id: 60)?.payload, Growth.values(Growth.newRow(60).payload, snap.schema))
        XCTAssertEqual(try reader.get(id: 1)?.payload.count, 5)
        // WAL records appended later are read incrementally with the new schema.
        try w.upsert([Growth.newRow(1, version: 6)])
        XCTAssertEqual(try reader.get(id: 1)?.payload, Growth.values(Growth.newRow(1, version: 6).payload, snap.schema))
        let hits = try reader.search(query: vector(61, 5), filter: .only(.match(key: "flag", value: .bool(false))), options: SearchOptions(k: 100))
        // flag is false for odd ids, null for multiples of 6; row 1 was upserted with the new columns.
        var want: Set<UInt64> = [1]
        for id in UInt64(50)..<80 where id % 6 != 0 && id % 2 == 1 { want.insert(id) }
        XCTAssertEqual(Set(hits.map(\.id)), want)
        w.close()
    }

    func testBadRequestsAreRefused() throws {
        let dir = tmpPath("c")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try c.insert((0..<10).map { Growth.oldRow($0) })
        let g = try c.snapshot().generation
        assertStrataError(.invalidArgument) { try c.addColumns([ColumnSpec(name: "x", type: .int64)]) }
        assertStrataError(.typeMismatch) { try c.addColumns([ColumnSpec(name: "tag", type: .int64, nullable: true)]) }
        let e = assertStrataError(.typeMismatch) { try c.addColumns([ColumnSpec(name: "ver", type: .int64, nullable: true)]) }
        XCTAssertTrue(e?.message.contains("'ver'") ?? false, "\(String(describing: e))")
        assertStrataError(.invalidArgument) {
            try c.addColumns([ColumnSpec(name: "y", type: .int64, nullable: true), ColumnSpec(name: "y", type: .int64, nullable: true)])
        }
        assertStrataError(.invalidArgument) { try c.addColumns([ColumnSpec(name: "", type: .int64, nullable: true)]) }
        assertStrataError(.invalidArgument) { try c.addColumns([ColumnSpec(name: String(repeating: "n", count: 256), type: .bool, nullable: true)]) }
        // A refused request changes nothing, even alongside good columns.
        assertStrataError(.invalidArgument) {
            try c.addColumns([ColumnSpec(name: "ok", type: .int64, nullable: true), ColumnSpec(name: "bad", type: .int64)])
        }
        XCTAssertEqual(try c.snapshot().generation, g)
        XCTAssertEqual(c.schema, Self.schema)
        XCTAssertEqual(try c.snapshot().bufferedRows, 10)
        // A new column's values are type-checked like any other.
        try c.addColumns([Growth.added[0]])
        assertStrataError(.typeMismatch) {
            var r = Growth.oldRow(50)
            r.payload["score"] = .string("high")
            try c.insert([r])
        }
        let ro = try StrataCollection.open(path: dir, access: .readOnly, options: options())
        assertStrataError(.invalidArgument) { try ro.addColumns([Growth.added[1]]) }
        c.close()
        assertStrataError(.invalidArgument) { try c.addColumns([Growth.added[1]]) }
    }

    /// Payload indexes on the new columns: options may name them before they exist (the flush that
    /// grows the schema seals the old rows without them), later flushes and compactions build them,
    /// and filtered searches through the indexes agree with the model across both widths.
    func testPayloadIndexesOnAddedColumns() throws {
        let dir = tmpPath("c")
        var o = options()
        o.search.indexedColumns = ["ver", "tag"]
        var model: Growth.Rows = [:]
        do {
            let c = try StrataCollection.create(path: dir, schema: Self.schema, options: o)
            try c.insert((0..<200).map { Growth.oldRow($0) })
            try c.flush()
            try c.insert((200..<300).map { Growth.oldRow($0) })
            c.close()
        }
        for id in UInt64(0)..<300 { model[id] = Growth.record(Growth.oldRow(id), version: 0) }
        o.search.indexedColumns = ["ver", "tag"] + Growth.added.map(\.name)
        let c = try StrataCollection.open(path: dir, options: o)
        try c.addColumns(Growth.added)
        try c.insert((300..<500).map { Growth.newRow($0) })
        try c.upsert([Growth.newRow(7)])
        for id in UInt64(300)..<500 { model[id] = Growth.record(Growth.newRow(id), version: 5) }
        model[7] = Growth.record(Growth.newRow(7), version: 5)
        try c.flush()
        let snap = try c.snapshot()
        let indexed = snap.manifest.segments.map { Set(snap.segment(named: $0.name)!.payloadIndexSizes.keys) }
        XCTAssertEqual(indexed, [["ver", "tag"], ["ver", "tag"], Set(o.search.indexedColumns)])
        try check(c, model)
        var policy = CompactionPolicy()
        policy.mergeFactor = 2
        policy.graceSeconds = 0
        policy.index = nil
        policy.search.indexedColumns = o.search.indexedColumns
        XCTAssertFalse(try Compactor(path: dir, policy: policy).run().done.isEmpty)
        let merged = try c.snapshot()
        XCTAssertFalse(merged.manifest.hasNarrowSegments)
        for s in merged.manifest.segments {
            XCTAssertEqual(Set(merged.segment(named: s.name)!.payloadIndexSizes.keys), Set(o.search.indexedColumns))
        }
        try check(c, model)
        c.close()
    }

    /// Filter resolution on a segment without some columns equals the reference evaluation on nulls.
    func testResolvedFilterEqualsEvaluationOnNulls() throws {
        let full = SegmentSchema(dimension: 2, columns: Self.schema.columns + Growth.added)
        let narrow = Self.schema
        var rng = SplitMix64(seed: 9)
        for filter in Growth.filters {
            let resolved = filter.resolved(forSegment: narrow)
            for _ in 0..<50 {
                let id = UInt64(rng.next() % 1000)
                let old = Growth.values(Growth.oldRow(id).payload, full)
                let want = filter.matches(old, schema: full)
                let got: Bool
                switch resolved {
                case .all: got = true
                case .none: got = false
                case .filter(let f): got = f.matches(Array(old.prefix(2)), schema: narrow)
                }
                XCTAssertEqual(got, want, "\(filter) -> \(resolved) on row \(id)")
            }
        }
        XCTAssertEqual(Filter.only(.isNull(key: "ver")).resolved(forSegment: narrow), .filter(.only(.isNull(key: "ver"))), "unchanged")
        XCTAssertEqual(Filter.only(.isNull(key: "score")).resolved(forSegment: narrow), .all)
        XCTAssertEqual(Filter(mustNot: [.isNull(key: "score")]).resolved(forSegment: narrow), .none)
        XCTAssertEqual(Filter(should: [.match(key: "flag", value: .bool(true))]).resolved(forSegment: narrow), .none)
    }
}
