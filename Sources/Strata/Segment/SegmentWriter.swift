// Writes one immutable segment file (layout: SegmentLayout.swift and docs/SEGMENT-FORMAT.md).
//
// Rows stream to disk as they arrive: without an index, vectors go straight into the temporary
// segment file at their final offset (the vectors section is first, at 4096); with an index asked
// for, they go to a side spool (a format 2.0 indexed segment keeps them only in the graph records,
// which are written from the spool; a segment too small for an index copies the spool in as its
// vectors section). Each payload column streams its finished LZ4 blocks into a side spool file.
// `finish()` appends ids, id index, schema and the spooled columns, writes directory, footer and
// header, fsyncs, renames into place and fsyncs the directory. Memory while writing: 8 B per row
// for the ids; at finish, about 40 B per row while the id index is sorted in memory (ids, sort
// order, (id, row) pairs), or, above SegmentWriterOptions.idSortMemoryBytes, the bound plus 8 B per
// row for an external sort (IdIndexSort.swift); one open block per column (<= maxBlockBytes + one
// value each); 64 B per finished block; 1 MiB of write buffer. With an index, finish() also
// holds what the index build needs (StrataIndex's Build/IndexBuilder.swift: PQ codes and the graph,
// in memory or out of core within IndexOptions.memoryBudget), which reads the vectors from the
// spool, mapped.
import StrataFormat
import StrataIndex
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
    /// Payload indexes and BM25 columns written as format-1.2 search sections (Strata/Query/SearchSections.swift).
    public var search = SearchSectionOptions()
    /// Memory for sorting the id index at ``SegmentWriter/finish()`` (about 40 B per row in
    /// memory); a segment with more rows than that allows is sorted externally, in runs spilled to
    /// temporary files next to the segment and merged (the same bytes). nil: the index build's
    /// `IndexOptions.memoryBudget` when there is one, else always in memory.
    public var idSortMemoryBytes: Int? = nil
    /// How a duplicate-id error names row r of this segment (a bulk import names the input file's
    /// row); nil: `row r`.
    package var rowLabel: (@Sendable (Int) -> String)? = nil
    /// Called between units of the index build (phases, rows done), e.g. to print progress; nil: silent.
    public var progress: (@Sendable (IndexBuildProgress) -> Void)? = nil
    /// Asked between batches of the index build (never per distance); when it answers true the
    /// build stops and ``SegmentWriter/finish()`` throws ``IndexBuildCancellation/error()``. nil:
    /// never stops.
    package var shouldStop: (@Sendable () -> Bool)? = nil

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
    private var file: any WritableFile { output.file }
    private let stride: Int
    private var ids: [UInt64] = []
    private var vectorBuffer: [UInt8] = []
    private var vectorBytesWritten: UInt64 = 0
    /// Where vectors go when an index is asked for (nil: straight into the segment file).
    private var vectorSpool: SystemFile?
    private var vectorSpoolPath: String { "\(tempPath).vectors" }
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
            if options.index != nil { vectorSpool = try SystemFile.create(vectorSpoolPath) }
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
    /// (wrong dimension, NaN/inf, a squared norm over `VectorLimits.maximumSquaredNorm`, unknown
    /// column, type mismatch, null in a non-nullable column, a bad sparse vector)
    /// rejects the batch and leaves the writer usable. Duplicate ids are detected by ``finish()``.
    /// A row's sparse vector goes to the `sparse_index` section, as ``setSparseVector(row:_:)`` does.
    public func append(_ rows: [SegmentRow]) throws(StrataError) {
        try checkOpen()
        var positional: [[PayloadValue]] = []
        positional.reserveCapacity(rows.count)
        for (n, row) in rows.enumerated() {
            positional.append(try validator.check(row, label: "row \(n) (id \(row.id))"))
        }
        for (row, values) in zip(rows, positional) {
            try row.vector.withBytes { (raw) throws(StrataError) in try appendChecked(id: row.id, vector: raw.bindMemory(to: Float.self), values: values) }
            if let sparse = row.sparse { storeSparse(sparse, row: rowCount - 1) }
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
    /// `vector` is already in stored form (normalised for cosine when it was admitted): it is
    /// written as it is, so a row's stored bits never change between buffer, flush and compaction.
    /// A row's `sparse` vector was checked when it was admitted (a flush) or comes from a section
    /// whose checksum was checked (a compaction) and is stored as it is.
    func appendAdmitted(id: UInt64, vector: UnsafeBufferPointer<Float>, values: [PayloadValue], sparse: SparseVector? = nil) throws(StrataError) {
        try checkOpen()
        try validator.checkVector(vector, label: "row id \(id)", normLimit: false)
        try validator.checkValues(values, label: "row id \(id)")
        try appendChecked(id: id, vector: vector, values: values, stored: true)
        if let sparse { storeSparse(sparse, row: rowCount - 1) }
    }

    private func checkOpen() throws(StrataError) {
        guard state == .open else { throw StrataError(.invalidArgument, "writer is already finished", path: path) }
    }

    private func appendChecked(id: UInt64, vector: UnsafeBufferPointer<Float>, values: [PayloadValue], stored: Bool = false) throws(StrataError) {
        do {
            try appendVector(vector, stored: stored)
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

    private func appendVector(_ vector: UnsafeBufferPointer<Float>, stored: Bool) throws(StrataError) {
        let dim = schema.dimension
        if schema.metric == .cosine, !stored {
            rowScratch.withUnsafeMutableBufferPointer { _ = VectorLimits.unitVector(vector, into: $0) }
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
                    DistanceKernels.unsafeConvertToHalf(src.baseAddress!, into: dst.assumingMemoryBound(to: UInt16.self), count: dim)
                }
            }
        }
        if vectorBuffer.count >= 1 << 20 { try flushVectors() }
    }

    private func flushVectors() throws(StrataError) {
        guard !vectorBuffer.isEmpty else { return }
        try vectorBuffer.withBytes { (raw) throws(StrataError) in
            vectorChecksum.update(raw)
            if let vectorSpool {
                try vectorSpool.write(raw, atAbsoluteOffset: vectorBytesWritten)
            } else {
                try file.write(raw, atAbsoluteOffset: SegmentFormat.pageSize + vectorBytesWritten)
            }
        }
        vectorBytesWritten += UInt64(vectorBuffer.count)
        vectorBuffer.removeAll(keepingCapacity: true)
    }

    /// Discards everything written so far and removes the temporary files.
    public func abort() {
        if state == .open { state = .failed }
        output.abandon()
        for c in columns { c.discard() }
        discardVectorSpool()
    }

    private func discardVectorSpool() {
        guard let spool = vectorSpool else { return }
        spool.close()
        vectorSpool = nil
        FileSystem.removeIfPresent(vectorSpoolPath)
    }

    /// Copies the vector spool into the segment file as its vectors section (at 4096), hashing what
    /// it reads back: the bytes must be those hashed as they were appended.
    private func copyVectorSpool(_ spool: SystemFile) throws(StrataError) {
        let readBack = Checksum.Streaming()
        try spool.copyPrefix(vectorBytesWritten, into: file, at: SegmentFormat.pageSize, hashing: readBack)
        guard readBack.digest == vectorChecksum.digest else {
            throw StrataError(.io, "the vector spool read back differs from what was written to it", path: vectorSpoolPath)
        }
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
        var cursor = SegmentFormat.pageSize
        var graphLayoutVersion: UInt32? = nil
        if builtIndex == nil {
            // No index: the vectors section (from the spool when an index was asked for but the
            // segment is too small for one). With an index the graph records are the only copy.
            if let vectorSpool { try copyVectorSpool(vectorSpool) }
            let vectorLength = rows * UInt64(stride)
            sections.append(SectionInfo(kindNumber: SectionKind.vectors.rawValue, required: true, compression: 0,
                                        checksumType: SectionInfo.checksumXXH3, offset: SegmentFormat.pageSize,
                                        length: vectorLength, decodedLength: vectorLength, checksum: vectorChecksum.digest,
                                        ordinal: SectionInfo.noOrdinal))
            cursor = alignUp(SegmentFormat.pageSize + vectorLength, SegmentFormat.pageSize)
        }

        func put(_ kind: SectionKind, _ bytes: UnsafeRawBufferPointer) throws(StrataError) {
            try file.write(bytes, atAbsoluteOffset: cursor)
            let optional = kind == .pqCodebook || kind == .pqCodes || kind.isSearchSection
            sections.append(SectionInfo(kindNumber: kind.rawValue, required: !optional, compression: 0,
                                        checksumType: SectionInfo.checksumXXH3, offset: cursor,
                                        length: UInt64(bytes.count), decodedLength: UInt64(bytes.count),
                                        checksum: Checksum.xxh3(bytes), ordinal: SectionInfo.noOrdinal))
            cursor = alignUp(cursor + UInt64(bytes.count), SegmentFormat.pageSize)
        }

        /// A section whose bytes come in chunks (`body` calls its argument with each).
        func putStreamed(_ kind: SectionKind, _ body: ((UnsafeRawBufferPointer) throws(StrataError) -> Void) throws(StrataError) -> Void) throws(StrataError) {
            let checksum = Checksum.Streaming()
            var written: UInt64 = 0
            try body { (bytes) throws(StrataError) in
                try file.write(bytes, atAbsoluteOffset: cursor + written)
                checksum.update(bytes)
                written += UInt64(bytes.count)
            }
            sections.append(SectionInfo(kindNumber: kind.rawValue, required: true, compression: 0,
                                        checksumType: SectionInfo.checksumXXH3, offset: cursor,
                                        length: written, decodedLength: written, checksum: checksum.digest, ordinal: SectionInfo.noOrdinal))
            cursor = alignUp(cursor + written, SegmentFormat.pageSize)
        }

        // ids (row order), then the id index: (id, row) pairs sorted by id, in memory or, above
        // the writer's bound, by an external sort (IdIndexSort.swift); the same bytes either way.
        try putStreamed(.ids) { (emit) throws(StrataError) in
            var chunk: [UInt64] = []
            chunk.reserveCapacity(min(ids.count, 1 << 16))
            var start = 0
            while start < ids.count {
                let end = min(ids.count, start + (1 << 16))
                chunk.removeAll(keepingCapacity: true)
                for i in start..<end { chunk.append(ids[i].littleEndian) }
                try chunk.withBytes(emit)
                start = end
            }
        }
        let sort = IdIndexSort(rows: ids.count, memoryBytes: options.idSortMemoryBytes ?? options.index?.memoryBudget, tempPrefix: tempPath,
                               rowLabel: options.rowLabel ?? { "row \($0)" })
        try putStreamed(.idIndex) { (emit) throws(StrataError) in try sort.write(ids: ids, emit: emit) }

        let schemaBytes = SchemaCodec.encode(schema.columns)
        try schemaBytes.withBytes { (raw) throws(StrataError) in try put(.schema, raw) }

        for column in columns {
            let info = try column.writeSection(into: file, at: cursor, rowCount: rows)
            sections.append(info)
            cursor = alignUp(cursor + info.length, SegmentFormat.pageSize)
        }

        if let searchBuilder { try searchBuilder.write(rowCount: rows, put: put) }

        if let builtIndex {
            // The codebook and codes are whole sections; the graph streams in after them.
            let checksum = Checksum.Streaming()
            var graphStart: UInt64? = nil
            var written: UInt64 = 0
            let geometry = try builtIndex.index.write { (section, bytes) throws(StrataError) in
                switch section {
                case .pqCodebook: try put(.pqCodebook, bytes)
                case .pqCodes: try put(.pqCodes, bytes)
                case .graph:
                    let at = graphStart ?? cursor
                    graphStart = at
                    checksum.update(bytes)
                    try file.write(bytes, atAbsoluteOffset: at + written)
                    written += UInt64(bytes.count)
                }
            }
            withExtendedLifetime(builtIndex.mapping) {}
            let start = graphStart ?? cursor
            // Required: its records are the segment's only copy of the vectors.
            sections.append(SectionInfo(kindNumber: SectionKind.graph.rawValue, required: true, compression: 0,
                                        checksumType: SectionInfo.checksumXXH3, offset: start, length: written,
                                        decodedLength: written, checksum: checksum.digest, ordinal: SectionInfo.noOrdinal))
            cursor = alignUp(start + written, SegmentFormat.pageSize)
            graphLayoutVersion = geometry.version
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
        // A file with a vectors section is the 1.2 layout and opens in 1.x readers; one without
        // needs a 2.x reader, and a 3.x one when its graph uses the block-aware layout.
        let minReader: UInt16 = graphLayoutVersion == nil ? 1 : (graphLayoutVersion == DiskGraphLayout.blockVersion ? 3 : 2)
        var headerPage = SegmentHeader(minReaderMajor: minReader, rowCount: rows, dimension: UInt32(schema.dimension),
                                       elementType: schema.elementType.rawValue, metric: schema.metric.rawValue,
                                       vectorStride: UInt32(stride)).encoded()
        headerPage.append(contentsOf: repeatElement(0, count: Int(SegmentFormat.pageSize) - headerPage.count))
        try headerPage.withBytes { (raw) throws(StrataError) in try file.write(raw, atAbsoluteOffset: 0) }
        try file.truncate(to: fileLength)
        for c in columns { c.discard() }
        discardVectorSpool()
        try output.publish()
        return SegmentWriteSummary(path: path, rowCount: Int(rows), fileBytes: fileLength, sections: sections)
    }
}

/// The index built at finish, and the mapping of the vector spool it reads.
private struct MappedIndex {
    var index: BuiltIndex
    /// Keeps the index's rows mapped.
    var mapping: MappedFile
}

extension SegmentWriter {
    /// Builds the index from the vectors in the spool (mapped, read in place) when the options ask
    /// for one and there are enough rows (IndexBuilder).
    fileprivate func buildIndexIfAsked() throws(StrataError) -> MappedIndex? {
        guard let index = options.index, rowCount >= max(1, index.minimumRows) else { return nil }
        let mapped = try MappedFile(path: vectorSpoolPath)
        let rows = VectorRows(base: mapped.bytes.baseAddress!, strideBytes: stride,
                              dimension: schema.dimension, count: rowCount, elementType: schema.elementType)
        guard let built = try IndexBuilder.build(rows: rows, metric: schema.metric, options: index, tempPrefix: tempPath,
                                                 progress: options.progress, shouldStop: options.shouldStop) else { return nil }
        return MappedIndex(index: built, mapping: mapped)
    }
}
