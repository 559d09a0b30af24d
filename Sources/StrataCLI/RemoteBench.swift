// The object-store benchmark (`strata bench-remote`; here rather than in StrataTools so that the
// tools layer, which the fuzz targets link, stays free of the network stack): what a remote collection costs against a
// local one on the same data, in one run. Insert acknowledgement latency with the WAL in the store
// (batches of 1, 100 and 1,000 rows, one client, and 8 clients of batch 1 to show group commit),
// then the first query of a reader with an empty cache (it fetches the segment) and warm QPS and
// recall of that reader against a local collection built from the same rows, alternating.
import Foundation
import Strata
import StrataFormat
import StrataRemote
import StrataTools

/// What `RemoteBench.run` measured.
struct RemoteBenchReport: Sendable, Codable {
    /// One insert configuration.
    struct Insert: Sendable, Codable {
        var batch: Int
        var clients: Int
        var rows: Int
        var rowsPerSecond: Double
        var p50Milliseconds: Double
        var p99Milliseconds: Double
        var maxMilliseconds: Double
        var walObjects: Int
    }
    /// One warm search pass.
    struct Search: Sendable, Codable {
        var target: String
        var queries: Int
        var recallAt10: Double
        var qps: Double
        var p50Milliseconds: Double
        var p99Milliseconds: Double
    }
    var inserts: [Insert] = []
    var flushSeconds = 0.0
    var segmentBytes: UInt64 = 0
    var coldOpenSeconds = 0.0
    var firstQueryMilliseconds = 0.0
    var bytesFetched: UInt64 = 0
    var searches: [Search] = []
    var residentAnonymousMBAfterReaderOpen: Double?
}

/// The benchmark.
enum RemoteBench {
    /// Runs it on `dataset` (base.fvecs, query.fvecs, groundtruth.ivecs) under `layout`, with a
    /// fresh prefix per phase. `rows` limits the rows used; `listSize` is the search list size.
    static func run(dataset: String, layout: RemoteLayout, store: any ObjectStore, metadata: any MetadataStore,
                           cacheDirectory: String, rows limit: Int?, listSize: Int, rounds: Int,
                           progress: (String) -> Void) async throws(StrataError) -> RemoteBenchReport {
        let base = try VectorFile(path: dataset + "/base.fvecs")
        let queries = try VectorFile(path: dataset + "/query.fvecs")
        let truth = try readIvecs(path: dataset + "/groundtruth.ivecs")
        let n = min(limit ?? base.count, base.count)
        let schema = SegmentSchema(dimension: base.dimension, metric: .cosine)
        var report = RemoteBenchReport()
        func options(_ cache: String) -> RemoteOptions {
            var o = RemoteOptions(cache: SegmentCacheOptions(directory: cacheDirectory + "/" + cache))
            o.collection.flushThresholdRows = Int.max
            o.collection.flushThresholdBytes = Int.max
            return o
        }
        func sub(_ name: String) -> RemoteLayout { RemoteLayout(bucket: layout.bucket, prefix: layout.prefix + "/" + name) }
        func rows(_ range: Range<Int>) -> [SegmentRow] { range.map { SegmentRow(id: UInt64($0), vector: base.row($0)) } }

        // Inserts: latency of each acknowledgement.
        for (batch, clients, count) in [(1, 1, min(n, 1_000)), (1, 8, min(n, 4_000)), (100, 1, min(n, 20_000)), (1_000, 1, n)] {
            let target = sub("insert-\(batch)x\(clients)-" + RemoteLayout.randomHex())
            let c = try await RemoteCollection.create(layout: target, schema: schema, store: store, metadata: metadata,
                                                      options: options("insert"))
            let start = monotonicSeconds()
            let perClient = count / clients
            let latencies: [Double]
            do {
                latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
                    for k in 0..<clients {
                        group.addTask {
                            var out: [Double] = []
                            var at = k * perClient
                            while at < (k + 1) * perClient {
                                let end = min(at + batch, (k + 1) * perClient)
                                let t = monotonicSeconds()
                                try await c.insert(rows(at..<end))
                                out.append(monotonicSeconds() - t)
                                at = end
                            }
                            return out
                        }
                    }
                    var all: [Double] = []
                    for try await part in group { all += part }
                    return all
                }
            } catch let e as StrataError { throw e } catch { throw StrataError(.io, "\(error)") }
            let seconds = monotonicSeconds() - start
            let objects = try await store.list(prefix: target.root + "wal/").count
            let sorted = latencies.sorted()
            report.inserts.append(RemoteBenchReport.Insert(batch: batch, clients: clients, rows: perClient * clients,
                                        rowsPerSecond: Double(perClient * clients) / seconds,
                                        p50Milliseconds: 1000 * sorted[sorted.count / 2],
                                        p99Milliseconds: 1000 * sorted[min(sorted.count - 1, sorted.count * 99 / 100)],
                                        maxMilliseconds: 1000 * (sorted.last ?? 0), walObjects: objects))
            progress("insert batch \(batch) x \(clients) clients: \(Int(Double(perClient * clients) / seconds)) rows/s, p50 \(1000 * sorted[sorted.count / 2]) ms")
            if batch == 1_000 {
                let t = monotonicSeconds()
                let flushed = try await c.flush()
                report.flushSeconds = monotonicSeconds() - t
                report.segmentBytes = flushed?.bytes ?? 0
                progress("flush (index build and upload): \(report.flushSeconds) s")
                await c.close()
                try await searchPhase(target)
            } else {
                await c.close()
            }
        }
        return report

        func searchPhase(_ target: RemoteLayout) async throws(StrataError) {
            // A reader on another "machine": an empty cache of its own.
            let coldCache = "reader-" + RemoteLayout.randomHex()
            let t0 = monotonicSeconds()
            let reader = try await RemoteCollection.open(layout: target, access: .readOnly, store: store, metadata: metadata,
                                                         options: options(coldCache))
            report.coldOpenSeconds = monotonicSeconds() - t0
            let t1 = monotonicSeconds()
            _ = try await reader.search(query: queries.row(0), options: SearchOptions(k: 10, listSize: listSize))
            report.firstQueryMilliseconds = 1000 * (monotonicSeconds() - t1)
            report.bytesFetched = reader.cacheFetches.bytes
            report.residentAnonymousMBAfterReaderOpen = ProcessStatistics.residentAnonymousMB()
            // The same rows as a local collection on local disk.
            let localPath = cacheDirectory + "/local-" + RemoteLayout.randomHex()
            var lo = CollectionOptions()
            lo.flushThresholdRows = Int.max
            lo.flushThresholdBytes = Int.max
            lo.backgroundIndex = false               // the flush indexes: the comparison needs the index now
            let local = try StrataCollection.create(path: localPath, schema: schema, options: lo)
            var at = 0
            while at < n { try local.insert(rows(at..<min(n, at + 1_000))); at += 1_000 }
            try local.flush()
            progress("local collection built")
            let q = min(queries.count, truth.count)
            func pass(_ name: String, _ search: ([Float]) async throws(StrataError) -> [CollectionHit]) async throws(StrataError) -> RemoteBenchReport.Search {
                var hits = 0, lat: [Double] = []
                let start = monotonicSeconds()
                for i in 0..<q {
                    let t = monotonicSeconds()
                    let r = try await search(queries.row(i))
                    lat.append(monotonicSeconds() - t)
                    let want = Set(truth[i].prefix(10).map { UInt64($0) })
                    hits += r.prefix(10).filter { want.contains($0.id) }.count
                }
                let seconds = monotonicSeconds() - start
                lat.sort()
                return .init(target: name, queries: q, recallAt10: Double(hits) / Double(10 * q), qps: Double(q) / seconds,
                             p50Milliseconds: 1000 * lat[q / 2], p99Milliseconds: 1000 * lat[min(q - 1, q * 99 / 100)])
            }
            let so = SearchOptions(k: 10, listSize: listSize)
            for _ in 0..<max(1, rounds) {
                report.searches.append(try await pass("remote") { (v) throws(StrataError) in try await reader.search(query: v, options: so) })
                report.searches.append(try await pass("local") { (v) throws(StrataError) in try local.search(query: v, options: so) })
                progress("search: remote \(report.searches[report.searches.count - 2].qps) QPS, local \(report.searches.last!.qps) QPS")
            }
            local.close()
            await reader.close()
            try? FileManager.default.removeItem(atPath: localPath)
        }
    }
}
