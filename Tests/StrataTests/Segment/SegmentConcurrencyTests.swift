// Concurrent readers on one mapping: 8 threads searching, reading payload and looking up ids on
// the same Segment must see exactly what a single thread sees.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class SegmentConcurrencyTests: StrataTestCase {
    struct Observed: Equatable {
        var search: [[SearchHit]]
        var batched: [[SearchHit]]
        var filtered: [SearchHit]
        var payload: [[PayloadValue]]
        var rows: [Int?]
        var vectors: [[Float]]
        var scan: [PayloadValue]
    }

    static func observe(_ seg: Segment, ids: [UInt64], queries: [[Float]], thread: Int) throws -> Observed {
        // Each thread walks the rows in a different order, so blocks are decoded in different orders.
        let order = (0..<seg.rowCount).map { ($0 * 11 + thread * 13) % seg.rowCount } // 11 is coprime to 700
        var payload = [[PayloadValue]](repeating: [], count: seg.rowCount)
        var vectors = [[Float]](repeating: [], count: seg.rowCount)
        for r in order {
            payload[r] = try seg.payload(row: r)
            vectors[r] = try seg.vector(row: r)
        }
        var scan: [PayloadValue] = []
        try seg.scan(column: "name") { _, v in scan.append(v) }
        return Observed(search: try queries.map { try seg.exactSearch(query: $0, k: 10) },
                        batched: try seg.exactSearch(queries: queries, k: 10),
                        filtered: try seg.exactSearch(query: queries[0], k: 5) { $0 % 3 == 0 },
                        payload: payload,
                        rows: try (ids + [1, 2, 3]).map { try seg.row(forId: $0) },
                        vectors: vectors, scan: scan)
    }

    func testEightConcurrentReaders() throws {
        let schema = SegmentSchema(dimension: 32, elementType: .float32, metric: .innerProduct, columns: [
            ColumnSpec(name: "name", type: .string),
            ColumnSpec(name: "rank", type: .int64, nullable: true),
            ColumnSpec(name: "tags", type: .stringList),
        ])
        var rng = SplitMix64(seed: 8)
        let rows = (0..<700).map { r in
            TestRow(id: rng.next(), vector: (0..<32).map { _ in rng.gaussianish() },
                    values: [.string("name-\(r)-é"), r % 5 == 0 ? .null : .int64(Int64(r)), .stringList(["t\(r % 7)", "x"])])
        }
        let path = tmpPath("concurrent.seg")
        try writeSegment(path: path, schema: schema, rows: rows, rowsPerBlock: 16, batchSize: 100)
        let seg = try Segment.open(path: path)
        let ids = rows.map(\.id)
        let queries = (0..<6).map { _ in (0..<32).map { _ in rng.gaussianish() } }
        let expected = try Self.observe(seg, ids: ids, queries: queries, thread: 0)
        XCTAssertEqual(expected.rows.prefix(700).map { $0 }, (0..<700).map { Optional($0) })

        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var observed: [Int: Observed] = [:]
            var errors: [String] = []
        }
        let results = Results()
        let rounds = 3
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for _ in 0..<rounds {
                do {
                    let o = try Self.observe(seg, ids: ids, queries: queries, thread: t)
                    results.lock.lock()
                    if o != expected { results.errors.append("thread \(t) saw different results") }
                    results.observed[t] = o
                    results.lock.unlock()
                } catch {
                    results.lock.lock()
                    results.errors.append("thread \(t): \(error)")
                    results.lock.unlock()
                }
            }
        }
        XCTAssertEqual(results.errors, [])
        XCTAssertEqual(results.observed.count, 8)
        // verify() concurrently with readers.
        let verified = Results()
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            if t % 2 == 0 {
                let ok = seg.verify().isSound
                verified.lock.lock(); if !ok { verified.errors.append("verify \(t) not sound") }; verified.lock.unlock()
            } else {
                let o = try? Self.observe(seg, ids: ids, queries: queries, thread: t)
                verified.lock.lock(); verified.observed[t] = o; verified.lock.unlock()
            }
        }
        XCTAssertEqual(verified.errors, [])
        XCTAssertEqual(verified.observed.count, 2)
        XCTAssertTrue(verified.observed.values.allSatisfy { $0 == expected })
    }
}
