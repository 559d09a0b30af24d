// The library's metrics and logging through the factory and logger passed in the options (no
// global bootstrap): inserted rows, flushes and their index builds, searches, compactions.
import Foundation
import Logging
import MetricsTestKit
import Synchronization
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class CollectionMetricsTests: CollectionTestCase {
    /// A log handler that keeps the messages.
    struct RecordingLogHandler: LogHandler {
        let box: Box
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            box.messages.withLock { $0.append("\(event.level) \(event.message)") }
        }
    }

    final class Box: Sendable { let messages = Mutex<[String]>([]) }

    func testCountersTimersAndLog() throws {
        let metrics = TestMetrics()
        let box = Box()
        var o = options(flushRows: 250)
        var ix = IndexOptions()
        ix.minimumRows = 200
        o.index = ix
        o.metricsFactory = metrics
        o.logger = Logger(label: "test") { _ in RecordingLogHandler(box: box) }
        let c = try StrataCollection.create(path: tmpPath("c"), schema: Self.schema, options: o)
        try c.insert(rows(0..<100))
        try c.insert(rows(100..<300)) // past the threshold: an indexed flush
        try c.upsert(rows(0..<10, version: 1))
        XCTAssertThrowsError(try c.insert(rows(0..<1))) // refused: not counted
        try c.delete(ids: [5])
        try c.flush() // 10 rows: below minimumRows, not indexed
        XCTAssertEqual(try metrics.expectCounter(CollectionMetricNames.insertedRows).totalValue, 310)
        XCTAssertEqual(try metrics.expectCounter(CollectionMetricNames.flushes).totalValue, 2)
        XCTAssertEqual(try metrics.expectTimer(CollectionMetricNames.flushSeconds).values.count, 2)
        XCTAssertEqual(try metrics.expectCounter(CollectionMetricNames.indexBuilds).totalValue, 1)
        XCTAssertNil(try? metrics.expectTimer(CollectionMetricNames.searchSeconds), "no search yet")
        _ = try c.search(query: vector(1, 0), options: SearchOptions(k: 3))
        _ = try c.search(query: vector(1, 0), filter: Filter(must: [.isNull(key: "tag")]), options: SearchOptions(k: 3))
        XCTAssertEqual(try metrics.expectTimer(CollectionMetricNames.searchSeconds).values.count, 2)
        XCTAssertEqual(box.messages.withLock { $0.filter { $0.hasPrefix("debug flushed") }.count }, 2, "\(box.messages.withLock { $0 })")
        c.close()

        var policy = CompactionPolicy()
        policy.mergeFactor = 2
        policy.tierBaseRows = 1_000_000
        policy.graceSeconds = 0
        policy.index?.minimumRows = 100
        policy.metricsFactory = metrics
        policy.logger = Logger(label: "test") { _ in RecordingLogHandler(box: box) }
        let steps = Mutex<[[Int]]>([])
        policy.progress = { done, total in steps.withLock { $0.append([done, total]) } }
        let r = try Compactor(path: tmpPath("c"), policy: policy).run()
        XCTAssertEqual(r.done.count, 1)
        XCTAssertEqual(steps.withLock { $0 }, [[0, 1], [1, 1]], "progress before and after the one task")
        XCTAssertEqual(try metrics.expectCounter(CollectionMetricNames.compactions).totalValue, 1)
        XCTAssertEqual(try metrics.expectCounter(CollectionMetricNames.indexBuilds).totalValue, 2, "the merged output is indexed")
        XCTAssertEqual(box.messages.withLock { $0.filter { $0.hasPrefix("info compaction task published") }.count }, 1)
    }

    func testNodeCacheHitsAndMissesAddUpToTheRecordsSearchesRead() throws {
        let metrics = TestMetrics()
        var ix = IndexOptions()
        ix.minimumRows = 100
        var o = options(index: ix)
        o.metricsFactory = metrics
        o.nodeCacheBudgetBytes = 8 << 10  // a few records: searches read both from the cache and from the file
        let c = try StrataCollection.create(path: tmpPath("m"), schema: Self.schema, options: o)
        try c.insert(rows(0..<600))
        try c.flush()
        try c.insert(rows(600..<1_200))
        try c.flush()
        try c.insert(rows(1_200..<1_210))  // the buffer: searched exactly, no graph records
        let segments = try c.snapshot().version.segments.map(\.segment)
        XCTAssertEqual(segments.map(\.hasIndex), [true, true])
        XCTAssertNil(try? metrics.expectCounter(CollectionMetricNames.nodeCacheHits), "no search yet")
        var (cached, read) = (0, 0)
        for q in 0..<20 {
            let query = vector(UInt64(q * 37), 1)
            let options = SearchOptions(k: 5)
            _ = try c.search(query: query, options: options)
            // The same searches, segment by segment, with their own counters.
            for s in segments {
                let stats = try XCTUnwrap(try s.searchWithStats(query: query, options: options).1)
                cached += stats.cachedRecords
                read += stats.recordsRead
            }
        }
        let hits = try metrics.expectCounter(CollectionMetricNames.nodeCacheHits).totalValue
        let misses = try metrics.expectCounter(CollectionMetricNames.nodeCacheMisses).totalValue
        XCTAssertGreaterThan(hits, 0)
        XCTAssertGreaterThan(misses, 0)
        XCTAssertEqual(hits, Int64(cached))
        XCTAssertEqual(hits + misses, Int64(read))
        // Filtered searches (graph plan over a broad filter) count their records too.
        var filtered = FilteredSearchStats()
        let filter = Filter(must: [.isNull(key: "tag")], mustNot: [])
        for q in 0..<5 {
            let query = vector(UInt64(q * 41), 2)
            _ = try c.search(query: query, filter: filter, options: SearchOptions(k: 5))
            for s in segments {
                let stats = try s.search(query: query, filter: filter, options: FilteredSearchOptions(k: 5, listSize: SearchOptions().listSize)).stats
                filtered.cachedRecords += stats.cachedRecords
                filtered.recordsRead += stats.recordsRead
            }
        }
        let hits2 = try metrics.expectCounter(CollectionMetricNames.nodeCacheHits).totalValue
        let misses2 = (try? metrics.expectCounter(CollectionMetricNames.nodeCacheMisses).totalValue) ?? 0
        XCTAssertEqual(hits2 - hits, Int64(filtered.cachedRecords))
        XCTAssertEqual(hits2 + misses2 - hits - misses, Int64(filtered.recordsRead))
        c.close()
    }

    func testDefaultsReportNothingOfTheirOwn() throws {
        // Default options: a no-op logger and the process's MetricsSystem (not bootstrapped by
        // these tests: a no-op); writing, flushing and searching work as before.
        let o = CollectionOptions()
        XCTAssertNil(o.metricsFactory)
        let c = try StrataCollection.create(path: tmpPath("d"), schema: Self.schema, options: options())
        try c.insert(rows(0..<5))
        try c.flush()
        XCTAssertEqual(try c.search(query: vector(2, 0), options: SearchOptions(k: 1)).first?.id, 2)
    }
}
