// Read side of a segment: maps the file, validates header, footer, directory and the structure of
// every known section in O(sections + blocks) without reading the bulk data, and serves ids,
// vectors (zero copy), payload and exact search from the mapping.
import StrataFormat
import StrataIndex
import Synchronization

/// An open, immutable segment file. Safe to share between threads: the mapping is read-only and
/// every method is free of shared mutable state.
///
/// Unchecked `Sendable`: apart from the atomic `closed` flag, everything is set in `open` and only
/// read afterwards (over a read-only mapping); the searcher pool it holds is itself thread-safe.
public final class Segment: @unchecked Sendable {
    /// The path it was opened from.
    public let path: String
    /// Schema as recorded in the file.
    public let schema: SegmentSchema
    /// Number of rows.
    public let rowCount: Int
    /// Format version of the file (major, minor).
    public let formatVersion: (major: UInt16, minor: UInt16)
    /// The section directory, in file order.
    public let sections: [SectionInfo]
    /// File size in bytes.
    public var fileBytes: UInt64 { UInt64(file.bytes.count) }

    let file: MappedFile
    /// Row stride of the vectors section (from the header; also when the graph records hold the vectors).
    let vectorStride: Int
    /// Where each row's vector lies: the vectors section, or (format 2.0 indexed) the graph records.
    let vectors: VectorPlacement
    /// The sections a vector read uses (`[.vectors]`, or `[.graph]` when the records hold the vectors)
    /// and those an exact scan uses (those and `.ids`); stored, since a set literal allocates.
    let vectorSections: Set<SectionKind>
    let exactScanSections: Set<SectionKind>
    let idBytes: UnsafeRawBufferPointer
    let idIndexBytes: UnsafeRawBufferPointer
    let columns: [ColumnSection]
    /// The ANN index when the file has one (format 1.1+).
    let annIndex: SegmentANNIndex?
    /// Payload indexes, sparse and BM25 indexes when the file has them (format 1.2+; Strata/Query/SearchSections.swift).
    let searchExtras: SegmentSearchExtras?
    private let closed = Atomic<Bool>(false)
    /// Whether reads check section checksums first (``SegmentOpenOptions/verify``).
    let verifiesReads: Bool
    /// Indices into ``sections`` whose checksum this object has found sound (Segment+Checksums.swift).
    let checkedSections = Mutex<Set<Int>>([])

    /// Maps `path` and validates its structure. Throws `.badMagic`, `.unsupportedVersion`,
    /// `.truncated`, `.checksumMismatch` (header, footer, directory) or `.corrupt`, naming the section
    /// and offset. Section checksums are not checked here (open stays O(sections + blocks)): by
    /// ``verify(progress:)``, by ``checkSectionChecksums(_:)``, and before reads when opened with
    /// ``SegmentOpenOptions/verify``.
    public static func open(path: String) throws(StrataError) -> Segment {
        try open(path: path, options: SegmentOpenOptions())
    }

    /// As ``open(path:)``, with options (the budget of the cache of graph records nearest the entry
    /// point, which is filled here: up to the budget of records read from the file).
    public static func open(path: String, options: SegmentOpenOptions) throws(StrataError) -> Segment {
        do {
            return try Segment(file: MappedFile(path: path), options: options)
        } catch {
            throw error.inFile(path)
        }
    }

    private init(file: MappedFile, options: SegmentOpenOptions) throws(StrataError) {
        self.file = file
        self.path = file.path
        verifiesReads = options.verify
        let bytes = file.bytes
        let size = UInt64(bytes.count)
        let minimum = SegmentFormat.pageSize + UInt64(SegmentFormat.footerLength)
        if size >= 8, !UnsafeRawBufferPointer(rebasing: bytes[0..<8]).elementsEqual(SegmentFormat.headerMagic) {
            throw StrataError(.badMagic, "not a Strata segment (header magic is not STRATSEG)", section: "header", offset: 0)
        }
        guard size >= minimum else {
            throw StrataError(.truncated, "file is \(size) bytes; a segment has at least \(minimum)", section: "header", offset: size)
        }
        let header = try SegmentHeader.decode(UnsafeRawBufferPointer(rebasing: bytes[0..<SegmentFormat.headerLength]))
        let footerOffset = size - UInt64(SegmentFormat.footerLength)
        let footer = try SegmentFooter.decode(UnsafeRawBufferPointer(rebasing: bytes[Int(footerOffset)...]), at: footerOffset)
        try SectionDirectory.checkPlacement(footer, size: size, footerOffset: footerOffset)
        guard let dim = Optional(Int(header.dimension)), (1...SegmentSchema.maximumDimension).contains(dim),
              let elementType = VectorElementType(rawValue: header.elementType),
              let metric = DistanceMetric(rawValue: header.metric) else {
            throw StrataError(.corrupt, "bad dimension, element type or metric", section: "header", offset: 32)
        }
        guard Int(header.vectorStride) == SegmentFormat.vectorStride(dimension: dim, elementType: elementType) else {
            throw StrataError(.corrupt, "vector stride \(header.vectorStride) does not match dimension \(dim)", section: "header", offset: 40)
        }
        guard header.rowCount <= UInt64(Int.max) else { throw StrataError(.corrupt, "row count too large", section: "header", offset: 24) }
        rowCount = Int(header.rowCount)
        formatVersion = (header.major, header.minor)
        vectorStride = Int(header.vectorStride)

        let list = try SectionDirectory.decode(UnsafeRawBufferPointer(rebasing: bytes[Int(footer.directoryOffset)..<Int(footerOffset)]), footer: footer)
        sections = list

        func single(_ kind: SectionKind) throws(StrataError) -> SectionInfo {
            let found = list.filter { $0.kind == kind }
            guard found.count == 1 else {
                throw StrataError(.corrupt, "expected one \(kind) section, found \(found.count)", section: "directory", offset: footer.directoryOffset)
            }
            return found[0]
        }
        func view(_ s: SectionInfo) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: bytes[Int(s.offset)..<Int(s.offset + s.length)])
        }
        func expectLength(_ s: SectionInfo, _ perRow: UInt64) throws(StrataError) {
            guard let want = Checked.mul(header.rowCount, perRow), s.length == want else {
                throw StrataError(.corrupt, "\(s.kind!) section is \(s.length) bytes, expected \(header.rowCount) x \(perRow)", section: s.kind!.description, offset: s.offset)
            }
        }
        let schemaSection = try single(.schema)
        let ids = try single(.ids), idIndex = try single(.idIndex)
        try expectLength(ids, 8)
        try expectLength(idIndex, 16)
        idBytes = view(ids)
        idIndexBytes = view(idIndex)
        let elementBytes = dim * elementType.byteWidth
        if !list.contains(where: { $0.kind == .vectors }), header.major >= 2 {
            // Format 2.0 indexed segment: the graph records are the only copy of the vectors, so
            // the graph's header is checked here even when the index itself is not opened.
            let graphs = list.filter { $0.kind == .graph }
            guard graphs.count == 1 else {
                throw StrataError(.corrupt, "no vectors section, and \(graphs.count) graph sections to hold the vectors (expected 1)",
                                  section: "directory", offset: footer.directoryOffset)
            }
            let graph: DiskGraphView
            do { graph = try DiskGraphView(bytes: view(graphs[0])) } catch {
                throw StrataError(error.code, error.message, section: "graph", offset: graphs[0].offset + (error.offset ?? 0))
            }
            guard graph.count == rowCount, graph.dimension == dim, graph.elementType == elementType, graph.metric == metric else {
                throw StrataError(.corrupt, "the graph that holds the vectors does not match the header (rows, dimension, element type or metric)",
                                  section: "graph", offset: graphs[0].offset)
            }
            vectors = VectorPlacement(graphRecords: graph, offset: graphs[0].offset, elementBytes: elementBytes)
        } else {
            let section = try single(.vectors)
            try expectLength(section, UInt64(vectorStride))
            vectors = VectorPlacement(vectorsSection: bytes.baseAddress! + Int(section.offset), offset: section.offset,
                                      stride: vectorStride, elementBytes: elementBytes, rowCount: rowCount)
            // Vectors are read at random by search (one row at a time).
            file.advise(.random, range: Int(section.offset)..<Int(section.offset + section.length))
        }
        vectorSections = [vectors.section]
        exactScanSections = [vectors.section, .ids]
        let columnSpecs = try SchemaCodec.decode(view(schemaSection), fileOffset: schemaSection.offset)
        schema = SegmentSchema(dimension: dim, elementType: elementType, metric: metric, columns: columnSpecs)

        var sectionsByOrdinal = [SectionInfo?](repeating: nil, count: columnSpecs.count)
        for s in list where s.kind == .column {
            guard Int(s.ordinal) < columnSpecs.count, sectionsByOrdinal[Int(s.ordinal)] == nil else {
                throw StrataError(.corrupt, "column section with bad or repeated ordinal \(s.ordinal)", section: "directory", offset: s.offset)
            }
            sectionsByOrdinal[Int(s.ordinal)] = s
        }
        var parsed: [ColumnSection] = []
        for (i, spec) in columnSpecs.enumerated() {
            guard let s = sectionsByOrdinal[i] else {
                throw StrataError(.corrupt, "no section for column '\(spec.name)'", section: "directory", offset: footer.directoryOffset)
            }
            parsed.append(try ColumnSection(spec: spec, ordinal: i, bytes: view(s), fileOffset: s.offset, rowCount: header.rowCount))
        }
        columns = parsed

        let indexKinds: [SectionKind] = [.pqCodebook, .pqCodes, .graph]
        let indexSections = indexKinds.map { kind in list.filter { $0.kind == kind } }
        if indexSections.allSatisfy({ $0.isEmpty }) || options.skipsDerivedSections {
            annIndex = nil
        } else {
            guard indexSections.allSatisfy({ $0.count == 1 }) else {
                throw StrataError(.corrupt, "an index needs exactly one pq_codebook, pq_codes and graph section", section: "directory", offset: footer.directoryOffset)
            }
            let (cb, codes, graph) = (indexSections[0][0], indexSections[1][0], indexSections[2][0])
            // Graph records are read at random (also while filling the node cache below).
            file.advise(.random, range: Int(graph.offset)..<Int(graph.offset + graph.length))
            annIndex = try SegmentANNIndex(codebook: view(cb), codes: view(codes), graph: view(graph), rowCount: rowCount,
                                           dimension: dim, metric: metric, offsets: (cb.offset, codes.offset, graph.offset),
                                           cacheBudgetBytes: options.cacheBudgetBytes, cacheSampleSearches: options.cacheSampleSearches,
                                           navigationBudgetBytes: options.effectiveNavigationBudgetBytes,
                                           directPath: options.directIO ? file.path : nil, directUsesRing: options.directIOUsesRing)
        }
        let extras = try SegmentSearchExtras.open(list: list, view: view, schema: schema, rowCount: rowCount, hasANN: annIndex != nil,
                                                  primaryOnly: options.skipsDerivedSections)
        searchExtras = extras.payload == nil && extras.sparse == nil && extras.text.isEmpty ? nil : extras
    }

    /// Marks the segment closed: later calls throw `.invalidArgument`. The mapping itself is
    /// released when the last reference to this object goes away, so a reader on another thread
    /// that is mid-call never sees unmapped memory.
    public func close() {
        closed.store(true, ordering: .releasing)
    }

    @inline(__always)
    func checkOpen() throws(StrataError) {
        if closed.load(ordering: .acquiring) {
            throw StrataError(.invalidArgument, "segment is closed", path: path)
        }
    }

    // MARK: ids

    /// External id of `row`. Throws `.invalidArgument` when `row` is out of range.
    public func id(ofRow row: Int) throws(StrataError) -> UInt64 {
        try checkOpen()
        try checkRow(row)
        try checkBeforeRead(Segment.idSections)
        return unsafeId(ofRow: row)
    }

    @inline(__always)
    func unsafeId(ofRow row: Int) -> UInt64 {
        UInt64(littleEndian: idBytes.loadUnaligned(fromByteOffset: row * 8, as: UInt64.self))
    }

    /// Row of external id `id`, or nil. Binary search in the mapped id index: O(log n), no allocation.
    public func row(forId id: UInt64) throws(StrataError) -> Int? {
        try checkOpen()
        try checkBeforeRead(Segment.idIndexSections)
        var lo = 0, hi = rowCount
        while lo < hi {
            let mid = (lo + hi) / 2
            let key = UInt64(littleEndian: idIndexBytes.loadUnaligned(fromByteOffset: mid * 16, as: UInt64.self))
            if key < id { lo = mid + 1 } else { hi = mid }
        }
        guard lo < rowCount,
              UInt64(littleEndian: idIndexBytes.loadUnaligned(fromByteOffset: lo * 16, as: UInt64.self)) == id else { return nil }
        let row = UInt64(littleEndian: idIndexBytes.loadUnaligned(fromByteOffset: lo * 16 + 8, as: UInt64.self))
        guard row < UInt64(rowCount) else {
            throw StrataError(.corrupt, "id index points at row \(row) of \(rowCount)", path: path, section: "id_index",
                              offset: sections.first { $0.kind == .idIndex }.map { $0.offset + UInt64(lo * 16 + 8) })
        }
        return Int(row)
    }

    func checkRow(_ row: Int) throws(StrataError) {
        guard row >= 0, row < rowCount else {
            throw StrataError(.invalidArgument, "row \(row) is outside 0..<\(rowCount)", path: path)
        }
    }

    // MARK: vectors

    /// Calls `body` with the raw bytes of `row`'s vector in the mapping (zero copy; `dimension`
    /// elements of `SegmentSchema.elementType`, 4-byte aligned: 32-byte in a vectors section, 4-byte
    /// in graph records). The pointer is valid only inside `body`.
    /// Throws `.invalidArgument` for a row out of range or a closed segment.
    public func withUnsafeVectorBytes<R>(row: Int, _ body: (UnsafeRawBufferPointer) throws(StrataError) -> R) throws(StrataError) -> R {
        try checkOpen()
        try checkRow(row)
        try checkBeforeRead(vectorSections)
        try checkPlacement(row: row)
        return try body(unsafeVectorBytes(row: row))
    }

    /// In a block-aware graph layout, that the record the placement table gives `row` names `row`:
    /// open does not read the table, and a copy (compaction, scroll) must not carry another row's
    /// vector out under this row's id. Throws `.corrupt` naming the graph section and the record.
    func checkPlacement(row: Int) throws(StrataError) {
        guard let stored = vectors.storedNode(ofRow: row), stored != row else { return }
        throw StrataError(.corrupt, "row \(row)'s graph record names node \(stored): the placement table is damaged",
                          path: path, section: vectors.sectionLabel, offset: vectors.fileOffset(ofRow: row))
    }

    /// `row`'s vector bytes in the mapping, unchecked.
    @inline(__always)
    func unsafeVectorBytes(row: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: vectors.pointer(row: row), count: schema.dimension * schema.elementType.byteWidth)
    }

    /// `row`'s vector as float32 (a copy; converted from float16 when stored so).
    public func vector(row: Int) throws(StrataError) -> [Float] {
        try checkOpen()
        try checkRow(row)
        try checkBeforeRead(vectorSections)
        try checkPlacement(row: row)
        let dim = schema.dimension
        let raw = unsafeVectorBytes(row: row)
        return { () -> [Float] in
            switch schema.elementType {
            case .float32:
                return Array(raw.bindMemory(to: Float.self))
            case .float16:
                return [Float](unsafeUninitializedCapacity: dim) { out, n in
                    DistanceKernels.unsafeConvertToFloat(halfBits: raw.baseAddress!.assumingMemoryBound(to: UInt16.self), into: out.baseAddress!, count: dim)
                    n = dim
                }
            }
        }()
    }

    // MARK: payload

    /// All payload values of `row`, in schema column order. Costs one block decompression per column.
    public func payload(row: Int) throws(StrataError) -> [PayloadValue] {
        try checkOpen()
        try checkRow(row)
        try checkBeforeRead(Segment.columnSections)
        var values: [PayloadValue] = []
        for c in columns {
            let b = c.blockIndex(ofRow: row)
            values.append(try c.decodeBlock(b).value(row - Int(c.blocks[b].firstRow)))
        }
        return values
    }

    /// The value of `column` for `row`. Throws `.unknownColumn` for a name not in the schema.
    public func value(row: Int, column: String) throws(StrataError) -> PayloadValue {
        try checkOpen()
        try checkRow(row)
        try checkBeforeRead(Segment.columnSections)
        let c = columns[try schema.columnIndex(named: column)]
        let b = c.blockIndex(ofRow: row)
        return try c.decodeBlock(b).value(row - Int(c.blocks[b].firstRow))
    }

    /// Calls `body(row, value)` for the rows of `rows` (all rows by default) of `column`, decoding
    /// one block at a time.
    public func scan(column: String, rows: Range<Int>? = nil,
                     _ body: (Int, PayloadValue) throws -> Void) throws {
        try checkOpen()
        try checkBeforeRead(Segment.columnSections)
        let c = columns[try schema.columnIndex(named: column)]
        let range = (rows ?? 0..<rowCount).clamped(to: 0..<rowCount)
        guard !range.isEmpty else { return }
        var b = c.blockIndex(ofRow: range.lowerBound)
        while b < c.blocks.count, Int(c.blocks[b].firstRow) < range.upperBound {
            let block = try c.decodeBlock(b)
            let first = Int(c.blocks[b].firstRow)
            for i in max(range.lowerBound, first)..<min(range.upperBound, first + block.rowCount) {
                try body(i, block.value(i - first))
            }
            b += 1
        }
    }

    /// Statistics of every column (from the column headers and block directories; no decoding).
    public var columnStatistics: [ColumnStatistics] { columns.map(\.statistics) }

    /// Block directory of `column` (row ranges, byte ranges, checksums, zone maps).
    public func blocks(ofColumn column: String) throws(StrataError) -> [ColumnBlockInfo] {
        columns[try schema.columnIndex(named: column)].blocks
    }
}
