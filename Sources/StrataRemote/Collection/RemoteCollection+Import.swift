// Bulk import into a remote collection: sealed (indexed) segments built in the node-local cache
// from the caller's rows, in parallel, uploaded, and published by ONE commit that appends them after
// the existing segments. The rows never pass through the WAL.
//
// The committer runs an import alone, as it runs a flush: no write is stored meanwhile, so the
// state the ids are checked against is the state the commit extends. The buffer is flushed first
// (a WAL object replayed after the import must never hold rows older than the imported ones).
//
// All or nothing: before the commit the new segment objects are orphans (gc removes them after its
// grace period) and their cache files are removed; a kill leaves the same. Racing a compactor: the
// commit loses, the import re-reads the head and, when only segments changed (same WAL sequence),
// retries on top of it; its uploaded segments stay valid and its id checks too (a compaction adds
// no rows). Any other change means another writer: this one is fenced out.
import Strata
import StrataFormat
import Synchronization

/// An import waiting for the committer: what to build, and how.
struct RemoteImportJob: Sendable {
    var count: Int
    var threads: Int
    var writerOptions: SegmentWriterOptions
    var describe: @Sendable (Int, Int) -> String
    var fill: @Sendable (Int, SegmentWriter) throws(StrataError) -> Void
}

extension RemoteCollection {
    /// Imports `count` segments in one commit, bypassing the WAL: `fill(k, writer)` appends the
    /// rows of segment k (k = 0..<count, in input order) to a fresh writer of the collection's
    /// schema; up to `threads` segments are filled and finished (index built) at once, in the
    /// node-local cache, then uploaded. The buffer is flushed first; other writes of this process
    /// wait for the import.
    ///
    /// Before anything is committed, ids are checked across the new segments (unique) and against
    /// the collection's live rows (absent), with memory independent of the row count; errors name
    /// the row by `describe(k, row)`. Any error before the commit leaves the collection as it was
    /// (uploaded objects are orphans for `strata gc`).
    /// - Parameters:
    ///   - count: segments to build (0 commits nothing).
    ///   - threads: segments filled and finished at once (at least 1).
    ///   - writerOptions: options of the segment writers (index, search sections, id-sort memory).
    ///   - describe: how errors name row `row` of segment k.
    ///   - fill: appends the rows of segment k to the writer it is given.
    /// - Throws: `.duplicateId`, what `fill` throws, the writer's errors, the store's and etcd's
    ///   (`.io`), `.busy` when this writer was fenced out or lost the commit race too often, and
    ///   `.invalidArgument` on a read-only handle.
    public func importSegments(count: Int, threads: Int = 1, writerOptions: SegmentWriterOptions,
                               describe: @escaping @Sendable (_ segment: Int, _ row: Int) -> String,
                               fill: @escaping @Sendable (_ segment: Int, _ writer: SegmentWriter) throws(StrataError) -> Void)
        async throws(StrataError) -> StrataCollection.ImportSummary {
        try checkWritable()
        guard count >= 0, threads >= 1 else { throw StrataError(.invalidArgument, "import needs count >= 0 and threads >= 1", path: layout.address) }
        let job = RemoteImportJob(count: count, threads: threads, writerOptions: writerOptions, describe: describe, fill: fill)
        guard case .imported(let summary) = try await submit(.importSegments(job)) else {
            throw StrataError(.invalidArgument, "import got another answer than its summary", path: layout.address)
        }
        return summary
    }

    /// The import itself; run by the committer, never alongside a write.
    func importNow(_ job: RemoteImportJob) async throws(StrataError) -> StrataCollection.ImportSummary {
        let start = monotonicSeconds()
        try checkWritable()
        // A WAL object whose PUT was not answered is settled first: if it is stored, its rows join
        // the buffer, which the flush then seals.
        try await resolveUncertain()
        if state.withLock({ !$0.mem.isEmpty }) { _ = try await flushNow() }
        try checkLease()
        let (base, baseHead, baseRevision, next) = state.withLock { ($0.version, $0.head, $0.headRevision, $0.nextSequence) }
        guard state.withLock({ $0.mem.isEmpty }) else {
            throw StrataError(.busy, "the buffer was not empty after the flush before the import; try again", path: layout.address)
        }
        // The new files are held (FileReferences) from their creation, so that no eviction of this
        // process removes them before the Version that references them exists.
        let held = Mutex<[String]>([])
        defer { FileReferences.shared.release(held.withLock { $0 }) }
        let cache = self.cache
        let built = SegmentImportBuild(directory: cache.directory, schema: base.manifest.schema, options: job.writerOptions,
                                       describe: job.describe, created: { name in
            let p = cache.path(name)
            held.withLock { $0.append(p) }
            FileReferences.shared.retain([p])
        })
        do throws(StrataError) {
            let entries = try await offPool("strata-import") { () throws(StrataError) in
                try built.run(count: job.count, threads: job.threads, fill: job.fill)
            }
            guard !entries.isEmpty else {
                return StrataCollection.ImportSummary(segments: [], rows: 0, bytes: 0, indexedSegments: 0, generation: base.manifest.generation,
                                                      seconds: monotonicSeconds() - start)
            }
            let openOptions = options.collection.segmentOpenOptions
            try await offPool("strata-import-ids") { () throws(StrataError) in
                var segments: [Segment] = []
                for e in entries { segments.append(try Segment.open(path: cache.path(e.name), options: openOptions)) }
                try StrataCollection.checkImportedIds(segments, against: base, describe: job.describe)
            }
            for e in entries {
                _ = try await store.upload(layout.segmentObject(e.name), fromFile: cache.path(e.name), condition: .ifAbsent)
            }
            FaultPoint.afterSegmentUpload.reach()
            let committed: WriterCommit
            do throws(StrataError) {
                committed = try await commitRebasing("import", base: base, current: (baseHead, baseRevision)) { (fresh) throws(StrataError) in
                    try checkLease()
                    // gc removes unreferenced objects older than its grace period: an import whose
                    // uploads took longer must not commit a head that names a removed one.
                    for e in entries {
                        guard try await store.head(layout.segmentObject(e.name)) == nil else { continue }
                        throw StrataError(.notFound, "segment \(e.name) uploaded by this import is gone from the store (removed by gc "
                                          + "after its grace period?); nothing was committed", path: store.address(of: layout.segmentObject(e.name)))
                    }
                    var edit = ManifestEdit(walSequence: next)
                    edit.appendedSegments = entries
                    return try edit.applied(to: fresh.manifest, now: WallClock.milliseconds())
                }
            } catch where error.code == .io {
                // The commit may have landed without this writer knowing (etcd's answer and the
                // read-back both failed). Its state would then lack the imported rows, and a rebase
                // could not tell its own commit from a compaction (same WAL sequence), so an import
                // or insert of the same ids could be committed twice: refuse writes, as after a
                // failed local publish; a reopen reads the head as it is.
                built.keepFiles()
                let e = StrataError(.io, "the import's commit may or may not have landed (\(error.message)); reopen the collection",
                                    path: error.path ?? layout.address)
                state.withLock { if $0.failed == nil { $0.failed = e } }
                throw e
            }
            built.keepFiles()
            try await install(committed, what: "import", clearBuffer: false)
            return StrataCollection.ImportSummary(segments: entries.map(\.name), rows: entries.reduce(0) { $0 + Int($1.rowCount) },
                                                  bytes: entries.reduce(0) { $0 + $1.fileBytes }, indexedSegments: entries.filter(\.indexed).count,
                                                  generation: committed.manifest.generation, seconds: monotonicSeconds() - start)
        } catch {
            built.removeFiles()
            throw error
        }
    }
}
