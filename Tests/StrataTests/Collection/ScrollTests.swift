// Scroll with a cursor: pages read one after another equal the id-sorted listing of every live row
// (across flushes, deletes, upserts, the buffer), with and without a filter, at several page sizes;
// hostile limits are refused.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class ScrollTests: CollectionTestCase {
    /// A collection whose rows sit in three segments and the buffer, with ids written out of order,
    /// deletes flushed into bitmaps and pending in the buffer, upserts across segments and in the buffer.
    func makeCollection() throws -> (StrataCollection, Model) {
        let c = try StrataCollection.create(path: tmpPath("c"), schema: Self.schema, options: options())
        var model: Model = [:]
        var rng = SplitMix64(seed: 9)
        var ids = (0..<UInt64(600)).map { $0 * 3 }
        ids.shuffle(using: &rng)
        try c.insert(rows(ids[..<300]))
        try c.flush()
        try c.insert(rows(ids[300...]))
        for id in ids { model[id] = 0 }
        try c.delete(ids: [0, 3, 300, 1797])
        for id: UInt64 in [0, 3, 300, 1797] { model[id] = nil }
        try c.flush()
        try c.upsert(rows([6, 9, 900, 1794, 5000], version: 1)) // sealed ids in both segments, and a new one
        for id: UInt64 in [6, 9, 900, 1794, 5000] { model[id] = 1 }
        try c.insert(rows([1, 2, 4, 2000], version: 2))
        for id: UInt64 in [1, 2, 4, 2000] { model[id] = 2 }
        try c.flush()
        try c.upsert(rows([9, 10, 4], version: 3)) // over rows of the newest segment, and a new id
        for id: UInt64 in [9, 10, 4] { model[id] = 3 }
        try c.delete(ids: [12, 2, 5000]) // pending deletes of sealed rows
        for id: UInt64 in [12, 2, 5000] { model[id] = nil }
        try c.insert(rows([7, 8], version: 4))
        try c.delete(ids: [8]) // a buffered row deleted in the buffer
        model[7] = 4
        XCTAssertEqual(try c.stats().segments.count, 3)
        return (c, model)
    }

    /// Every page from the start with `limit`, concatenated; fails on a cursor that does not advance.
    func scrollAll(_ snap: CollectionSnapshot, limit: Int, filter: Filter? = nil) throws -> [CollectionRecord] {
        var out: [CollectionRecord] = []
        var after: UInt64? = nil
        for _ in 0..<10_000 {
            let page = try snap.scroll(after: after, limit: limit, filter: filter)
            XCTAssertLessThanOrEqual(page.records.count, limit)
            out += page.records
            guard let next = page.nextId else { return out }
            XCTAssertEqual(page.records.count, limit, "a page before the last is full")
            XCTAssertEqual(next, page.records.last?.id)
            if let after { XCTAssertGreaterThan(next, after) }
            after = next
        }
        XCTFail("scroll did not end")
        return out
    }

    func version(_ r: CollectionRecord) -> Int64? { if case .int64(let v) = r.payload[0] { return v }; return nil }

    func testPagesEqualTheSortedListing() throws {
        let (c, model) = try makeCollection()
        let snap = try c.snapshot()
        let want = model.keys.sorted()
        for limit in [1, 7, 100, 5000] {
            let got = try scrollAll(snap, limit: limit)
            XCTAssertEqual(got.map(\.id), want, "limit \(limit)")
            for r in got {
                XCTAssertEqual(version(r), model[r.id], "version of \(r.id)")
                XCTAssertEqual(r.vector, vector(r.id, model[r.id]!), "vector of \(r.id)")
            }
        }
        // The same ids as the unordered listing.
        var listed: [UInt64] = []
        try snap.forEachRow { listed.append($0.id) }
        XCTAssertEqual(listed.sorted(), want)
        // A cursor in the middle, between ids, and past the end.
        XCTAssertEqual(try snap.scroll(after: 1000, limit: 3).records.map(\.id), Array(want.filter { $0 > 1000 }.prefix(3)))
        XCTAssertEqual(try snap.scroll(after: 1001, limit: 2).records.map(\.id), Array(want.filter { $0 > 1001 }.prefix(2)))
        let end = try snap.scroll(after: want.last!, limit: 10)
        XCTAssertEqual(end.records.count, 0)
        XCTAssertNil(end.nextId)
        XCTAssertNil(try snap.scroll(after: UInt64.max, limit: 10).nextId)
        // The last page exactly full says there is nothing more.
        let tail = try snap.scroll(after: want[want.count - 4], limit: 3)
        XCTAssertEqual(tail.records.map(\.id), Array(want.suffix(3)))
        XCTAssertNil(tail.nextId)
        // StrataCollection forwards to its snapshot.
        XCTAssertEqual(try c.scroll(limit: 5).records.map(\.id), Array(want.prefix(5)))
    }

    func testFilteredPages() throws {
        let (c, model) = try makeCollection()
        let snap = try c.snapshot()
        // tag is null for ids divisible by 3; ver >= 1 for rewritten rows.
        let nullTag = Filter(must: [.isNull(key: "tag")])
        XCTAssertEqual(try scrollAll(snap, limit: 13, filter: nullTag).map(\.id), model.keys.filter { $0 % 3 == 0 }.sorted())
        let rewritten = try Filter(json: #"{"must":[{"key":"ver","range":{"gte":1}}]}"#)
        XCTAssertEqual(try scrollAll(snap, limit: 2, filter: rewritten).map(\.id), model.filter { $0.value >= 1 }.keys.sorted())
        let none = try Filter(json: #"{"must":[{"key":"ver","range":{"gte":99}}]}"#)
        let empty = try snap.scroll(limit: 10, filter: none)
        XCTAssertEqual(empty.records.count, 0)
        XCTAssertNil(empty.nextId)
        assertStrataError(.unknownColumn) { try snap.scroll(limit: 10, filter: Filter(must: [.isNull(key: "nope")])) }
    }

    func testScrollAfterReopenAndCompaction() throws {
        let (c, model) = try makeCollection()
        try c.flush()
        let dir = c.path
        c.close()
        var policy = CompactionPolicy()
        policy.mergeFactor = 2
        policy.tierBaseRows = 1_000_000
        policy.index = nil
        policy.graceSeconds = 0
        _ = try Compactor(path: dir, policy: policy).run()
        let r = try StrataCollection.open(path: dir, access: .readOnly, options: options())
        XCTAssertEqual(try scrollAll(try r.snapshot(), limit: 64).map(\.id), model.keys.sorted())
    }

    func testHostileLimits() throws {
        let (c, _) = try makeCollection()
        for limit in [0, -1, Int.min, CollectionSnapshot.maxScrollLimit + 1, Int.max] {
            assertStrataError(.invalidArgument, "limit \(limit)") { try c.scroll(limit: limit) }
        }
    }
}
