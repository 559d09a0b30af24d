// The benchmark loop of `strata bench` / `bench-filter` (BenchSweep, StrataTools): results in query
// order whatever the threads, counters summed per pass, latencies of every timed pass, nearest-rank
// percentiles, recall against ground truth, and a search error surfacing from any thread.
import XCTest
@testable import Strata
@testable import StrataTools

final class BenchSweepTests: XCTestCase {
    /// A search whose hits and counters are a function of the query number.
    static let search: BenchSweep.Search<SearchHit> = { (q) throws(StrataError) in
        ([SearchHit(id: UInt64(q), row: q, distance: Float(q)), SearchHit(id: UInt64(q) + 100, row: q + 100, distance: Float(q) + 1)], BenchCounters(recordsRead: q, cachedRecords: 1, hops: 2, pqDistances: 3))
    }

    func testThreadedPassKeepsQueryOrderAndSumsCounters() throws {
        for threads in [1, 3] {
            let pass = try BenchSweep(queries: 10, threads: threads, warmup: 4, passes: 2).measure(Self.search)
            XCTAssertEqual(pass.results.map { $0.map(\.row) }, (0..<10).map { [$0, $0 + 100] }, "threads \(threads)")
            XCTAssertEqual(pass.counters, BenchCounters(recordsRead: 45, cachedRecords: 10, hops: 20, pqDistances: 30), "threads \(threads)")
            XCTAssertEqual(pass.latencies.count, 20, "every timed pass's latencies")
            XCTAssertEqual(pass.perQuery(\.recordsRead), 4.5)
            XCTAssertGreaterThan(pass.qps, 0)
        }
    }

    func testSweepRunsEverySettingInOrder() throws {
        var seen: [Int] = []
        let passes = try BenchSweep(queries: 3).run([5, 7, 9], prepare: { (l) throws(StrataError) -> BenchSweep.Search<Int> in
            { (q) throws(StrataError) in ([l * 10 + q], BenchCounters()) }
        }, each: { l, pass in seen.append(l); XCTAssertEqual(pass.results, [[l * 10], [l * 10 + 1], [l * 10 + 2]]) })
        XCTAssertEqual(seen, [5, 7, 9])
        XCTAssertEqual(passes.count, 3)
    }

    func testErrorFromAThreadIsThrown() {
        let failing: BenchSweep.Search<SearchHit> = { (q) throws(StrataError) in
            if q == 7 { throw StrataError(.corrupt, "query 7") }
            return ([], BenchCounters())
        }
        for threads in [1, 4] {
            XCTAssertThrowsError(try BenchSweep(queries: 12, threads: threads).measure(failing)) { error in
                XCTAssertEqual((error as? StrataError)?.code, .corrupt)
            }
        }
    }

    func testNearestRankPercentiles() {
        var pass = BenchPass<Int>(results: [], latencies: [], seconds: 1, counters: BenchCounters(), queries: 0)
        XCTAssertEqual(pass.latencyMilliseconds(percentile: 50), 0)
        pass.latencies = [4_000_000, 1_000_000, 3_000_000, 2_000_000]
        XCTAssertEqual(pass.latencyMilliseconds(percentile: 50), 2)
        XCTAssertEqual(pass.latencyMilliseconds(percentile: 99), 4)
        XCTAssertEqual(pass.latencyMilliseconds(percentile: 0), 1)
        pass.latencies = Array(1...100).map { UInt64($0) * 1_000_000 }
        XCTAssertEqual(pass.latencyMilliseconds(percentile: 99), 99)
    }

    func testRecallCountsDistinctTrueNeighbours() {
        let truth: [[Int32]] = [[1, 2, 3, 9], [5, 5, 6]]
        XCTAssertEqual(GroundTruth.recall([[3, 1, 7], [5, 8, 6]], truth: truth, depth: 3), 4.0 / 5.0)
        XCTAssertEqual(GroundTruth.recall([[9]], truth: truth, depth: 3), 0)
        XCTAssertNil(GroundTruth.recall([[Int]](), truth: truth, depth: 3))
        let pass = BenchPass<SearchHit>(results: [[SearchHit(id: 2, row: 2, distance: 0)]], latencies: [], seconds: 1, counters: BenchCounters(), queries: 1)
        XCTAssertEqual(pass.recall(truth, at: 1), 0)
        XCTAssertEqual(pass.recall(truth, at: 2), 0.5)
    }
}
