// The input side of `strata import`: a vector file (and payload and id files) cut into consecutive
// row ranges of `segmentRows`, each read in file order into one segment of
// StrataCollection.importSegments (Strata/Collection/Collection+Import.swift), which builds up to
// `threads` of them at once and publishes them all in one manifest edit, bypassing the WAL.
//
// Memory: the files are mapped and read in order; each running segment build holds its writer
// (8 B per row for the ids, one payload block per column) and its index build, whose budget is the
// import's --memory-budget shared by the builds running at once (BulkImportPlan).
import Strata
import StrataFormat
import StrataIndex
import Synchronization

/// How an import splits its rows, threads and memory.
package struct BulkImportPlan: Sendable, Equatable {
    /// Rows per segment (the last one may have fewer).
    package var segmentRows: Int
    /// Segment builds at once.
    package var threads: Int
    /// Graph build threads per segment build (nil: all cores).
    package var buildThreadsPerSegment: Int?
    /// The index build budget of each segment build (nil: in memory).
    package var indexBudgetPerSegment: Int?
    /// The id-sort bound of each segment writer (nil: in memory).
    package var idSortBytesPerSegment: Int?

    /// Memory a segment build needs besides its index build: the writer's 8 B per row of ids and
    /// its per-row bookkeeping (the compactor counts 64 B per row), plus fixed buffers.
    static func writerBytes(rows: Int) -> Int { rows * 64 + (32 << 20) }
    /// The least an index build can work with (PartitionedGraphBuilder keeps 32 MiB for itself).
    static let minimumIndexBudget = 64 << 20

    /// A plan for `rows` rows: `threads` builds at once (fewer when `memoryBudget` cannot give
    /// each a workable share), sharing `cores` cores and `memoryBudget` bytes (nil: unbounded).
    package init(rows: Int, segmentRows: Int, threads: Int, memoryBudget: Int?, cores: Int) {
        self.segmentRows = max(1, segmentRows)
        let segments = max(1, (rows + self.segmentRows - 1) / self.segmentRows)
        var t = max(1, min(threads, segments))
        if let memoryBudget {
            let perBuild = Self.writerBytes(rows: self.segmentRows) + Self.minimumIndexBudget
            t = max(1, min(t, memoryBudget / perBuild))
            let share = memoryBudget / t
            indexBudgetPerSegment = max(Self.minimumIndexBudget, share - Self.writerBytes(rows: self.segmentRows))
            idSortBytesPerSegment = max(1 << 20, share / 4)
        }
        self.threads = t
        buildThreadsPerSegment = t > 1 ? max(1, cores / t) : nil
    }
}

/// The segments an import builds and how each is filled: the arguments of
/// ``StrataCollection/importSegments(count:threads:writerOptions:describe:fill:)`` (and of a remote
/// collection's `importSegments`).
package struct BulkImportJob: Sendable {
    /// Segments to build.
    package var count: Int
    /// Segment builds at once.
    package var threads: Int
    /// Options of the segment writers.
    package var writerOptions: SegmentWriterOptions
    /// How errors name row `row` of segment k.
    package var describe: @Sendable (_ segment: Int, _ row: Int) -> String
    /// Appends the rows of segment k to its writer.
    package var fill: @Sendable (_ segment: Int, _ writer: SegmentWriter) throws(StrataError) -> Void
}

/// Reads input files into a collection as sealed segments (``StrataCollection/importSegments(count:threads:writerOptions:describe:fill:)``).
package enum BulkImport {
    /// What an import reports while it runs.
    package enum Progress: Sendable {
        /// `done` of `total` input rows read (every 100,000 rows).
        case rows(done: Int, total: Int)
        /// Segment `segment` (0-based) of `count` is read and is being finished (index built).
        case sealing(segment: Int, count: Int, rows: Int, indexing: Bool)
    }

    /// Rows per segment when not given.
    package static let defaultSegmentRows = 1_000_000

    /// Imports the rows of `vectors` (with `payload`, in the collection's column order, and `ids`,
    /// one per line; default: the row numbers) into `collection` as segments of `plan.segmentRows`
    /// rows, with `writerOptions` (the collection's flush options) adjusted by `plan`: the
    /// ``BulkImportJob`` that ``job(schema:vectors:payload:ids:plan:writerOptions:progress:)`` makes.
    package static func run(into collection: StrataCollection, vectors: String, payload: String?, ids: String?,
                            plan: BulkImportPlan, writerOptions: SegmentWriterOptions,
                            progress: @escaping @Sendable (Progress) -> Void = { _ in }) throws(StrataError) -> StrataCollection.ImportSummary {
        let job = try job(schema: collection.schema, vectors: vectors, payload: payload, ids: ids, plan: plan,
                          writerOptions: writerOptions, progress: progress)
        return try collection.importSegments(count: job.count, threads: job.threads, writerOptions: job.writerOptions,
                                             describe: job.describe, fill: job.fill)
    }

    /// What an import of `vectors` into a collection of `schema` builds: segments of
    /// `plan.segmentRows` consecutive rows, the writer options (`writerOptions` adjusted by `plan`),
    /// and the fill of each segment. Side files are checked to have exactly one line per vector
    /// first. `progress` hears every 100,000 rows (from whichever build thread reaches it) and each
    /// segment's sealing.
    /// - Throws: `.dimensionMismatch`, the files' open and format errors, `.corrupt` for a side
    ///   file with too few or too many lines.
    package static func job(schema: SegmentSchema, vectors: String, payload: String?, ids: String?,
                            plan: BulkImportPlan, writerOptions: SegmentWriterOptions,
                            progress: @escaping @Sendable (Progress) -> Void = { _ in }) throws(StrataError) -> BulkImportJob {
        let columns = schema.columns
        let input = try InputRows(vectors: vectors, payload: payload, columns: columns, ids: ids.map { .file($0) } ?? .rowNumbers)
        let rows = input.rows.count
        guard input.vectors.dimension == schema.dimension || rows == 0 else {
            throw StrataError(.dimensionMismatch, "vectors have \(input.vectors.dimension) dimensions, collection has \(schema.dimension)",
                              path: vectors)
        }
        let segmentRows = plan.segmentRows
        // One pass over each side file checks its line count and records where each segment's
        // lines start, so that segment k's reader does not scan the file from line 1 (O(n^2)).
        let payloadStarts = try payload.map { (p) throws(StrataError) in try checkLineCount(p, rows: rows, vectors: vectors, every: segmentRows) }
        let idStarts = try ids.map { (p) throws(StrataError) in try checkLineCount(p, rows: rows, vectors: vectors, every: segmentRows) }
        var options = writerOptions
        if options.index != nil {
            options.index!.memoryBudget = plan.indexBudgetPerSegment ?? options.index!.memoryBudget
            options.index!.graph.threads = plan.buildThreadsPerSegment ?? options.index!.graph.threads
        }
        options.idSortMemoryBytes = plan.idSortBytesPerSegment
        let indexRows = options.index.map { max(1, $0.minimumRows) } ?? Int.max
        let count = (rows + segmentRows - 1) / segmentRows
        let done = Atomic<Int>(0)
        return BulkImportJob(count: count, threads: plan.threads, writerOptions: options,
                             describe: { k, row in "row \(k * segmentRows + row) of \(vectors)" },
                             fill: { (k, writer) throws(StrataError) in
            let range = (k * segmentRows)..<min(rows, (k + 1) * segmentRows)
            let starts = InputRows.SideFileStarts(payload: payloadStarts?[k], ids: idStarts?[k])
            let part = try InputRows(vectors: vectors, rows: range, payload: payload, columns: columns, ids: ids.map { .file($0) } ?? .rowNumbers,
                                     starts: starts)
            try part.forEach { (row) throws(StrataError) in
                do throws(StrataError) {
                    try part.vectors.withRow(row.fileRow) { (v) throws(StrataError) in try writer.append(id: row.id, vector: v, values: row.values) }
                } catch {
                    throw part.locate(error, row: row)
                }
                let n = done.add(1, ordering: .relaxed).newValue
                if n % 100_000 == 0 { progress(.rows(done: n, total: rows)) }
            }
            progress(.sealing(segment: k, count: count, rows: range.count, indexing: writer.rowCount >= indexRows))
        })
    }

    /// Throws `.corrupt` when `path` has fewer or more lines than the vector file has rows.
    /// Returns the position of line `k * every + 1` (the first line of segment k) for each
    /// segment k of `every` rows.
    static func checkLineCount(_ path: String, rows: Int, vectors: String, every: Int) throws(StrataError) -> [LineReader.Position] {
        var cursor = try LineReader(path: path).makeCursor()
        var starts: [LineReader.Position] = []
        starts.reserveCapacity(rows / max(1, every) + 1)
        var skipped = 0
        while skipped < rows {
            starts.append(cursor.position)
            let step = min(max(1, every), rows - skipped)
            let n = cursor.skip(step)
            skipped += n
            guard n == step else { break }
        }
        guard skipped == rows else {
            throw StrataError(.corrupt, "the file ends before line \(skipped + 1), which row \(skipped) of \(vectors) needs", path: path)
        }
        guard !cursor.hasMoreContent() else {
            throw StrataError(.corrupt, "more lines than the \(rows) rows of \(vectors)", path: path)
        }
        return starts
    }
}
