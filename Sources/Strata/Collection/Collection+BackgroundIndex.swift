// Background indexing: a writer's flush seals its buffer into an unindexed segment (searched by an
// exact scan) and returns; one builder thread per writable collection then replaces each unindexed
// segment of at least `index.minimumRows` rows with an indexed copy.
//
// The copy holds the same rows (deleted ones too) in the same order, so row numbers, and with
// them every delete bitmap, mean the same in both files. It is built from the input's checked
// sections (Compactor.buildOutput: damage is refused, never copied forward) and swapped in by one
// manifest edit made against the manifest current under MANIFEST.lock: the copy keeps the bitmap
// that manifest names for the segment (deletes flushed during the build), and when the segment is
// no longer live (a `strata compact` merged or indexed it meanwhile) nothing is published and the
// copy is removed. The old file becomes obsolete by the manifest's normal rule.
//
// Back-pressure (`CollectionOptions.maxUnindexedRows`): a write that flushed waits while the
// unindexed segments queued for the builder hold more rows than that.
//
// `close()` stops the builder: a build in flight is cancelled at its next check (before a batch of
// graph inserts, after PQ, between partitions; IndexBuildCancellation), its temporary file removed,
// and nothing is published.
import Dispatch
import StrataFormat
import StrataIndex
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What the background index builder is doing (``CollectionStats/backgroundIndex``).
public struct BackgroundIndexStats: Sendable, Equatable {
    /// The segment being indexed now, nil when idle.
    public var building: String?
    /// Progress of that build (the index builder's last report), when there is one.
    public var phase: String?
    /// Units of `phase` done and in all.
    public var done: Int = 0
    /// Units of `phase` in all.
    public var total: Int = 0
    /// Unindexed segments waiting for the builder, oldest first (not counting `building`).
    public var queued: [String] = []
    /// Rows in the unindexed segments queued or being built (what back-pressure counts).
    public var backlogRows: Int = 0
    /// Segments swapped for an indexed copy since open.
    public var built: Int = 0
    /// Builds cancelled by `close()` before they finished (their files removed, nothing published).
    public var cancelled: Int = 0
    /// Segments the builder refused (damaged input; left as they are, searched exactly), with why.
    public var failed: [String: String] = [:]
    /// Writes waiting for the backlog to come under ``CollectionOptions/maxUnindexedRows``.
    public var writersWaiting: Int = 0
}

/// The builder thread of one writable collection.
final class BackgroundIndexer: Sendable {
    private struct State {
        var stopped = false
        var building: String?
        var progress: IndexBuildProgress?
        var built = 0
        var cancelled = 0
        var failed: [String: StrataError] = [:]
        var writersWaiting = 0
    }

    /// Hooks for tests: `paused` holds the builder before its next build; `beforePublish` runs on
    /// the builder thread after a build (given the input's name), before its swap is published;
    /// `whileBuilding` runs on the builder thread each time the index build asks whether to stop.
    package struct TestHooks: Sendable {
        package var paused = false
        package var beforePublish: (@Sendable (String) -> Void)? = nil
        package var whileBuilding: (@Sendable () -> Void)? = nil
    }
    package let hooks = Mutex(TestHooks())

    private let state = Mutex(State())
    /// Held by the thread around a publish; `stop()` takes it so that none follows its return.
    private let publishLock = Mutex(())
    /// Signalled by a flush (new work) and by `stop()`.
    private let wake = DispatchSemaphore(value: 0)
    /// Signalled after each build (published, dropped or failed): writers waiting on back-pressure.
    private let progressed = DispatchSemaphore(value: 0)
    private let minimumRows: Int

    init(minimumRows: Int) { self.minimumRows = max(1, minimumRows) }

    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Whether no build is in progress (a finished one has published, counted and installed).
    var isIdle: Bool { state.withLock { $0.building == nil } }

    /// Starts the thread over `collection` (held weakly: a collection dropped without close stops it).
    func start(_ collection: StrataCollection) {
        weak let weakCollection = collection
        Thread.detach { [self] in
            while !isStopped {
                guard let c = weakCollection else { return }
                let worked = step(c)
                if !worked { _ = wake.wait(timeout: .now() + .seconds(1)) }
            }
        }
    }

    /// New unindexed segments may be there.
    func notify() { wake.signal() }

    /// Stops the thread: no publish follows the return; a build in flight is abandoned when it
    /// returns (its file removed).
    func stop() {
        state.withLock { $0.stopped = true }
        wake.signal()
        publishLock.withLock { _ in }
        progressed.signal()
    }

    /// The segments of `version` waiting for the builder: unindexed, large enough, not refused.
    func queue(of version: Version) -> [ManifestSegment] {
        let failed = state.withLock { Set($0.failed.keys) }
        return version.manifest.segments.filter { !$0.indexed && $0.rowCount >= UInt64(minimumRows) && !failed.contains($0.name) }
    }

    /// Waits until the queue of `collection` holds at most `maxRows` rows (or the builder stopped).
    func waitForBacklog(of collection: StrataCollection, atMost maxRows: Int) {
        state.withLock { $0.writersWaiting += 1 }
        defer { state.withLock { $0.writersWaiting -= 1 } }
        while !isStopped {
            // A swap the builder could not install (a flush was rotating the WAL) is picked up here.
            try? collection.refresh()
            let backlog = queue(of: collection.stateLock.locked { collection.version }).reduce(0) { $0 + Int($1.rowCount) }
            if backlog <= maxRows { return }
            wake.signal()
            _ = progressed.wait(timeout: .now() + .milliseconds(100))
        }
    }

    /// Stats over `version`.
    func stats(over version: Version) -> BackgroundIndexStats {
        let s = state.withLock { $0 }
        let queue = queue(of: version)
        var out = BackgroundIndexStats(building: s.building, phase: s.progress?.phase, done: s.progress?.done ?? 0,
                                       total: s.progress?.total ?? 0, queued: queue.map(\.name).filter { $0 != s.building },
                                       backlogRows: queue.reduce(0) { $0 + Int($1.rowCount) }, built: s.built,
                                       cancelled: s.cancelled, writersWaiting: s.writersWaiting)
        for (name, error) in s.failed { out.failed[name] = error.description }
        return out
    }

    /// Builds and swaps in one queued segment; false when there was none (or the collection failed).
    private func step(_ c: StrataCollection) -> Bool {
        // Swaps published by this builder (or a compactor) that are not installed yet: never build a
        // segment that is already gone.
        try? c.refresh()
        let (version, failed) = c.stateLock.locked { (c.version, c.failed) }
        guard failed == nil, !hooks.withLock({ $0.paused }), let entry = queue(of: version).first,
              let input = version.segments.first(where: { $0.entry.name == entry.name }) else { return false }
        state.withLock { $0.building = entry.name; $0.progress = nil }
        defer {
            state.withLock { $0.building = nil; $0.progress = nil }
            progressed.signal()
        }
        do {
            try build(input, schema: version.manifest.schema, collection: c, version: version)
        } catch {
            if IndexBuildCancellation.isCancellation(error) && isStopped {
                state.withLock { $0.cancelled += 1 }
            } else {
                state.withLock { $0.failed[entry.name] = error }
            }
        }
        return true
    }

    /// Builds the indexed copy of `input` (of `version`, which keeps its file open meanwhile) and
    /// publishes the swap; removes the copy when the swap is not published.
    private func build(_ input: OpenSegment, schema: SegmentSchema, collection c: StrataCollection, version: Version) throws(StrataError) {
        var policy = CompactionPolicy()
        policy.index = c.options.index
        policy.rowsPerBlock = c.options.rowsPerBlock
        policy.search = c.options.search
        // Every row, deleted ones too, in order: the bitmaps of the input stay valid for the copy.
        let all = OpenSegment(entry: input.entry, segment: input.segment, bitmap: nil)
        // Asked once per batch of the graph build: close() cancels a build in flight.
        let shouldStop: @Sendable () -> Bool = { [weak self] in
            guard let self else { return true }
            if let hook = hooks.withLock({ $0.whileBuilding }) { hook() }
            return isStopped
        }
        guard let output = try Compactor.buildOutput(of: [all], schema: schema, policy: policy, directory: c.path, owner: .writer,
                                                     progress: { [weak self] p in self?.state.withLock { $0.progress = p } },
                                                     shouldStop: shouldStop) else { return }
        guard output.indexed else {
            // No index after all (the index builder declined): a swap would change nothing and the
            // segment would be queued again.
            FileSystem.removeIfPresent("\(c.path)/\(output.name)")
            throw StrataError(.invalidArgument, "the index build of \(input.entry.name) produced no index", path: c.path)
        }
        if let hook = hooks.withLock({ $0.beforePublish }) { hook(input.entry.name) }
        let published: Manifest?
        do throws(ManifestEdit.Failure) {
            published = try publishLock.withLock { _ throws(ManifestEdit.Failure) -> Manifest? in
                try ManifestEdit.commit(directory: c.path, graceSeconds: c.options.obsoleteFileGraceSeconds) { (current, _) throws(StrataError) -> ManifestEdit? in
                    // Closed meanwhile, or the segment is gone (a compaction replaced it): drop the copy.
                    guard !isStopped, current.segments.contains(where: { $0.name == input.entry.name }) else { return nil }
                    var edit = ManifestEdit()
                    edit.reindexed = (old: input.entry.name, new: output)
                    return edit
                }
            }
        } catch {
            // Published after all when the rename happened: the copy is referenced, keep it.
            if case .notPublished = error { FileSystem.removeIfPresent("\(c.path)/\(output.name)") }
            throw error.error
        }
        guard let published else {
            FileSystem.removeIfPresent("\(c.path)/\(output.name)")
            return
        }
        state.withLock { $0.built += 1 }
        c.install(published)
    }
}

extension StrataCollection {
    /// Starts the builder when this handle writes and indexes in the background.
    func startBackgroundIndexing() {
        guard access == .readWrite, options.backgroundIndex, let index = options.index else { return }
        let indexer = BackgroundIndexer(minimumRows: index.minimumRows)
        self.indexer = indexer
        indexer.start(self)
    }

    /// Whether flushes leave indexing to the builder.
    var indexesInBackground: Bool { indexer.map { !$0.isStopped } ?? false }

    /// After a flush (writeLock held): wakes the builder, then waits while its backlog is over the bound.
    func afterFlush() {
        guard let indexer else { return }
        indexer.notify()
        indexer.waitForBacklog(of: self, atMost: options.maxUnindexedRows)
    }

    /// Makes `manifest`, published by the builder, the version writes and snapshots see, unless a
    /// newer one is installed or a flush has rotated the WAL (its version, or the next refresh,
    /// picks the change up; so does the builder's next step).
    fileprivate func install(_ manifest: Manifest) {
        let current = stateLock.locked { version }
        guard manifest.generation > current.manifest.generation, manifest.walSequence == current.manifest.walSequence,
              let next = try? Version.open(directory: path, manifest: manifest, reusing: current, options: options.segmentOpenOptions) else { return }
        stateLock.withLock { _ in
            if manifest.generation > version.manifest.generation, manifest.walSequence == version.manifest.walSequence { version = next }
        }
    }

    /// What the background index builder is doing; nil when this handle has none.
    public var backgroundIndexStats: BackgroundIndexStats? {
        guard let indexer else { return nil }
        return indexer.stats(over: stateLock.locked { version })
    }

    /// Waits until the builder has indexed every queued segment and is idle (or stopped; a refused
    /// segment is not waited for).
    /// For tests and benchmarks; `timeoutSeconds` bounds the wait. Returns whether the queue is empty.
    @discardableResult
    public func waitForBackgroundIndex(timeoutSeconds: Double = 600) -> Bool {
        guard let indexer else { return true }
        let deadline = monotonicSeconds() + timeoutSeconds
        while monotonicSeconds() < deadline {
            try? refresh()
            if indexer.isIdle, indexer.queue(of: stateLock.locked { version }).isEmpty { return true }
            if indexer.isStopped { return false }
            indexer.notify()
            usleep(20_000)
        }
        return false
    }
}

/// A detached OS thread (index builds block for seconds: not for the cooperative pool).
private enum Thread {
    static func detach(_ body: @escaping @Sendable () -> Void) {
        DispatchQueue.global(qos: .utility).async(execute: body)
    }
}
