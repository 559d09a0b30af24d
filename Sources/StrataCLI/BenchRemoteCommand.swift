import ArgumentParser
import Foundation
import Strata
import StrataRemote
import StrataTools

/// `strata bench-remote`: a remote collection against a local one on the same data, in one run
/// (`RemoteBench` in StrataTools): insert acknowledgement latency with the WAL in the store, the
/// first query of a reader with an empty cache, warm QPS and recall.
struct BenchRemoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-remote",
        abstract: "Insert latency with the WAL in an object store, cold first query and warm QPS of a remote collection against a local one.")

    @Option(name: .long, help: "Dataset directory (base.fvecs, query.fvecs, groundtruth.ivecs).")
    var dataset: String = "../shared/datasets/pypi-minilm-100k"

    @Argument(help: "Where to create the benchmark's collections: s3://BUCKET/PREFIX (each phase gets a fresh prefix below it).")
    var address: String

    @Option(name: .customLong("s3-endpoint"), help: "S3 endpoint URL (default: STRATA_S3_ENDPOINT).")
    var s3Endpoint: String?

    @Option(name: .long, help: "etcd endpoint URL (default: STRATA_ETCD).")
    var etcd: String?

    @Option(name: .customLong("cache-dir"), help: "Cache directory of the benchmark's readers and writers (removed contents are not reused).")
    var cacheDir: String = NSTemporaryDirectory() + "strata-bench-remote"

    @Option(name: .long, help: "Use only the first N rows of the dataset.")
    var rows: Int?

    @Option(name: [.customLong("L"), .customLong("list-size")], help: "Search list size.")
    var L: Int = 32

    @Option(name: .long, help: "Alternating search rounds (remote, local).")
    var rounds: Int = 2

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func run() throws {
        let address = try S3Address(parsing: self.address)
        let endpoint = etcd ?? ProcessInfo.processInfo.environment["STRATA_ETCD"]
        guard let endpoint else { throw ValidationError("no etcd endpoint: pass --etcd or set STRATA_ETCD") }
        let config = try S3Configuration.fromEnvironment(endpoint: s3Endpoint, bucket: address.bucket)
        let layout = RemoteLayout(bucket: address.bucket, prefix: address.path)
        let (dataset, cacheDir, rows, L, rounds) = (self.dataset, self.cacheDir, self.rows, self.L, self.rounds)
        let report = try blockingAwait { () async throws(StrataError) -> RemoteBenchReport in
            let s3 = S3Client(configuration: config)
            let etcd = try EtcdClient(endpoint: endpoint)
            defer { Task { try? await s3.shutdown(); await etcd.shutdown() } }
            return try await RemoteBench.run(dataset: dataset, layout: layout, store: s3, metadata: etcd, cacheDirectory: cacheDir,
                                             rows: rows, listSize: L, rounds: rounds) { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("insert acknowledgement (WAL objects in the store):")
        for i in report.inserts {
            print("  batch \(i.batch) x \(i.clients) clients: \(i.rows) rows, \(Int(i.rowsPerSecond)) rows/s, p50 \(fmt(i.p50Milliseconds)) ms, "
                  + "p99 \(fmt(i.p99Milliseconds)) ms, max \(fmt(i.maxMilliseconds)) ms, \(i.walObjects) WAL objects")
        }
        print("flush (segment + index build + upload + commit): \(fmt(report.flushSeconds)) s, segment \(report.segmentBytes) bytes")
        print("reader, empty cache: open \(fmt(report.coldOpenSeconds)) s, first query \(fmt(report.firstQueryMilliseconds)) ms, "
              + "\(report.bytesFetched) bytes fetched, anonymous RSS \(report.residentAnonymousMBAfterReaderOpen.map { fmt($0) } ?? "?") MB")
        for s in report.searches {
            print("  \(s.target): recall@10 \(String(format: "%.4f", s.recallAt10)), \(Int(s.qps)) QPS, p50 \(fmt(s.p50Milliseconds)) ms, p99 \(fmt(s.p99Milliseconds)) ms")
        }
    }

    private func fmt(_ v: Double) -> String { String(format: "%.3f", v) }
}

/// Runs async work from a synchronous command and waits for it.
func blockingAwait<T: Sendable>(_ work: @escaping @Sendable () async throws(StrataError) -> T) throws(StrataError) -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do throws(StrataError) { box.set(.success(try await work())) } catch { box.set(.failure(error)) }
        done.signal()
    }
    done.wait()
    return try box.get()
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    // Written once by the task before the semaphore is signalled, read after the wait.
    private var result: Result<T, StrataError>?
    func set(_ r: Result<T, StrataError>) { result = r }
    func get() throws(StrataError) -> T { try result!.get() }
}
