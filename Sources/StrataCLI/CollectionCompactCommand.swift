import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata
import StrataRemote

/// `strata compact DIR|s3://BUCKET/PATH`: one cron-safe compaction run (exit 0 done or nothing to
/// do or another run holds the lock, 1 failed, 2 usage).
struct CollectionCompactCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Merge small segments, rewrite segments with many deletes, index unindexed ones (one run; safe from cron).",
        discussion: """
        Exit codes: 0 done, nothing to do, or another compaction holds the lock; 1 failed; 2 usage or I/O error.

        For s3://BUCKET/PATH: the lock is the collection's compactor lease in etcd; inputs are fetched into the node-local cache, outputs built there, uploaded and committed by the head transaction (a race lost to a flush or another compactor is rebased and retried). Obsolete objects are not removed here: `strata gc` does that after its grace period (--grace-seconds does not apply).

        Memory: each task is sized so that its estimate (32 MiB + rows x bytes per row; bytes per row is 64 without an index and 64 + 12 x dim + 16 x R + dim/4 with one built in memory) stays within --memory-budget. An indexed output too large for that is built out of core within the budget (64 + M + 12 bytes per row, plus room for one partition of 1,000 rows).
        """)

    @Argument(help: "Collection directory, or s3://BUCKET/PATH.")
    var directory: String

    @Flag(name: .customLong("dry-run"), help: "Print the plan and change nothing.")
    var dryRun = false

    @Option(name: .customLong("memory-budget"), help: "Memory bound per task, e.g. 512M, 2G, or bytes.")
    var memoryBudget: String = "1G"

    @Option(name: .customLong("deleted-threshold"), help: "Rewrite segments with at least this deleted fraction.")
    var deletedThreshold: Double = CompactionPolicy().deletedFractionThreshold

    @Option(name: .customLong("merge-factor"), help: "Merge a size tier once it holds this many segments.")
    var mergeFactor: Int = CompactionPolicy().mergeFactor

    @Option(name: .customLong("tier-base-rows"), help: "Live rows below which a segment is in tier 0.")
    var tierBaseRows: Int = CompactionPolicy().tierBaseRows

    @Option(name: .customLong("grace-seconds"), help: "Keep obsolete files this long for other processes.")
    var graceSeconds: Double = CompactionPolicy().graceSeconds

    @Flag(name: .customLong("no-index"), help: "Do not build ANN indexes for output segments.")
    var noIndex = false

    @Option(name: .customLong("min-index-rows"), help: "Output segments with fewer rows get no index.")
    var minIndexRows: Int = IndexOptions.defaultMinimumRows

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @OptionGroup var progressFlags: ProgressFlags

    @OptionGroup var remote: RemoteFlags

    static func parseBytes(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        let units: [(String, Int)] = [("GIB", 1 << 30), ("MIB", 1 << 20), ("KIB", 1 << 10), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10),
                                      ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let v = Double(t.dropLast(suffix.count)), v > 0 else { return nil }
            let bytes = v * Double(scale)
            // 2^62: well inside Int (a larger or infinite value would trap in the conversion).
            guard bytes.isFinite, bytes < 0x1p62 else { return nil }
            return Int(bytes)
        }
        return Int(t).flatMap { $0 > 0 ? $0 : nil }
    }

    func validate() throws {
        guard let b = Self.parseBytes(memoryBudget), b >= 64 << 20 else { throw ValidationError("--memory-budget must be at least 64M (e.g. 512M, 2G)") }
        guard deletedThreshold > 0, deletedThreshold <= 1 else { throw ValidationError("--deleted-threshold must be in (0, 1]") }
        guard mergeFactor >= 2 else { throw ValidationError("--merge-factor must be at least 2") }
        guard tierBaseRows >= 1 else { throw ValidationError("--tier-base-rows must be at least 1") }
        guard graceSeconds >= 0 else { throw ValidationError("--grace-seconds must be >= 0") }
    }

    func policy() -> CompactionPolicy {
        var p = CompactionPolicy()
        p.memoryBudgetBytes = Self.parseBytes(memoryBudget)!
        p.deletedFractionThreshold = deletedThreshold
        p.mergeFactor = mergeFactor
        p.tierBaseRows = tierBaseRows
        p.graceSeconds = graceSeconds
        if noIndex { p.index = nil } else { p.index?.minimumRows = minIndexRows }
        return p
    }

    struct TaskJSON: Encodable {
        var kind: String; var inputs: [String]; var live_rows: Int; var deleted_rows: Int; var input_bytes: UInt64
        var estimated_memory_bytes: Int; var reason: String
        var output: String?; var rows_written: Int?; var bytes_written: UInt64?; var deletes_carried_over: Int?; var seconds: Double?
        var mb_per_s: Double?; var rows_per_s: Double?
        init(_ t: CompactionTask) {
            kind = t.kind.rawValue; inputs = t.inputs; live_rows = t.liveRows; deleted_rows = t.deletedRows; input_bytes = t.inputBytes
            estimated_memory_bytes = t.estimatedMemoryBytes; reason = t.reason
        }
    }
    struct Output: Encodable {
        var path: String; var dry_run: Bool; var lock_busy: Bool; var generation: UInt64?; var tasks: [TaskJSON]; var skipped: [String]
        var files_removed: Int; var seconds: Double
        /// Remote only: tasks given up (an input was merged away meanwhile), commits retried after a lost race, bytes moved.
        var dropped: [String]?; var retries: Int?; var bytes_uploaded: UInt64?; var bytes_fetched: UInt64?
    }

    func run() async throws {
        let reporter = progressFlags.reporter("compact")
        if !dryRun { reporter.update(phase: "compact", done: 0, total: nil, unit: "tasks") }
        switch try CollectionLocation(directory) {
        case .local(let path):
            var p = policy()
            if reporter.isActive { p.progress = { done, total in reporter.update(phase: "compact", done: done, total: total, unit: "tasks") } }
            let compactor = Compactor(path: path, policy: p)
            if dryRun { return try printPlan(try compactor.plan()) }
            let r = try compactor.run()
            // The policy's callback reported each task; a busy lock ends the run before any plan.
            if r.lockBusy { reporter.update(phase: "compact", done: 0, total: 0, unit: "tasks") }
            var out = Output(path: directory, dry_run: false, lock_busy: r.lockBusy, generation: r.done.last?.generation ?? r.plan?.generation,
                             tasks: r.done.map(Self.taskJSON), skipped: r.plan?.skipped ?? [], files_removed: r.filesRemoved, seconds: r.seconds)
            if r.lockBusy { out.generation = nil; out.tasks = []; out.skipped = []; out.files_removed = 0 }
            try printRun(out)
        case .remote(let address):
            try await RemoteTarget.with(address, flags: remote) { t in
                let compactor = RemoteCompactor(layout: t.layout, store: t.s3, metadata: t.etcd, options: t.options, policy: policy())
                if dryRun { return try printPlan(try await t.mapMissing { () async throws(StrataError) in try await compactor.plan() }) }
                let r = try await t.mapMissing { () async throws(StrataError) in try await compactor.run() }
                reporter.update(phase: "compact", done: r.done.count, total: r.done.count, unit: "tasks")
                var out = Output(path: directory, dry_run: false, lock_busy: r.busy, generation: r.generation, tasks: r.done.map(Self.taskJSON),
                                 skipped: r.plan?.skipped ?? [], files_removed: 0, seconds: r.seconds)
                out.dropped = r.dropped
                out.retries = r.retries
                out.bytes_uploaded = r.bytesUploaded
                out.bytes_fetched = r.bytesFetched
                try printRun(out)
            }
        }
    }

    static func taskJSON(_ d: CompactionResult.Done) -> TaskJSON {
        var t = TaskJSON(d.task)
        t.output = d.output; t.rows_written = d.rowsWritten; t.bytes_written = d.bytesWritten
        t.deletes_carried_over = d.deletesCarriedOver; t.seconds = d.seconds
        t.mb_per_s = d.seconds > 0 ? Double(d.task.inputBytes) / 1e6 / d.seconds : 0
        t.rows_per_s = d.seconds > 0 ? Double(d.rowsWritten) / d.seconds : 0
        return t
    }

    private func printPlan(_ plan: CompactionPlan) throws {
        let out = Output(path: directory, dry_run: true, lock_busy: false, generation: plan.generation, tasks: plan.tasks.map(TaskJSON.init),
                         skipped: plan.skipped, files_removed: 0, seconds: 0)
        if json { try printJSON(out); return }
        if plan.tasks.isEmpty { print("nothing to do") }
        for t in plan.tasks {
            print("\(t.kind.rawValue): \(t.inputs.joined(separator: " + ")) -> \(t.liveRows) rows, drops \(t.deletedRows) deleted, ~\(formatBytes(UInt64(t.estimatedMemoryBytes))) memory (\(t.reason))")
        }
        for s in plan.skipped { print("skipped: \(s)") }
        if plan.expiredObsoleteFiles > 0 { print("\(plan.expiredObsoleteFiles) obsolete files past their grace period would be removed") }
    }

    private func printRun(_ out: Output) throws {
        if json { try printJSON(out); return }
        if out.lock_busy {
            print("another compaction holds the lock on \(directory); nothing done")
            return
        }
        if out.tasks.isEmpty { print("nothing to do (\(out.files_removed) files removed)") }
        for t in out.tasks {
            print(String(format: "%@: %@ -> %@: %d rows, %@ in %.2f s (%.1f MB/s read, %.0f rows/s)", t.kind, t.inputs.joined(separator: " + "),
                         t.output ?? "(nothing live)", t.rows_written ?? 0, formatBytes(t.bytes_written ?? 0), t.seconds ?? 0, t.mb_per_s ?? 0, t.rows_per_s ?? 0))
        }
        for s in out.skipped { print("skipped: \(s)") }
        for d in out.dropped ?? [] { print("dropped: \(d)") }
    }
}
