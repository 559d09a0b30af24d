// Background work of a node for the shards it owns: compaction (the remote compactor, one shard
// at a time, every `compactIntervalSeconds`), and the per-shard gauges refreshed before a scrape.
import Logging
import Strata
import StrataFormat
import StrataRemote

extension ServeNode {
    /// Compacts the shards this node owns, one at a time, every `intervalSeconds`, until cancelled.
    package func compactionLoop(intervalSeconds: Double) async {
        guard intervalSeconds > 0 else { return }
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(intervalSeconds * 1e9))
            for id in host.ownedShards {
                if Task.isCancelled { return }
                guard let c = view.collection(id.collection), c.uid == id.uid else { continue }
                let compactor = RemoteCompactor(layout: host.layout(id, of: c), store: host.store, metadata: view.metadata,
                                                options: host.options(for: c))
                do throws(StrataError) {
                    let r = try await compactor.run()
                    metrics.recordCompaction(tasks: r.done.count, failed: false)
                    if !r.done.isEmpty {
                        logger.info("compacted shard", metadata: ["shard": "\(id)", "tasks": "\(r.done.count)", "generation": "\(r.generation ?? 0)"])
                    }
                } catch {
                    metrics.recordCompaction(tasks: 0, failed: true)
                    logger.warning("compaction failed", metadata: ["shard": "\(id)", "error": "\(error)"])
                }
            }
        }
    }

    /// Sets the gauges of every shard this node owns (before /metrics renders).
    package func refreshGauges() async {
        for id in host.ownedShards {
            guard let c = view.collection(id.collection), c.uid == id.uid,
                  let w = try? await host.writer(c, shard: id.shard, waitSeconds: 0),
                  let view = try? await w.snapshot() else { continue }
            let fetched = w.cacheFetches
            metrics.recordShard(id, rows: view.snapshot.count, segments: view.snapshot.version.segments.count,
                                generation: view.generation, cacheFetches: fetched.objects, cacheBytes: fetched.bytes, cacheHits: w.cacheHits)
        }
    }
}
