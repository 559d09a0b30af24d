import ArgumentParser
import Foundation
import Strata
import StrataFormat
import StrataIndex
import StrataRemote
import StrataTools

/// `strata import DIR|s3://BUCKET/PATH --vectors FILE`: large input files into a collection as sealed segments,
/// published in one manifest edit, bypassing the WAL.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Bulk-import .fvecs/.npy vectors (and a TSV payload, ids) into a collection as sealed, indexed segments, published in one manifest edit (atomic; bypasses the WAL).",
        discussion: """
        The input is cut into segments of --segment-rows consecutive rows, each read in file order and built (index included) by one of --threads builds at once; --memory-budget is shared by the builds running at once (fewer run when it cannot give each a workable share). When every segment is built, ids are checked (unique in the input and not live in the collection) and the segments are appended after the existing ones in ONE manifest edit. Nothing is published before that edit: a failure (bad data, a repeated id, a full disk) removes what the import wrote, and a kill leaves unreferenced files that the next read-write open removes. The rows never pass through the WAL.

        The import holds the collection's writer lock (it opens it read-write): another writer process cannot open it meanwhile; readers and `strata compact` go on. A non-empty write buffer is flushed first. Ids: with --ids, line r + 1 of the file is the id of row r; without, row r gets id r.

        For s3://BUCKET/PATH: the import holds the collection's writer lease; the segments are built in the node-local segment cache (--cache-dir), uploaded, and appended by one commit of the head in etcd (a race lost to `strata compact` is retried on top of it). Before that commit nothing is visible; segment objects uploaded by a failed or killed import are orphans that `strata gc` removes after its grace period.
        """)

    @Argument(help: "Collection directory, or s3://BUCKET/PATH.")
    var directory: String

    @OptionGroup var input: RowInputFlags

    @Option(name: .customLong("segment-rows"), help: "Rows per segment.")
    var segmentRows: Int = BulkImport.defaultSegmentRows

    @Option(name: .long, help: "Segment builds at once (default: one per 2 cores, at least 1; each gets its share of the cores).")
    var threads: Int?

    @Option(name: .customLong("memory-budget"),
            help: "Memory for the segment builds running at once, e.g. 2G (index builds above their share go out of core; the id sort spills to disk).")
    var memoryBudget: String?

    @OptionGroup var write: CollectionWriteFlags

    @OptionGroup var progressFlags: ProgressFlags

    @OptionGroup var remote: RemoteFlags

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    func validate() throws {
        guard segmentRows >= 1 else { throw ValidationError("--segment-rows must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let b = memoryBudget {
            guard let bytes = CollectionCompactCommand.parseBytes(b), bytes >= 128 << 20 else {
                throw ValidationError("--memory-budget must be a size of at least 128M (e.g. 512M, 2G)")
            }
        }
    }

    struct Output: Encodable {
        var rows: Int; var segments: [String]; var indexed_segments: Int; var bytes: UInt64
        var seconds: Double; var rows_per_s: Double; var generation: UInt64; var threads: Int; var segment_rows: Int
    }

    func run() async throws {
        try await CollectionHandles.with(directory, access: .readWrite, options: write.options(), remote: remote) { c in
            try await importRows(into: c)
        }
    }

    private func importRows(into c: any CollectionHandle) async throws {
        try write.check(against: c.schema)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let rows = try VectorFile(path: input.vectors).count
        let plan = BulkImportPlan(rows: rows, segmentRows: segmentRows, threads: threads ?? max(1, cores / 2),
                                  memoryBudget: memoryBudget.flatMap(CollectionCompactCommand.parseBytes), cores: cores)
        let reporter = progressFlags.reporter("import")
        var writerOptions = write.options().segmentWriterOptions
        writerOptions.progress = reporter.indexBuild
        let job = try BulkImport.job(schema: c.schema, vectors: input.vectors, payload: input.payload, ids: input.ids, plan: plan,
                                     writerOptions: writerOptions) { event in
            switch event {
            case .rows(let done, let total): reporter.update(phase: "rows", done: done, total: total)
            case .sealing(let k, let count, let rows, let indexing):
                reporter.note("segment \(k + 1) of \(count): \(rows) rows read, sealing\(indexing ? " and indexing" : "")")
            }
        }
        let summary = try await c.importSegments(job)
        reporter.finish(done: summary.rows)
        let out = Output(rows: summary.rows, segments: summary.segments, indexed_segments: summary.indexedSegments, bytes: summary.bytes,
                         seconds: summary.seconds, rows_per_s: summary.seconds > 0 ? Double(summary.rows) / summary.seconds : 0,
                         generation: summary.generation, threads: plan.threads, segment_rows: plan.segmentRows)
        if json { try printJSON(out); return }
        print(String(format: "imported %d rows in %d segments (%d indexed, %@) in %.2f s (%.0f rows/s, %d builds at once); manifest generation %llu",
                     out.rows, out.segments.count, out.indexed_segments, formatBytes(out.bytes), out.seconds, out.rows_per_s, out.threads,
                     out.generation))
    }
}
