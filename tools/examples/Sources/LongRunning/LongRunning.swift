// A collection used from a long-running process: one thread writes (insert batches, delete some
// rows, flush), another searches with a payload filter while the writes go on, and a Dispatch timer
// runs compaction every half second, as cron would run `strata compact`. Bounded to a few seconds.
// Everything between the README markers is a README code block, character for character
// (tools/examples/check-readme.sh checks it).
import Foundation
import Strata

@main
struct LongRunning {
    static func main() throws {
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("strata-longrunning-\(ProcessInfo.processInfo.processIdentifier)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try run(path: scratch + "/coll")
    }

    /// Stand-ins for a model's embeddings: deterministic pseudo-random 32-dimensional vectors.
    static func embedding(_ seed: UInt64) -> [Float] {
        var state = (seed + 1) &* 0x9E37_79B9_7F4A_7C15
        return (0..<32).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17   // xorshift64
            return Float(state >> 40) / Float(1 << 24) - 0.5
        }
    }

    // README:begin long-running
    static func run(path: String) throws {
        let schema = SegmentSchema(dimension: 32, elementType: .float32, metric: .l2,
                                   columns: [ColumnSpec(name: "name", type: .string),
                                             ColumnSpec(name: "month", type: .string),
                                             ColumnSpec(name: "rank", type: .int64, nullable: true)])
        var options = CollectionOptions()
        options.flushThresholdRows = 200             // small segments, so that compaction has work
        options.search.indexedColumns = ["month"]    // payload index for filtered search
        let coll = try StrataCollection.create(path: path, schema: schema, options: options)  // makes the directory

        let shared = Shared()                        // a stop flag and the other threads' errors

        // Compaction on a timer, as cron would run `strata compact`: a Compactor takes its own lock,
        // publishes a new manifest, and the open collection picks it up at its next snapshot.
        var policy = CompactionPolicy()
        policy.graceSeconds = 0                      // remove replaced files at once (default 60 s)
        let compactor = Compactor(path: path, policy: policy)
        let compactionQueue = DispatchQueue(label: "compaction")
        let timer = DispatchSource.makeTimerSource(queue: compactionQueue)
        timer.schedule(deadline: .now() + .milliseconds(500), repeating: .milliseconds(500))
        timer.setEventHandler {
            do {
                let result = try compactor.run()
                let rows = result.done.map(\.rowsWritten).reduce(0, +)
                print("compactor: \(result.done.count) task(s), \(rows) rows rewritten, \(result.filesRemoved) files removed")
            } catch {
                shared.fail("compactor: \(error)")
            }
        }
        timer.resume()

        // A reader on another thread: filtered searches while the writer goes on.
        let done = DispatchSemaphore(value: 0)
        let filter = Filter.only(.range(key: "month", FilterRange(gte: .string("2024-01"), lte: .string("2024-06"))))
        Thread {
            var searches = 0, lastHits = [CollectionHit]()
            while !shared.isStopped {
                do {
                    lastHits = try coll.search(query: embedding(4), filter: filter, options: SearchOptions(k: 3))
                    searches += 1
                } catch {
                    shared.fail("reader: \(error)")
                    break
                }
            }
            print("reader: \(searches) filtered searches; last: " +
                  lastHits.map { "id \($0.id) distance \($0.distance)" }.joined(separator: ", "))
            done.signal()
        }.start()

        // The writer: a batch of 100 rows every 0.2 s; every third row of the previous batch deleted.
        var nextId: UInt64 = 0
        for batch in 0..<15 {
            let rows = (0..<100).map { _ in
                defer { nextId += 1 }
                let month = nextId % 12 + 1              // "2024-01" ... "2024-12"
                return SegmentRow(id: nextId, vector: embedding(nextId),
                                  payload: ["name": .string("doc-\(nextId)"),
                                            "month": .string(month < 10 ? "2024-0\(month)" : "2024-\(month)"),
                                            "rank": nextId % 5 == 0 ? .null : .int64(Int64(nextId))])
            }
            try coll.insert(rows)                    // durable (WAL + fsync) when it returns
            let deleted = batch == 0 ? 0 : try coll.delete(ids: Array(stride(from: nextId - 200, to: nextId - 100, by: 3)))
            let stats = try coll.stats()
            print("writer: batch \(batch): +100 rows, -\(deleted); \(stats.liveRows) live in \(stats.segments.count) segment(s)")
            Thread.sleep(forTimeInterval: 0.2)
        }

        shared.stop()
        done.wait()
        timer.cancel()
        compactionQueue.sync {}                      // let a compaction under way finish
        _ = try coll.flush()
        let found = try coll.search(query: embedding(4), filter: filter, options: SearchOptions(k: 3))
        print("final: \(try coll.count()) live rows; nearest to row 4's vector in months 2024-01...2024-06: " +
              found.map { "id \($0.id)" }.joined(separator: ", "))
        coll.close()
        if !shared.failures.isEmpty { exit(1) }      // each was printed when it happened
    }
    // README:end
}

/// What the example's threads share: a stop flag the writer sets and the reader polls, and the
/// errors of the reader and the compaction timer (the program exits 1 when there are any).
final class Shared: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var errors: [String] = []
    /// Whether the writer is done.
    var isStopped: Bool { lock.withLock { stopped } }
    /// Errors recorded so far.
    var failures: [String] { lock.withLock { errors } }
    /// Tells the reader to stop.
    func stop() { lock.withLock { stopped = true } }
    /// Records an error (and prints it at once).
    func fail(_ message: String) {
        print("failed: \(message)")
        lock.withLock { errors.append(message) }
    }
}
