// Compaction: merges small segments (size tiers), rewrites segments with many deleted rows, and
// indexes segments that lack an index. Each task writes a new segment from the live rows of its
// inputs, then, under MANIFEST.lock, carries over rows deleted meanwhile (by a writer's flush) into
// a bitmap of the new segment and publishes a manifest that swaps inputs for output in one rename.
// Inputs become obsolete files, removed after the grace period when no reader of this process
// holds them. A kill -9 at any instant leaves either the old manifest (the new segment is an
// unreferenced leftover that the next compaction removes) or the new one.
import CoreMetrics
import Logging
import StrataFormat
import StrataIndex
#if canImport(Glibc)
import Glibc
#endif

/// What the compactor may do and within which memory.
public struct CompactionPolicy: Sendable {
    /// Rewrite a segment whose deleted rows / rows reaches this. Default 0.2.
    public var deletedFractionThreshold: Double = 0.2
    /// Live rows below which a segment is in tier 0; tier t >= 1 holds
    /// `tierBaseRows * tierFactor^(t-1) ..< tierBaseRows * tierFactor^t` rows. Default 1,000.
    public var tierBaseRows: Int = 1_000
    /// Size ratio between tiers. Default 4.
    public var tierFactor: Int = 4
    /// Merge a tier once it holds this many segments. Default 4.
    public var mergeFactor: Int = 4
    /// Bound on the memory one task may use (see ``estimatedBytesPerRow(schema:indexed:)``); a
    /// merge takes inputs only up to it, and a segment too large to rewrite within it is skipped.
    /// Indexed outputs too large for an in-memory build within it are built out of core
    /// (`IndexOptions.memoryBudget`), so the bound on their size is about
    /// budget / ``outOfCoreBytesPerRow(schema:)``.
    /// Default 1 GiB.
    public var memoryBudgetBytes: Int = 1 << 30
    /// Index options for output segments (those below `minimumRows` get none); nil: no indexes.
    public var index: IndexOptions? = IndexOptions()
    /// Grace period before obsolete files are removed. Default 60 s.
    public var graceSeconds: Double = 60
    /// Rows per payload block of output segments.
    public var rowsPerBlock: Int = 1024
    /// Payload indexes / BM25 columns to add to merged segments (those of the inputs are always kept).
    public var search = SearchSectionOptions()
    /// Where compaction logs and counts its tasks (CollectionMetrics.swift); by default a no-op
    /// logger and the process's `MetricsSystem`.
    public var logger: Logger = .strataNoOp
    /// The factory of compaction's metrics; nil: the process's `MetricsSystem.factory`.
    public var metricsFactory: (any MetricsFactory)? = nil
    /// Called with (tasks finished, tasks planned) once the plan is made and after each task.
    public var progress: (@Sendable (_ done: Int, _ total: Int) -> Void)? = nil

    /// Defaults.
    public init() {}

    /// Fixed overhead of a task (chunk buffers, write buffers, payload blocks): 32 MiB.
    public static let fixedOverheadBytes = 32 << 20

    /// Bytes of memory per output row. Without an index: ids, the sort for the id index and block
    /// directories, 64 B. With one, add what `SegmentWriter.finish()` holds while it builds: the
    /// float32 vectors about three times (its dense copy, the mapped temporary file it reads them
    /// from, and build-time copies), 16 R B of graph (adjacency with slack, reverse-edge buffers,
    /// the final lists) and the PQ codes (D/4 B): 64 + 12 D + 16 R + D/4. Calibrated, not derived:
    /// merging 80,000 rows of 384 dims (R 64) peaked at 480 MB RSS; this gives 495 MB.
    public func estimatedBytesPerRow(schema: SegmentSchema, indexed: Bool) -> Int {
        guard indexed, let ix = index else { return 64 }
        return 64 + 12 * schema.dimension + 16 * ix.graph.maxDegree + (ix.pqSubspaces ?? max(1, schema.dimension / 4))
    }

    /// Bytes per output row of an indexed task whose graph is built out of core: the 64 B of an
    /// unindexed row, the PQ codes and the partition assignment (12 B). The partition builds use
    /// what the budget leaves (at least ``minimumOutOfCoreBytes(schema:)``).
    public func outOfCoreBytesPerRow(schema: SegmentSchema) -> Int {
        64 + (index?.pqSubspaces ?? max(1, schema.dimension / 4)) + 12
    }

    /// The least room an out-of-core index build needs besides its per-row part: one partition of
    /// the builder's minimum size.
    public func minimumOutOfCoreBytes(schema: SegmentSchema) -> Int {
        guard let ix = index else { return 0 }
        return PartitionedGraphBuilder.minimumPartitionRows
            * PartitionedGraphBuilder.partitionBytesPerRow(dimension: schema.dimension, parameters: ix.graph)
    }

    /// Tier of a segment with `liveRows` rows.
    public func tier(liveRows: Int) -> Int {
        guard liveRows >= tierBaseRows else { return 0 }
        var t = 1, bound = tierBaseRows * tierFactor
        while liveRows >= bound, t < 40 { t += 1; bound = bound.multipliedReportingOverflow(by: tierFactor).overflow ? Int.max : bound * tierFactor }
        return t
    }
}

/// One unit of compaction work.
public struct CompactionTask: Sendable, Equatable {
    /// What kind of work.
    public enum Kind: String, Sendable {
        /// Merge several segments of one size tier into one.
        case merge
        /// Rewrite one segment to purge its deleted rows.
        case rewrite
        /// Build the missing index of a segment large enough to have one.
        case index
    }
    /// What kind of work this task is.
    public var kind: Kind
    /// Input segment names.
    public var inputs: [String]
    /// Live rows the output will hold.
    public var liveRows: Int
    /// Deleted rows dropped.
    public var deletedRows: Int
    /// Bytes of the input segment files.
    public var inputBytes: UInt64
    /// Memory the task is estimated to need.
    public var estimatedMemoryBytes: Int
    /// Why the policy chose it.
    public var reason: String
}

/// What the policy would do with the current manifest.
public struct CompactionPlan: Sendable {
    /// Manifest generation planned against.
    public var generation: UInt64
    /// The tasks a run would do, in order.
    public var tasks: [CompactionTask]
    /// Segments the policy wanted but could not take, with why (e.g. over the memory budget).
    public var skipped: [String]
    /// Obsolete files whose grace period has ended (removed by a run).
    public var expiredObsoleteFiles: Int
}

/// What a run did.
public struct CompactionResult: Sendable {
    /// One finished task.
    public struct Done: Sendable {
        /// The task that ran.
        public var task: CompactionTask
        /// New segment (nil when every input row was deleted).
        public var output: String?
        /// Rows written to the output segment.
        public var rowsWritten: Int
        /// Bytes of the output segment file.
        public var bytesWritten: UInt64
        /// Rows deleted while the task ran and carried over to the output's bitmap.
        public var deletesCarriedOver: Int
        /// Wall-clock seconds the task took.
        public var seconds: Double
        /// Manifest generation published.
        public var generation: UInt64

        /// A finished task.
        package init(task: CompactionTask, output: String?, rowsWritten: Int, bytesWritten: UInt64, deletesCarriedOver: Int,
                     seconds: Double, generation: UInt64) {
            self.task = task
            self.output = output
            self.rowsWritten = rowsWritten
            self.bytesWritten = bytesWritten
            self.deletesCarriedOver = deletesCarriedOver
            self.seconds = seconds
            self.generation = generation
        }
    }
    /// True when another compaction held the lock: nothing was done.
    public var lockBusy: Bool
    /// The plan the run followed (nil when the lock was busy).
    public var plan: CompactionPlan?
    /// The tasks that finished and were published, in order.
    public var done: [Done]
    /// Leftover and obsolete files removed.
    public var filesRemoved: Int
    /// Wall-clock seconds the run took.
    public var seconds: Double
}

/// Runs compaction on a collection directory (library form of `strata compact`).
public final class Compactor {
    /// Collection directory.
    public let path: String
    /// The policy.
    public let policy: CompactionPolicy

    /// A compactor for the collection at `path`.
    /// Payload indexes and BM25 columns for a merged segment: every one its inputs had, plus the
    /// policy's, so that compaction rebuilds rather than drops them.
    static func searchSections(of inputs: [Segment], adding extra: SearchSectionOptions) -> SearchSectionOptions {
        var indexed = Set(extra.indexedColumns), bm25 = Set(extra.bm25Columns)
        for segment in inputs {
            indexed.formUnion(segment.payloadIndexSizes.keys)
            bm25.formUnion(segment.bm25Columns)
        }
        return SearchSectionOptions(indexedColumns: indexed.sorted(), bm25Columns: bm25.sorted())
    }

    /// A compactor for the collection directory at `path`; nothing is read until ``plan()`` or ``run(maxTasks:)``.
    public init(path: String, policy: CompactionPolicy = CompactionPolicy()) {
        self.path = path
        self.policy = policy
    }

    /// The plan against the current manifest; changes nothing, takes no lock.
    public func plan() throws(StrataError) -> CompactionPlan {
        let manifest = try Manifest.read(directory: path)
        return plan(manifest)
    }

    /// The plan against `manifest` (shared with the remote compactor, which plans against its head's).
    package func plan(_ manifest: Manifest) -> CompactionPlan {
        let schema = manifest.schema
        let now = WallClock.milliseconds()
        let expired = manifest.obsolete.filter { Maintenance.graceHasPassed($0, now: now, graceSeconds: policy.graceSeconds) }.count
        var plan = CompactionPlan(generation: manifest.generation, tasks: [], skipped: [], expiredObsoleteFiles: expired)
        let minIndexRows = policy.index.map { max(1, $0.minimumRows) } ?? Int.max
        let room = max(0, policy.memoryBudgetBytes - CompactionPolicy.fixedOverheadBytes)
        func budgetRows(indexed: Bool) -> Int {
            let inMemory = room / policy.estimatedBytesPerRow(schema: schema, indexed: indexed)
            guard indexed else { return inMemory }
            // Larger indexed outputs build their graph out of core within what the budget leaves.
            let outOfCore = max(0, room - policy.minimumOutOfCoreBytes(schema: schema)) / policy.outOfCoreBytesPerRow(schema: schema)
            return max(inMemory, outOfCore)
        }
        func memory(_ rows: Int) -> Int {
            let inMemory = CompactionPolicy.fixedOverheadBytes + rows * policy.estimatedBytesPerRow(schema: schema, indexed: rows >= minIndexRows)
            return min(inMemory, max(policy.memoryBudgetBytes, CompactionPolicy.fixedOverheadBytes + rows * 64))
        }
        func fits(_ rows: Int) -> Bool { rows <= budgetRows(indexed: rows >= minIndexRows) }
        func live(_ s: ManifestSegment) -> Int { Int(s.rowCount - s.deletedCount) }
        var taken = Set<String>()

        // 1. Size tiers: a tier with mergeFactor or more segments is merged, smallest first, up to the budget.
        var tiers: [Int: [ManifestSegment]] = [:]
        for s in manifest.segments { tiers[policy.tier(liveRows: live(s)), default: []].append(s) }
        for t in tiers.keys.sorted() {
            let members = tiers[t]!.sorted { live($0) < live($1) }
            guard members.count >= max(2, policy.mergeFactor) else { continue }
            var group: [ManifestSegment] = []
            var rows = 0
            for s in members {
                if fits(rows + live(s)) {
                    group.append(s)
                    rows += live(s)
                } else if group.count < 2 {
                    plan.skipped.append("\(s.name): merging it would exceed the memory budget")
                }
            }
            guard group.count >= 2 else { continue }
            for s in group { taken.insert(s.name) }
            plan.tasks.append(CompactionTask(kind: .merge, inputs: group.map(\.name), liveRows: rows,
                                             deletedRows: group.reduce(0) { $0 + Int($1.deletedCount) },
                                             inputBytes: group.reduce(0) { $0 + $1.fileBytes }, estimatedMemoryBytes: memory(rows),
                                             reason: "\(group.count) segments in size tier \(t)"))
        }
        // Plans a task of one segment (`verb` names it in the skip note), or notes that it does not fit.
        func single(_ kind: CompactionTask.Kind, _ s: ManifestSegment, verb: String, reason: String) {
            guard fits(live(s)) else {
                plan.skipped.append("\(s.name): \(verb) \(live(s)) rows would exceed the memory budget")
                return
            }
            taken.insert(s.name)
            plan.tasks.append(CompactionTask(kind: kind, inputs: [s.name], liveRows: live(s), deletedRows: Int(s.deletedCount),
                                             inputBytes: s.fileBytes, estimatedMemoryBytes: memory(live(s)), reason: reason))
        }
        // 2. Deleted fraction over the threshold: rewrite alone.
        for s in manifest.segments where !taken.contains(s.name) && s.rowCount > 0 {
            let fraction = Double(s.deletedCount) / Double(s.rowCount)
            guard fraction >= policy.deletedFractionThreshold else { continue }
            single(.rewrite, s, verb: "rewriting", reason: "\(Int((fraction * 100).rounded()))% of rows deleted")
        }
        // 3. Large enough for an index but without one.
        for s in manifest.segments where !taken.contains(s.name) && !s.indexed && live(s) >= minIndexRows {
            single(.index, s, verb: "indexing", reason: "\(live(s)) rows without an index")
        }
        return plan
    }

    /// Takes the compaction lock (without waiting), removes the compactor's leftovers, runs the
    /// plan task by task (each published on its own) and removes expired obsolete files. When the
    /// lock is busy, returns at once with `lockBusy`. `maxTasks` stops early (tests). A segment
    /// whose derived section does not parse (which stops every open) is first rebuilt from its
    /// primary sections, as `repair()` does; that rewrite is the first of `done`.
    ///
    /// Every section a task copies from an input is checked against its checksum before the task
    /// publishes (see `copyLiveRows(of:into:)`): damage stops the run with `.checksumMismatch`
    /// (or the `.corrupt` a block decode found) naming the file, section and offset; that task's
    /// output is removed, its inputs stay live, and tasks published before it stand. A directory
    /// without a readable MANIFEST throws before anything is locked or removed (`.corrupt` when it
    /// holds collection files, `.io` otherwise).
    public func run(maxTasks: Int = Int.max) throws(StrataError) -> CompactionResult {
        let start = monotonicSeconds()
        guard FileSystem.isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
        _ = try Manifest.read(directory: path)
        guard let lock = try FileLock.acquire(CollectionFiles.compactLock(path), wait: false) else {
            return CompactionResult(lockBusy: true, plan: nil, done: [], filesRemoved: 0, seconds: monotonicSeconds() - start)
        }
        defer { lock.unlock() }
        var removed = try Maintenance.cleanUp(directory: path, owner: .compactor, graceSeconds: policy.graceSeconds)
        var done: [CompactionResult.Done] = []
        var version: Version
        while true {
            do {
                version = try openCurrentVersion(reusing: nil)
                break
            } catch {
                // A derived section that does not parse stops every open: rebuild that segment from
                // its primary sections (Compactor+Repair.swift), once each, then plan as usual.
                guard let name = segmentWithDerivedDamage(error), !done.contains(where: { $0.task.inputs == [name] }),
                      let fixed = try repairLocked(only: [name]).repaired.first else { throw error }
                done.append(fixed.done)
            }
        }
        let thePlan = plan(version.manifest)
        let planned = min(maxTasks, thePlan.tasks.count)
        for (i, task) in thePlan.tasks.prefix(maxTasks).enumerated() {
            policy.progress?(i, planned)
            if let d = try runTask(task, version: version) { done.append(d) }
            version = try openCurrentVersion(reusing: version)
        }
        policy.progress?(planned, planned)
        removed += try Maintenance.cleanUp(directory: path, owner: .compactor, graceSeconds: policy.graceSeconds)
        return CollectionObserver(logger: policy.logger, factory: policy.metricsFactory)
            .compacted(CompactionResult(lockBusy: false, plan: thePlan, done: done, filesRemoved: removed, seconds: monotonicSeconds() - start), version: version)
    }

    /// Reads and opens the current manifest under MANIFEST.lock, so that no publisher removes an
    /// obsolete file between the read and the opens (with a zero grace period).
    private func openCurrentVersion(reusing previous: Version?) throws(StrataError) -> Version {
        let mlock = try ManifestEdit.lockManifest(directory: path)
        defer { mlock.unlock() }
        return try Version.open(directory: path, manifest: try Manifest.read(directory: path), reusing: previous)
    }

    func runTask(_ task: CompactionTask, version: Version) throws(StrataError) -> CompactionResult.Done? {
        let inputs = task.inputs.compactMap { name in version.segments.first { $0.entry.name == name } }
        guard inputs.count == task.inputs.count else { return nil }
        return try runTask(task, inputs: inputs, schema: version.manifest.schema)
    }

    /// Runs `task` over `inputs` (its segments, opened, in order; repair passes segments opened
    /// without their derived sections): builds the output with `schema` (the manifest's),
    /// publishes it, carries deletes over.
    /// nil when an input was no longer live at the publish.
    func runTask(_ task: CompactionTask, inputs: [OpenSegment], schema: SegmentSchema) throws(StrataError) -> CompactionResult.Done? {
        let start = monotonicSeconds()
        var created: [String] = []
        do throws(StrataError) {
            let outputEntry = try Self.buildOutput(of: inputs, schema: schema, policy: policy, directory: path)
            if let outputEntry { created.append(outputEntry.name) }
            // Under MANIFEST.lock: carry over rows deleted since the snapshot (a writer's flush
            // may have published new bitmaps of the inputs), swap the inputs for the output.
            var carried = 0
            let published: Manifest?
            do throws(ManifestEdit.Failure) {
                published = try ManifestEdit.commit(directory: path, graceSeconds: policy.graceSeconds) { (current, _) throws(StrataError) -> ManifestEdit? in
                    // Inputs must still be live (only a compactor removes segments, and we hold its lock).
                    guard let now = Self.liveEntries(task.inputs, in: current) else { return nil }
                    var entry = outputEntry
                    if let outputEntry, let bitmap = try Self.carriedDeletes(inputs: inputs, now: now, output: outputEntry, directory: path) {
                        let name = CollectionFiles.newBitmapName(.compactor)
                        try bitmap.write(to: "\(path)/\(name)")
                        created.append(name)
                        entry!.deleteFile = name
                        entry!.deletedCount = UInt64(bitmap.deletedCount)
                        carried = bitmap.deletedCount
                    }
                    return ManifestEdit(removedSegments: Set(task.inputs), addedSegment: entry)
                }
            } catch {
                // The MANIFEST on disk may name the output when the publish failed after its rename:
                // keep it then; unreferenced, the next run's cleanup removes it.
                if case .publishUncertain = error { created = [] }
                throw error.error
            }
            guard let published else {
                for n in created { FileSystem.removeIfPresent("\(path)/\(n)") }
                return nil
            }
            return CompactionResult.Done(task: task, output: outputEntry?.name, rowsWritten: Int(outputEntry?.rowCount ?? 0),
                                         bytesWritten: outputEntry?.fileBytes ?? 0, deletesCarriedOver: carried,
                                         seconds: monotonicSeconds() - start, generation: published.generation)
        } catch {
            for n in created { FileSystem.removeIfPresent("\(path)/\(n)") }
            throw error
        }
    }

    /// The manifest entries of `names` in `manifest`, in that order, or nil when one is no longer
    /// live (another compaction replaced it).
    package static func liveEntries(_ names: [String], in manifest: Manifest) -> [ManifestSegment]? {
        let found = names.compactMap { name in manifest.segments.first { $0.name == name } }
        return found.count == names.count ? found : nil
    }

    /// Writes the live rows of `inputs` (as their opened bitmaps mark them) into a new compactor
    /// segment (`seg-c….seg`) in `directory`, with an index when the policy gives it one, and
    /// returns its manifest entry; nil when no row is live. The inputs' sections are checked as
    /// they are copied (see `copyLiveRows(of:into:)`). On failure nothing it made is left behind.
    /// The task part shared by the local compactor and the remote one (which builds in its cache).
    /// `owner` names the file (the writer's background index builder writes `seg-w…` files, which
    /// a compactor's cleanup leaves alone); `progress` is given the index build's progress.
    package static func buildOutput(of inputs: [OpenSegment], schema: SegmentSchema, policy: CompactionPolicy,
                                    directory: String, owner: CollectionFiles.Owner = .compactor,
                                    progress: (@Sendable (IndexBuildProgress) -> Void)? = nil,
                                    shouldStop: (@Sendable () -> Bool)? = nil) throws(StrataError) -> ManifestSegment? {
        let liveRows = inputs.reduce(0) { $0 + $1.segment.rowCount - ($1.bitmap?.deletedCount ?? 0) }
        // The inputs' schemas decide the output's search sections: check them before they are used.
        for input in inputs { try input.segment.checkSectionChecksums([.schema]) }
        guard liveRows > 0 else { return nil }
        let name = CollectionFiles.newSegmentName(owner)
        var wo = SegmentWriterOptions()
        wo.rowsPerBlock = policy.rowsPerBlock
        wo.progress = progress
        wo.shouldStop = shouldStop
        // The graph build gets what the budget leaves after the writer's own 64 B per row:
        // a task larger than an in-memory build allows is built out of core.
        wo.index = policy.index.map { options in
            var o = options
            o.memoryBudget = max(1, policy.memoryBudgetBytes - CompactionPolicy.fixedOverheadBytes - liveRows * 64)
            return o
        }
        wo.search = searchSections(of: inputs.map(\.segment), adding: policy.search)
        let writer = try SegmentWriter(path: "\(directory)/\(name)", schema: schema, options: wo)
        do throws(StrataError) {
            for input in inputs {
                try copyLiveRows(of: input, into: writer, width: schema.columns.count)
            }
            let summary = try writer.finish()
            return ManifestSegment(name: name, deleteFile: nil, rowCount: UInt64(summary.rowCount), deletedCount: 0,
                                   fileBytes: summary.fileBytes, indexed: summary.sections.contains { $0.kind == .graph },
                                   columnCount: schema.columns.count)
        } catch {
            // The writer's temporary files (and spools) go with it; a finished output by name.
            writer.abort()
            FileSystem.removeIfPresent("\(directory)/\(name)")
            throw error
        }
    }

    /// The rows of `output` (built from `inputs`, in `directory`) deleted since the inputs were
    /// opened: for each input whose bitmap in the current manifest (`now`: the inputs' entries
    /// there, in the same order) is not the one it was opened with, the rows that bitmap marks and
    /// the opened one did not, looked up by id in the output. Reads those bitmaps from `directory`.
    /// Returns the output's bitmap, nil when no row was deleted meanwhile.
    package static func carriedDeletes(inputs: [OpenSegment], now: [ManifestSegment], output: ManifestSegment,
                                       directory: String) throws(StrataError) -> DeleteBitmap? {
        var outBitmap: DeleteBitmap? = nil
        var outSegment: Segment? = nil
        for (input, entry) in zip(inputs, now) where entry.deleteFile != input.entry.deleteFile {
            // Bitmaps only grow: a live segment that lost its bitmap is a damaged manifest.
            guard let file = entry.deleteFile else {
                throw StrataError(.corrupt, "segment \(entry.name) had delete bitmap \(input.entry.deleteFile ?? "") and the current manifest names none",
                                  path: CollectionFiles.manifest(directory), section: "manifest")
            }
            let current = try DeleteBitmap.read(path: "\(directory)/\(file)")
            for row in current.rows where !input.isDeleted(row: row) {
                if outSegment == nil { outSegment = try Segment.open(path: "\(directory)/\(output.name)") }
                guard let out = try outSegment!.row(forId: try input.segment.id(ofRow: row)) else { continue }
                if outBitmap == nil { outBitmap = DeleteBitmap(rowCount: Int(output.rowCount)) }
                outBitmap!.insert(out)
            }
        }
        return outBitmap
    }

    /// Streams the live rows of one input into `writer` (their payloads padded with nulls to `width`
    /// columns: an input written before columns were added has fewer), 1,024 rows at a time, and drops the pages
    /// already read from this process's resident set (the memory budget counts what is written, not
    /// the size of the inputs).
    ///
    /// Nothing damaged is copied into a sound new file: before it returns, every section it read is
    /// checked against its checksum. Vectors (the vectors section, or the graph section when its
    /// records hold them) and ids are hashed as the copy streams through them
    /// (every row, deleted ones too, so each section is read once); schema, id_index and the column
    /// sections are checked up front (columns are small beside the vectors, and each payload block's
    /// own checksum is checked again when it is decoded); the delete bitmap was checked when read.
    /// The sparse vectors of live rows are carried over: sparse_index is checked against its
    /// checksum, then transposed into rows (`Segment.sparseRows()`). The other index and search
    /// sections (pq_codebook, pq_codes, the graph's neighbour lists, payload_index, text_index) are
    /// not used: the writer rebuilds them from the checked rows and payload.
    /// Errors name the input file, the section and its offset.
    private static func copyLiveRows(of input: OpenSegment, into writer: SegmentWriter, width: Int) throws(StrataError) {
        let seg = input.segment
        do {
            try seg.checkSectionChecksums([.schema, .idIndex, .column])
            let sparse = try seg.sparseRows()
            var vectors = try SectionChecksumStream(seg, kind: seg.vectors.section)
            var ids = try SectionChecksumStream(seg, kind: .ids)
            try SegmentLiveRows(input, width: width).forEach(afterChunk: { rows in
                vectors.hash(upTo: seg.vectors.sectionBytes(throughRows: rows.upperBound))
                ids.hash(upTo: rows.upperBound * 8)
                Maintenance.dropPages(seg, rows: rows)
            }) { (row, record) throws(StrataError) in
                try record.vector.withUnsafeBufferPointer { (p) throws(StrataError) in
                    try writer.appendAdmitted(id: record.id, vector: p, values: record.payload, sparse: sparse?.vector(row: row))
                }
            }
            try vectors.finish()
            try ids.finish()
        } catch {
            // A damaged byte can surface first as a value the writer refuses (a NaN, a duplicate
            // id): report the section checksum that explains it when one fails.
            do { try seg.checkSectionChecksums(seg.exactScanSections) } catch let damage { throw damage.inFile(seg.path) }
            throw error.inFile(seg.path)
        }
    }
}

/// Cleanup shared by the writer (at open) and the compactor (at start and end of a run).
enum Maintenance {
    /// Under MANIFEST.lock: removes `owner`'s temporary files and its segment/bitmap files that the
    /// manifest neither references nor lists as obsolete (leftovers of a crash before a publish);
    /// the writer also removes stray WAL files that hold no record (a flush creates the next WAL
    /// empty and writes to it only once a manifest names it, so a stray WAL with records belongs to
    /// a manifest that is not this one: it is kept). Then removes obsolete files whose grace period
    /// has ended, publishing a manifest without them. Returns the number of files removed.
    ///
    /// Nothing is removed unless the manifest was read and decoded: a missing or damaged MANIFEST
    /// throws here, before the directory is listed.
    @discardableResult
    static func cleanUp(directory: String, owner: CollectionFiles.Owner, graceSeconds: Double) throws(StrataError) -> Int {
        var removed = 0
        var obsoleteBefore = 0
        let published: Manifest?
        do throws(ManifestEdit.Failure) {
            published = try ManifestEdit.commit(directory: directory, graceSeconds: graceSeconds) { (manifest, _) throws(StrataError) -> ManifestEdit? in
                obsoleteBefore = manifest.obsolete.count
                removed = try removeLeftovers(of: manifest, directory: directory, owner: owner)
                // Nothing else changes: the commit publishes only when obsolete files were removed.
                return ManifestEdit()
            }
        } catch {
            throw error.error
        }
        if let published { removed += obsoleteBefore - published.obsolete.count }
        return removed
    }

    /// Removes `owner`'s files that `manifest` neither references nor lists as obsolete (see
    /// ``cleanUp(directory:owner:graceSeconds:)``). Call with MANIFEST.lock held.
    private static func removeLeftovers(of manifest: Manifest, directory: String, owner: CollectionFiles.Owner) throws(StrataError) -> Int {
        var keep = manifest.referencedFiles
        for o in manifest.obsolete { keep.insert(o.name) }
        var removed = 0
        for name in try FileSystem.list(directory) where !keep.contains(name) {
            let mine: Bool
            if CollectionFiles.isTemporary(name) {
                // MANIFEST temporaries are only written under MANIFEST.lock, which we hold.
                mine = CollectionFiles.owner(of: name) == owner || name.hasPrefix(".MANIFEST.")
                    || (owner == .writer && name.hasPrefix(".wal-"))
            } else if CollectionFiles.isWAL(name) {
                // Room for no record past the header: nothing acknowledged can be in it.
                mine = owner == .writer && ((try? FileSystem.fileSize("\(directory)/\(name)")) ?? .max) <= UInt64(WALFormat.headerLength)
            } else {
                mine = CollectionFiles.owner(of: name) == owner
            }
            if mine {
                FileSystem.removeIfPresent("\(directory)/\(name)")
                removed += 1
            }
        }
        return removed
    }

    /// Removes obsolete files past their grace period that no version of this process holds and
    /// that are not in `keeping` (the files the manifest on disk still names), and drops them from
    /// `manifest` (the caller publishes it). Removal before publication: a crash in between leaves
    /// an obsolete entry for a missing file, which the next pass drops; `keeping` makes sure it never
    /// leaves the standing manifest naming a live file that is gone.
    static func collectGarbage(_ manifest: inout Manifest, directory: String, graceSeconds: Double, now: UInt64,
                               keeping: Set<String>) {
        manifest.obsolete = manifest.obsolete.filter { o in
            let path = "\(directory)/\(o.name)"
            guard graceHasPassed(o, now: now, graceSeconds: graceSeconds), !keeping.contains(o.name),
                  !FileReferences.shared.isReferenced(path) else { return true }
            FileSystem.removeIfPresent(path)
            return false
        }
    }

    /// Whether `graceSeconds` have passed since `file` became obsolete. A time after `now` (the
    /// wall clock was stepped back) counts as just now, not as a wrapped-around huge age.
    static func graceHasPassed(_ file: ObsoleteFile, now: UInt64, graceSeconds: Double) -> Bool {
        let age = now >= file.sinceMilliseconds ? now - file.sinceMilliseconds : 0
        return Double(age) >= graceSeconds * 1000
    }

    /// Drops the mapped pages of `rows`' vectors from this process's resident set
    /// (`madvise(MADV_DONTNEED)` on a read-only shared mapping: the pages stay in the page cache).
    /// Called after each chunk of rows is read; drops whole groups only (a 4 KB sector of graph
    /// records may hold the first rows of the next chunk: it is dropped after that chunk).
    static func dropPages(_ seg: Segment, rows: Range<Int>) {
        guard !rows.isEmpty else { return }
        let v = seg.vectors
        let done = v.finishedGroups(afterReading: rows)
        let base = Int(bitPattern: v.base)
        MemoryAdvice.dontNeed.applyToWholePages(from: base + done.lowerBound, to: base + done.upperBound)
        // A block-aware layout scatters the rows' records over the section: drop their pages too.
        if !v.inRowOrder {
            for page in v.recordPages(of: rows) {
                MemoryAdvice.dontNeed.applyToWholePages(from: base + page, to: base + page + DiskGraphLayout.sectorSize)
            }
        }
    }
}
