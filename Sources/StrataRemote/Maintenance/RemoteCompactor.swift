// Compaction of a remote collection (`strata compact s3://…`), for cron on any machine. The policy
// and the task work are the local compactor's (Compactor.plan, Compactor.buildOutput,
// Compactor.carriedDeletes); only where files come from and how a task commits differ:
//
// 1. A compactor lease: the `compactor` key, created only if absent and attached to a lease. A run
//    that finds it held returns `busy` (like the local COMPACT.lock). The lease only saves work:
//    the head transaction is what keeps two compactors from both committing a task.
// 2. Plan against the head's manifest. For each task: fetch its inputs into the node-local cache,
//    build the output there within the memory budget, upload it (If-None-Match: *).
// 3. Commit: carry rows deleted since the inputs were opened (a writer's flush gave them new
//    bitmaps) into a bitmap of the output, then publish "inputs out, output in" against the head
//    as read. On a lost race: re-read the head, drop the task when an input is gone (another
//    compactor merged it), else carry again and retry.
//
// A compaction never moves the WAL sequence (the edit is applied to the current manifest and
// leaves its sequence), so a writer's flush that loses to it rebases instead of stopping.
import Strata
import StrataFormat

/// What a remote compaction run did.
public struct RemoteCompactionResult: Sendable {
    /// True when another compactor held the lease: nothing was done.
    public var busy: Bool
    /// The lease key's value (the other compactor's token) when busy.
    public var holder: String?
    /// The plan the run followed (nil when busy).
    public var plan: CompactionPlan?
    /// The tasks that were committed, in order.
    public var done: [CompactionResult.Done]
    /// Tasks given up because another commit removed one of their inputs meanwhile, with why.
    public var dropped: [String]
    /// Commits that lost the race to another commit and were rebased and retried.
    public var retries: Int
    /// Bytes uploaded (output segments and their bitmaps, retries included).
    public var bytesUploaded: UInt64
    /// Bytes fetched into the cache (inputs and their newer bitmaps).
    public var bytesFetched: UInt64
    /// The head's generation at the end of the run.
    public var generation: UInt64?
    /// Wall-clock seconds the run took.
    public var seconds: Double
}

/// Runs compaction on a remote collection (library form of `strata compact s3://…`).
public struct RemoteCompactor: Sendable {
    /// Where the collection lives.
    public let layout: RemoteLayout
    /// The policy (the same as a local compaction's; `graceSeconds` is not used: `strata gc` decides).
    public let policy: CompactionPolicy
    /// The cache to build in and fetch inputs into, the node name, the commit attempts.
    public let options: RemoteOptions
    let store: any ObjectStore
    let metadata: any MetadataStore
    /// TTL of the compactor lease, seconds. Default 30.
    public var leaseSeconds = 30
    /// Whether a run takes the compactor lease (tests turn it off to race two compactors).
    package var takesLease = true
    /// Called after a task's output is built and uploaded, before each commit attempt (tests).
    package var beforeCommit: (@Sendable (CompactionTask) async -> Void)? = nil

    /// A compactor for the collection at `layout`; nothing is read until ``plan()`` or ``run(maxTasks:)``.
    public init(layout: RemoteLayout, store: any ObjectStore, metadata: any MetadataStore, options: RemoteOptions,
                policy: CompactionPolicy = CompactionPolicy()) {
        self.layout = layout
        self.store = store
        self.metadata = metadata
        self.options = options
        self.policy = policy
    }

    /// The plan against the current head; changes nothing, takes no lease.
    public func plan() async throws(StrataError) -> CompactionPlan {
        let (_, manifest) = try await RemoteLoader.current(store: store, metadata: metadata, layout: layout)
        return plan(manifest)
    }

    /// The local policy's plan; obsolete objects are gc's business, not the compactor's.
    private func plan(_ manifest: Manifest) -> CompactionPlan {
        var plan = Compactor(path: layout.address, policy: policy).plan(manifest)
        plan.expiredObsoleteFiles = 0
        return plan
    }

    /// Takes the compactor lease (without waiting), runs the plan task by task (each committed on
    /// its own) and gives the lease back. When another compactor holds it, returns at once with
    /// ``RemoteCompactionResult/busy``. `maxTasks` stops early.
    ///
    /// Throws `.notFound` when there is no collection, `.io` when the store or etcd cannot be
    /// reached, `.checksumMismatch` / `.corrupt` naming an input object whose damage the copy found
    /// (tasks committed before it stand), `.busy` when a task lost the commit race
    /// ``RemoteOptions/commitAttempts`` times in a row.
    public func run(maxTasks: Int = Int.max) async throws(StrataError) -> RemoteCompactionResult {
        let start = monotonicSeconds()
        var lease: LeaseKeeper? = nil
        if takesLease {
            let keeper = try await LeaseKeeper.start(store: metadata, ttlSeconds: leaseSeconds)
            let token = options.nodeName + "-" + RemoteLayout.randomHex()
            let claim: TxnResult
            do throws(StrataError) {
                claim = try await metadata.txn(compare: [.createRevision(layout.compactorKey, equals: 0)],
                                               success: [.put(layout.compactorKey, Array(token.utf8), lease: keeper.lease)],
                                               failure: [.get(layout.compactorKey)])
            } catch {
                try? await keeper.revoke()
                throw error
            }
            guard claim.succeeded else {
                try? await keeper.revoke()
                let holder = (claim.reads.first ?? nil).map { String(decoding: $0.value, as: UTF8.self) }
                return RemoteCompactionResult(busy: true, holder: holder, plan: nil, done: [], dropped: [], retries: 0,
                                              bytesUploaded: 0, bytesFetched: 0, generation: nil, seconds: monotonicSeconds() - start)
            }
            lease = keeper
        }
        do throws(StrataError) {
            var result = try await runTasks(maxTasks: maxTasks)
            try? await lease?.revoke()
            result.seconds = monotonicSeconds() - start
            return result
        } catch {
            try? await lease?.revoke()
            throw error
        }
    }

    /// The state a run carries from task to task.
    private struct Run {
        var current: (RemoteHead, Int64)
        var manifest: Manifest
        var result: RemoteCompactionResult
    }

    private func runTasks(maxTasks: Int) async throws(StrataError) -> RemoteCompactionResult {
        let cache = try SegmentCache(options: options.cache, store: store, layout: layout)
        let (current, manifest) = try await RemoteLoader.current(store: store, metadata: metadata, layout: layout)
        let tasks = plan(manifest)
        let fetchedBefore = cache.fetched.bytes
        var run = Run(current: current, manifest: manifest,
                      result: RemoteCompactionResult(busy: false, holder: nil, plan: tasks, done: [], dropped: [], retries: 0,
                                                     bytesUploaded: 0, bytesFetched: 0, generation: nil, seconds: 0))
        for task in tasks.tasks.prefix(maxTasks) {
            try await runTask(task, run: &run, cache: cache)
            run.result.bytesFetched = cache.fetched.bytes - fetchedBefore
        }
        cache.evict()
        run.result.generation = run.current.0.generation
        return run.result
    }

    /// Builds, uploads and commits one task (or drops it when an input is gone).
    private func runTask(_ task: CompactionTask, run: inout Run, cache: SegmentCache) async throws(StrataError) {
        let start = monotonicSeconds()
        guard let entries = Compactor.liveEntries(task.inputs, in: run.manifest) else {
            run.result.dropped.append("\(task.inputs.joined(separator: " + ")): an input was compacted by another run")
            return
        }
        // A version of just the inputs, over the cache: it keeps them from eviction while it lives.
        var only = run.manifest
        only.segments = entries
        only.obsolete = []
        let loader = RemoteLoader(store: store, metadata: metadata, layout: layout, cache: cache, options: options)
        let inputs = try await loader.open(only, reusing: nil)
        let (segments, schema, policy, directory) = (inputs.segments, run.manifest.schema, policy, cache.directory)
        let output = try await offPool("strata-compact") { () throws(StrataError) in
            try Compactor.buildOutput(of: segments, schema: schema, policy: policy, directory: directory)
        }
        // Held while the task runs, so that the cache's eviction leaves the output alone.
        let held = output.map { [cache.path($0.name)] } ?? []
        FileReferences.shared.retain(held)
        defer { FileReferences.shared.release(held) }
        if let output {
            do {
                _ = try await store.upload(layout.segmentObject(output.name), fromFile: cache.path(output.name), condition: .ifAbsent)
            } catch {
                cache.discard(output.name)
                throw error
            }
            run.result.bytesUploaded += output.fileBytes
            FaultPoint.afterSegmentUpload.reach()
        }
        let commit = RemoteCommit(store: store, metadata: metadata, layout: layout, nodeName: options.nodeName)
        for _ in 0..<max(1, options.commitAttempts) {
            guard let now = Compactor.liveEntries(task.inputs, in: run.manifest) else {
                run.result.dropped.append("\(task.inputs.joined(separator: " + ")): an input was compacted by another run")
                if let output { await forget([output.name], cache: cache) }
                return
            }
            var entry = output
            var carried = 0
            if let output {
                // Bitmaps the inputs got since they were opened: fetch them, carry their new rows.
                let newer = zip(inputs.segments, now).compactMap { $1.deleteFile != $0.entry.deleteFile ? $1.deleteFile : nil }
                let newerPaths = newer.map { cache.path($0) }
                FileReferences.shared.retain(newerPaths)
                defer { FileReferences.shared.release(newerPaths) }
                try await cache.ensure(newer.map { (name: $0, bytes: nil) })
                if let bitmap = try Compactor.carriedDeletes(inputs: inputs.segments, now: now, output: output, directory: cache.directory) {
                    let name = CollectionFiles.newBitmapName(.compactor)
                    try bitmap.write(to: cache.path(name))
                    _ = try await store.upload(layout.bitmapObject(name), fromFile: cache.path(name), condition: .ifAbsent)
                    run.result.bytesUploaded += (try? FileSystem.fileSize(cache.path(name))) ?? 0
                    entry!.deleteFile = name
                    entry!.deletedCount = UInt64(bitmap.deletedCount)
                    carried = bitmap.deletedCount
                }
            }
            let next = try ManifestEdit(removedSegments: Set(task.inputs), addedSegment: entry).applied(to: run.manifest, now: WallClock.milliseconds())
            await beforeCommit?(task)
            switch try await commit.publish(next, replacing: run.current, writerToken: nil) {
            case .committed(let head, let revision):
                run.current = (head, revision)
                run.manifest = next
                run.result.done.append(CompactionResult.Done(task: task, output: output?.name, rowsWritten: Int(output?.rowCount ?? 0),
                                                             bytesWritten: output?.fileBytes ?? 0, deletesCarriedOver: carried,
                                                             seconds: monotonicSeconds() - start, generation: next.generation))
                return
            case .lost(let now, _):
                // Another commit got there first. The bitmap made for the old head is unreferenced:
                // remove it now rather than leave it to gc's grace period.
                run.result.retries += 1
                if let d = entry?.deleteFile { await forget([d], cache: cache) }
                guard let now else {
                    throw StrataError(.notFound, "the collection's head is gone (the collection was deleted)", path: layout.address)
                }
                run.current = now
                run.manifest = try await RemoteLoader.manifest(of: now.0, store: store)
            }
        }
        throw StrataError(.busy, "compaction of \(task.inputs.joined(separator: " + ")) lost the commit race \(options.commitAttempts) "
                          + "times in a row; the next run tries again", path: layout.address)
    }

    /// Removes files that no head names and no commit of this run will (a dropped task's output, a
    /// bitmap made for a head that was replaced) from the store and the cache. Best effort: what
    /// is left is an orphan that `strata gc` removes after its grace period.
    private func forget(_ names: [String], cache: SegmentCache) async {
        for name in names {
            try? await store.delete(layout.object(forFile: name))
            cache.discard(name)
        }
    }
}
