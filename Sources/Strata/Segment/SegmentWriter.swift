// Writes one immutable segment file (layout: SegmentLayout.swift and docs/SEGMENT-FORMAT.md).
//
// Rows stream to disk as they arrive: vectors go straight into the temporary segment file at
// their final offset (the vectors section is first, at 4096), and each payload column streams its
// finished LZ4 blocks into a side spool file. `finish()` appends ids, id index, schema and the
// spooled columns, writes directory, footer and header, fsyncs, renames into place and fsyncs the
// directory. Memory while writing: 8 B per row for the ids; at finish, about 40 B per row while the
// id index is sorted (ids, sort order, (id, row) pairs); one open block per column (<= maxBlockBytes
// + one value each); 64 B per finished block; 1 MiB of write buffer. With an index, finish() also
// holds the PQ codes (M B per row) and, without a memory budget, the graph being built (about
// 4 x 1.3R + 4R B per row, plus a float16 copy of the vectors, 2 x dimension B per row; a float32
// copy too for float16 segments); with IndexOptions.memoryBudget the graph is built out of core
// within that budget (Index/PartitionedGraphBuilder.swift). Vectors are read from the mapped file.
import StrataFormat
import StrataIndex
import CStrataKernels
#if canImport(Glibc)
import Glibc
#endif

/// Options of ``SegmentWriter``.
public struct SegmentWriterOptions: Sendable {
    /// Rows per payload block (fewer when a block reaches ``maxBlockBytes``). Default 1024.
    public var rowsPerBlock: Int = 1024
    /// Decoded bytes after which a payload block is closed early. Default 1 MiB.
    public var maxBlockBytes: Int = 1 << 20
    /// Compress payload blocks with LZ4 (blocks that do not shrink are stored raw anyway).
    public var compressPayload: Bool = true
    /// Build the ANN index (PQ codes + Vamana graph) at ``SegmentWriter/finish()``; nil: exact search only.
    public var index: IndexOptions? = nil
    /// Payload indexes and BM25 columns written as format-1.2 search sections (Filter/SearchSections.swift).
    public var search = SearchSectionOptions()
    /// Called between units of the index build (phases, rows done), e.g. to print progress; nil: silent.
    public var progress: (@Sendable (IndexBuildProgress) -> Void)? = nil

    /// Default options.
    public init() {}
}

/// What ``SegmentWriter/finish()`` wrote.
public struct SegmentWriteSummary: Sendable {
    /// Final path of the segment.
    public var path: String
    /// Rows written.
    public var rowCount: Int
    /// File size in bytes.
    public var fileBytes: UInt64
    /// The section directory as written.
    public var sections: [SectionInfo]
}

/// Streams rows into a new segment file; not thread-safe (one writer per file).
///
/// ```swift
/// let writer = try SegmentWriter(path: "a.seg", schema: schema)
/// try writer.append([SegmentRow(id: 7, vector: v, payload: ["name": .string("x")])])
/// let summary = try writer.finish()
/// ```
public final class SegmentWriter {
    /// The schema rows must follow.
    public let schema: SegmentSchema
    /// The final path (written only by ``finish()``).
    public let path: String
    private let options: SegmentWriterOptions
    /// The temporary file the segment is written to, published at ``path`` by ``finish()``.
    private let output: AtomicFileWriter
    private var tempPath: String { output.temporaryPath }
    fileprivate var indexOptions: IndexOptions? { options.index }
    fileprivate var indexProgress: (@Sendable (IndexBuildProgress) -> Void)? { options.progress }
    fileprivate var tempPathForIndex: String { tempPath }
    private var file: any WritableFile { output.file }
    private let stride: Int
    private var ids: [UInt64] = []
    private var vectorBuffer: [UInt8] = []
    private var vectorBytesWritten: UInt64 = 0
    private let vectorChecksum = Checksum.Streaming()
    private var columns: [ColumnSpool] = []
    private var state: State = .open
    private var rowScratch: [Float]
    /// The row checks (shared with the collection's insert path).
    private let validator: RowValidator
    /// Builds the optional search sections (payload indexes, BM25, sparse vectors); nil when none.
    var searchBuilder: SearchSectionsBuilder?

    private enum State { case open, finished, failed }

    /// Largest string (or string list, items plus 4 B each) one row may hold: 64 MiB, which keeps
    /// every payload block below its 4 GiB (u32) limit.
    public static let maximumValueBytes = 64 << 20

    /// Creates the temporary file next to `path`. Throws `.invalidArgument` for a bad schema or options.
    public init(path: String, schema: SegmentSchema, options: SegmentWriterOptions = SegmentWriterOptions()) throws(StrataError) {
        try schema.validate()
        guard options.rowsPerBlock >= 1, options.rowsPerBlock <= 1 << 20 else {
            throw StrataError(.invalidArgument, "rowsPerBlock must be 1...1048576")
        }
        guard options.maxBlockBytes >= 1024, options.maxBlockBytes <= 1 << 28 else {
            throw StrataError(.invalidArgument, "maxBlockBytes must be 1 KiB...256 MiB")
        }
        self.schema = schema
        self.path = path
        self.options = options
        stride = SegmentFormat.vectorStride(dimension: schema.dimension, elementType: schema.elementType)
        rowScratch = [Float](repeating: 0, count: schema.dimension)
        validator = RowValidator(schema: schema, path: nil, owner: "schema")
        let search = try SearchSectionsBuilder(schema: schema, options: options.search)
        searchBuilder = search.isEmpty ? nil : search
        output = try AtomicFileWriter(publishingAt: path)
        do {
            for (i, spec) in schema.columns.enumerated() {
                columns.append(try ColumnSpool(spec: spec, ordinal: i, spoolPath: "\(tempPath).col\(i)",
                                               limits: ColumnBlockLimits(rowsPerBlock: options.rowsPerBlock, maxBlockBytes: options.maxBlockBytes,
                                                                         compress: options.compressPayload)))
            }
        } catch {
            abort()
            throw error
        }
        vectorBuffer.reserveCapacity(1 << 20)
    }

    deinit {
        if state == .open { abort() }
    }

    /// Number of rows appended so far.
    public var rowCount: Int { ids.count }

    /// Appends a batch of rows. The whole batch is checked before any row is written, so a bad row
    /// (wrong dimension, NaN/inf, a squared norm over ``VectorLimits/maximumSquaredNorm``, unknown
    /// column, type mismatch, null in a non-nullable column)
    /// rejects the batch and leaves the writer usable. Duplicate ids are detected by ``finish()``.
    public func append(_ rows: [SegmentRow]) throws(StrataError) {
        try checkOpen()
        var positional: [[PayloadValue]] = []
        positional.reserveCapacity(rows.count)
        for (n, row) in rows.enumerated() {
            positional.append(try validator.check(row, label: "row \(n) (id \(row.id))"))
        }
        for (row, values) in zip(rows, positional) {
            try row.vector.withBytes { (raw) throws(StrataError) in try appendChecked(id: row.id, vector: raw.bindMemory(to: Float.self), values: values) }
        }
    }

    /// Appends one row with payload values in schema column order (`.null` for missing).
    public func append(id: UInt64, vector: UnsafeBufferPointer<Float>, values: [PayloadValue]) throws(StrataError) {
        try checkOpen()
        try validator.checkVector(vector, label: "row id \(id)")
        try validator.checkValues(values, label: "row id \(id)")
        try appendChecked(id: id, vector: vector, values: values)
    }

    /// Appends a row the collection already acknowledged (a buffer flush, a compaction copy): every
    /// check of ``append(id:vector:values:)`` but the norm limit, which applies when a row is
    /// admitted, so that rows stored before the limit existed are carried over, never lost.
    func appendAdmitted(id: UInt64, vector: UnsafeBufferPointer<Float>, values: [PayloadValue]) throws(StrataError) {
        try checkOpen()
        try validator.checkVector(vector, label: "row id \(id)", normLimit: false)
        try validator.checkValues(values, label: "row id \(id)")
        try appendChecked(id: id, vector: vector, values: values)
    }

    private func checkOpen() throws(StrataError) {
        guard state == .open else { throw StrataError(.invalidArgument, "writer is already finished", path: path) }
    }

    private func appendChecked(id: UInt64, vector: UnsafeBufferPointer<Float>, values: [PayloadValue]) throws(StrataError) {
        do {
            try appendVector(vector)
            for (i, value) in values.enumerated() { try columns[i].append(value) }
            searchBuilder?.add(values: values)
            ids.append(id)
        } catch {
            // A failed write leaves the file in an unknown state: the writer cannot continue.
            state = .failed
            abort()
            throw error
        }
    }

    private func appendVector(_ vector: UnsafeBufferPointer<Float>) throws(StrataError) {
        let dim = schema.dimension
        if schema.metric == .cosine {
            // Double accumulation and division: a float sum of squares overflows for large
            // components, and a float 1/norm overflows for tiny ones.
            var n: Double = 0
            for x in vector { n += Double(x) * Double(x) }
            let norm = n.squareRoot()
            for d in 0..<dim { rowScratch[d] = Float(Double(vector[d]) / norm) }
        } else {
            for d in 0..<dim { rowScratch[d] = vector[d] }
        }
        let start = vectorBuffer.count
        vectorBuffer.append(contentsOf: repeatElement(0, count: stride))
        vectorBuffer.withUnsafeMutableBytes { raw in
            let dst = raw.baseAddress! + start
            rowScratch.withUnsafeBufferPointer { src in
                switch schema.elementType {
                case .float32:
                    dst.copyMemory(from: src.baseAddress!, byteCount: dim * 4)
                case .float16:
                    strata_f32_to_f16(src.baseAddress, dst.assumingMemoryBound(to: UInt16.self), dim)
                }
            }
        }
        if vectorBuffer.count >= 1 << 20 { try flushVectors() }
    }

    private func flushVectors() throws(StrataError) {
        guard !vectorBuffer.isEmpty else { return }
        try vectorBuffer.withBytes { (raw) throws(StrataError) in
            vectorChecksum.update(raw)
            try file.write(raw, atAbsoluteOffset: SegmentFormat.pageSize + vectorBytesWritten)
        }
        vectorBytesWritten += UInt64(vectorBuffer.count)
        vectorBuffer.removeAll(keepingCapacity: true)
    }

    /// Discards everything written so far and removes the temporary files.
    public func abort() {
        if state == .open { state = .failed }
        output.abandon()
        for c in columns { c.discard() }
    }

    /// Completes the file and publishes it atomically at ``path`` (temp file, fsync, rename, fsync
    /// directory). Throws `.duplicateId` when two rows share an id (the file is then not written).
    @discardableResult
    public func finish() throws(StrataError) -> SegmentWriteSummary {
        guard state == .open else { throw StrataError(.invalidArgument, "writer is already finished or failed", path: path) }
        do {
            let summary = try finishUnchecked()
            state = .finished
            return summary
        } catch {
            abort()
            throw error.inFile(path)
        }
    }

    private func finishUnchecked() throws(StrataError) -> SegmentWriteSummary {
        try flushVectors()
        let rows = UInt64(ids.count)
        let builtIndex = try buildIndexIfAsked()
        var sections: [SectionInfo] = []
        let vectorLength = rows * UInt64(stride)
        sections.append(SectionInfo(kindNumber: SectionKind.vectors.rawValue, required: true, compression: 0,
                                    checksumType: SectionInfo.checksumXXH3, offset: SegmentFormat.pageSize,
                                    length: vectorLength, decodedLength: vectorLength, checksum: vectorChecksum.digest,
                                    ordinal: SectionInfo.noOrdinal))
        var cursor = alignUp(SegmentFormat.pageSize + vectorLength, SegmentFormat.pageSize)

        func put(_ kind: SectionKind, _ bytes: UnsafeRawBufferPointer) throws(StrataError) {
            try file.write(bytes, atAbsoluteOffset: cursor)
            let optional = kind == .pqCodebook || kind == .pqCodes || kind.isSearchSection
            sections.append(SectionInfo(kindNumber: kind.rawValue, required: !optional, compression: 0,
                                        checksumType: SectionInfo.checksumXXH3, offset: cursor,
                                        length: UInt64(bytes.count), decodedLength: UInt64(bytes.count),
                                        checksum: Checksum.xxh3(bytes), ordinal: SectionInfo.noOrdinal))
            cursor = alignUp(cursor + UInt64(bytes.count), SegmentFormat.pageSize)
        }

        // ids (row order), then the id index: (id, row) pairs sorted by id.
        let idBytes = ids.map { $0.littleEndian }
        try idBytes.withBytes { (raw) throws(StrataError) in try put(.ids, raw) }
        var order = Array(0..<ids.count)
        order.sort { ids[$0] < ids[$1] }
        var pairs: [UInt64] = []
        pairs.reserveCapacity(ids.count * 2)
        for (k, row) in order.enumerated() {
            if k > 0, ids[order[k - 1]] == ids[row] {
                throw StrataError(.duplicateId, "id \(ids[row]) appears in rows \(order[k - 1]) and \(row)")
            }
            pairs.append(ids[row].littleEndian)
            pairs.append(UInt64(row).littleEndian)
        }
        order = []
        try pairs.withBytes { (raw) throws(StrataError) in try put(.idIndex, raw) }
        pairs = []

        let schemaBytes = SchemaCodec.encode(schema.columns)
        try schemaBytes.withBytes { (raw) throws(StrataError) in try put(.schema, raw) }

        for column in columns {
            let info = try column.writeSection(into: file, at: cursor, rowCount: rows)
            sections.append(info)
            cursor = alignUp(cursor + info.length, SegmentFormat.pageSize)
        }

        if let searchBuilder { try searchBuilder.write(rowCount: rows, put: put) }

        if let builtIndex {
            try builtIndex.codebook.withBytes { (raw) throws(StrataError) in try put(.pqCodebook, raw) }
            try builtIndex.codes.withBytes { (raw) throws(StrataError) in try put(.pqCodes, raw) }
            let checksum = Checksum.Streaming()
            let start = cursor
            var written: UInt64 = 0
            let sink: (UnsafeRawBufferPointer) throws -> Void = { chunk in
                checksum.update(chunk)
                try self.file.write(chunk, atAbsoluteOffset: start + written)
                written += UInt64(chunk.count)
            }
            let rows = builtIndex.rows, n = rows.count
            let progress = indexProgress
            try typed {
                let writer = try DiskGraphLayout.SectorStreamWriter(
                    count: n, dimension: schema.dimension, elementType: schema.elementType,
                    maxDegree: builtIndex.graph.maxDegree, metric: schema.metric, medoid: builtIndex.graph.medoid, sink: sink)
                let vector = UnsafeMutablePointer<Float>.allocate(capacity: schema.dimension)
                defer { vector.deallocate() }
                try builtIndex.graph.forEachNode { i, neighbors in
                    rows.copy(row: i, into: vector)
                    try writer.append(vector: vector, neighbors: neighbors, sink: sink)
                    if i & 0xFFFF == 0xFFFF { progress?(IndexBuildProgress(phase: "layout", done: i + 1, total: n, detail: "")) }
                }
                try writer.finish(sink: sink)
            }
            withExtendedLifetime(builtIndex.mapping) {}
            sections.append(SectionInfo(kindNumber: SectionKind.graph.rawValue, required: false, compression: 0,
                                        checksumType: SectionInfo.checksumXXH3, offset: start, length: written,
                                        decodedLength: written, checksum: checksum.digest, ordinal: SectionInfo.noOrdinal))
            cursor = alignUp(start + written, SegmentFormat.pageSize)
        }

        // Directory, footer, header.
        var dir = ByteWriter(capacity: sections.count * 64)
        for s in sections { s.encode(into: &dir) }
        let directoryOffset = cursor
        let fileLength = directoryOffset + UInt64(dir.count) + UInt64(SegmentFormat.footerLength)
        let footer = SegmentFooter(directoryOffset: directoryOffset, directoryLength: UInt64(dir.count),
                                   sectionCount: UInt32(sections.count),
                                   directoryChecksum: dir.bytes.withUnsafeBytes { Checksum.xxh3($0) },
                                   fileLength: fileLength)
        dir.raw(footer.encoded())
        try dir.bytes.withBytes { (raw) throws(StrataError) in try file.write(raw, atAbsoluteOffset: directoryOffset) }
        var headerPage = SegmentHeader(rowCount: rows, dimension: UInt32(schema.dimension),
                                       elementType: schema.elementType.rawValue, metric: schema.metric.rawValue,
                                       vectorStride: UInt32(stride)).encoded()
        headerPage.append(contentsOf: repeatElement(0, count: Int(SegmentFormat.pageSize) - headerPage.count))
        try headerPage.withBytes { (raw) throws(StrataError) in try file.write(raw, atAbsoluteOffset: 0) }
        try file.truncate(to: fileLength)
        for c in columns { c.discard() }
        try output.publish()
        return SegmentWriteSummary(path: path, rowCount: Int(rows), fileBytes: fileLength, sections: sections)
    }
}

/// The index built at finish: codebook, codes, graph, and the mapped vectors the layout copies.
private struct BuiltIndex {
    var codebook: [UInt8]
    var codes: [UInt8]
    var graph: BuiltGraph
    var rows: VectorRows
    /// Keeps `rows` mapped.
    var mapping: MappedFile
}

/// A graph built in memory, or merged out of core into a temporary file.
private enum BuiltGraph {
    case memory(VamanaGraph)
    case merged(MergedGraph)

    var maxDegree: Int {
        switch self {
        case .memory(let g): return g.maxDegree
        case .merged(let g): return g.maxDegree
        }
    }

    var medoid: Int {
        switch self {
        case .memory(let g): return g.medoid
        case .merged(let g): return g.medoid
        }
    }

    /// Calls `body(node, out-neighbours)` for every node in order.
    func forEachNode(_ body: (Int, UnsafeBufferPointer<UInt32>) throws -> Void) throws {
        switch self {
        case .memory(let g):
            try g.neighbors.withUnsafeBufferPointer { nbrs in
                for i in 0..<g.count {
                    let start = i * g.maxDegree
                    try body(i, UnsafeBufferPointer(rebasing: nbrs[start..<(start + Int(g.degrees[i]))]))
                }
            }
        case .merged(let g):
            for i in 0..<g.count { try body(i, g.neighbors(of: i)) }
        }
    }
}

extension SegmentWriter {
    /// Builds PQ codes and the Vamana graph from the vectors in the temporary file (mapped, read in
    /// place), when the options ask for an index and there are enough rows: in memory when it fits
    /// ``IndexOptions/memoryBudget`` (or there is none), else out of core (PartitionedGraphBuilder).
    fileprivate func buildIndexIfAsked() throws(StrataError) -> BuiltIndex? {
        guard let options = indexOptions, rowCount >= max(1, options.minimumRows) else { return nil }
        let n = rowCount, dim = schema.dimension
        let mapped = try MappedFile(path: tempPathForIndex)
        let stride = SegmentFormat.vectorStride(dimension: dim, elementType: schema.elementType)
        let rows = VectorRows(base: mapped.bytes.baseAddress! + Int(SegmentFormat.pageSize), strideBytes: stride,
                              dimension: dim, count: n, elementType: schema.elementType)
        let progress = indexProgress
        let threads = options.graph.threads ?? IndexParallel.defaultThreadCount
        let metric = schema.metric
        let tempPrefix = tempPathForIndex
        return try typed {
            let m = options.pqSubspaces ?? ProductQuantizer.defaultSubspaceCount(dimension: dim)
            let plan = try PartitionedGraphBuilder.plan(count: n, dimension: dim, codeSize: m, parameters: options.graph,
                                                        memoryBudget: options.memoryBudget)
            if !plan.isPartitioned {
                // In memory: float32 rows in place; float16 rows through a float32 copy.
                func build(_ v: UnsafeBufferPointer<Float>, _ rowStride: Int) throws -> BuiltIndex {
                    progress?(IndexBuildProgress(phase: "pq-train", done: 0, total: n, detail: ""))
                    let pq = try ProductQuantizer(training: v, count: n, dimension: dim, rowStride: rowStride,
                                                  subspaceCount: options.pqSubspaces, sampleLimit: options.pqTrainingSample,
                                                  iterations: options.pqIterations, seed: options.graph.seed, threads: options.graph.threads)
                    let codes = try pq.encode(vectors: v, count: n, rowStride: rowStride, threads: options.graph.threads)
                    progress?(IndexBuildProgress(phase: "graph", done: 0, total: 1, detail: "\(n) rows in memory"))
                    let graph = try VamanaBuilder.build(vectors: v, count: n, dimension: dim, rowStride: rowStride,
                                                        metric: metric, parameters: options.graph)
                    return BuiltIndex(codebook: pq.serialize(), codes: codes, graph: .memory(graph), rows: rows, mapping: mapped)
                }
                if let inPlace = rows.float32InPlace { return try build(inPlace.buffer, inPlace.rowStride) }
                let dense = rows.gather(0..<n, threads: threads)
                return try dense.withUnsafeBufferPointer { try build($0, dim) }
            }
            // Out of core: PQ trained on a sample, codes encoded row by row, partitioned graph.
            progress?(IndexBuildProgress(phase: "pq-train", done: 0, total: n, detail: ""))
            let sampleRows = PartitionedGraphBuilder.sampleRowNumbers(count: n, limit: min(n, max(options.pqTrainingSample, 256)),
                                                                      seed: options.graph.seed ^ 0x5A11)
            let sample = rows.gather(sampleRows, threads: threads)
            let pq = try sample.withUnsafeBufferPointer {
                try ProductQuantizer(training: $0, count: sampleRows.count, dimension: dim, rowStride: dim,
                                     subspaceCount: options.pqSubspaces, sampleLimit: sampleRows.count,
                                     iterations: options.pqIterations, seed: options.graph.seed, threads: options.graph.threads)
            }
            var codes = [UInt8](repeating: 0, count: n * pq.codeSize)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: threads * dim)
            defer { scratch.deallocate() }
            let sp = SendablePointer(scratch)
            codes.withUnsafeMutableBufferPointer { cp in
                let out = SendablePointer(cp.baseAddress!)
                let chunk = 1 << 18
                var start = 0
                while start < n {
                    let end = min(n, start + chunk)
                    IndexParallel.forEach(count: end - start, threads: threads, chunk: 256) { w, k in
                        rows.copy(row: start + k, into: sp.base + w * dim)
                        pq.encode(sp.base + w * dim, into: out.base + (start + k) * pq.codeSize)
                    }
                    start = end
                    progress?(IndexBuildProgress(phase: "pq-encode", done: end, total: n, detail: ""))
                }
            }
            let merged = try PartitionedGraphBuilder.build(rows: rows, metric: metric, parameters: options.graph, plan: plan,
                                                           tempPrefix: tempPrefix, progress: progress)
            return BuiltIndex(codebook: pq.serialize(), codes: codes, graph: .merged(merged), rows: rows, mapping: mapped)
        }
    }
}
