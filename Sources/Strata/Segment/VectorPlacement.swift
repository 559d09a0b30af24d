// Where a segment's vectors lie in the mapping. Up to format 1.2 every segment has a vectors
// section (one row per `vectorStride` bytes). From format 2.0 an indexed segment has none: the
// graph's node records, which the search reads anyway, are the only copy (P records per 4 KB
// sector, or one record over Q sectors; docs/SEGMENT-FORMAT.md sections 7.1 and 7.9).
import StrataFormat
import StrataIndex

/// The address of every row's vector: `(s / rowsPerGroup) * groupBytes + (s % rowsPerGroup) *
/// rowStep` bytes after `base`, where s is the row's slot. The vectors section is one row per group
/// (`groupBytes` = the stride); graph records are P rows per 4 KB sector (`rowStep` = the record
/// size), or one row per Q sectors. The slot is the row itself, except in a block-aware graph
/// layout (version 2), where the graph's placement table gives it: rows are then not in order in
/// the section, and a reader going through them in row order reads the section at random.
struct VectorPlacement: @unchecked Sendable {
    /// The section that holds the vectors: `.vectors`, or `.graph` in a format 2.0 indexed segment.
    let section: SectionKind
    /// Where that section starts in the file.
    let sectionOffset: UInt64
    /// Bytes from the section's start to row 0's vector (0, or the graph header sector).
    let startInSection: Int
    /// Row 0's vector in the mapping.
    let base: UnsafeRawPointer
    let rowsPerGroup: Int
    let groupBytes: Int
    let rowStep: Int
    /// Rows placed.
    let rowCount: Int
    /// Bytes after each vector's elements that the format requires to be zero (stride or record padding).
    let paddingBytes: Int
    /// The graph whose placement table gives each row's slot (a block-aware layout); nil: slot = row.
    let placedBy: DiskGraphView?

    /// The vectors section: rows of `stride` bytes from `base`.
    init(vectorsSection base: UnsafeRawPointer, offset: UInt64, stride: Int, elementBytes: Int, rowCount: Int) {
        section = .vectors
        sectionOffset = offset
        startInSection = 0
        self.base = base
        rowsPerGroup = 1
        groupBytes = stride
        rowStep = 0
        self.rowCount = rowCount
        paddingBytes = stride - elementBytes
        placedBy = nil
    }

    /// The records of the graph section `graph` (its header checked by `DiskGraphView`), which
    /// starts at file offset `offset`.
    init(graphRecords graph: DiskGraphView, offset: UInt64, elementBytes: Int) {
        let g = graph.geometry
        section = .graph
        sectionOffset = offset
        startInSection = DiskGraphLayout.headerSize
        base = graph.bytes.baseAddress! + DiskGraphLayout.headerSize
        if g.nodesPerSector > 0 {
            rowsPerGroup = g.nodesPerSector
            groupBytes = DiskGraphLayout.sectorSize
            rowStep = g.recordSize
        } else {
            rowsPerGroup = 1
            groupBytes = g.sectorsPerNode * DiskGraphLayout.sectorSize
            rowStep = 0
        }
        rowCount = g.count
        paddingBytes = g.vectorBytes - elementBytes
        placedBy = graph.isBlockLayout ? graph : nil
    }

    /// Whether rows lie in row order (every layout but a block-aware graph).
    var inRowOrder: Bool { placedBy == nil }

    /// Bytes from `base` to `row`'s vector (row < rowCount; unchecked).
    @inline(__always)
    func offset(ofRow row: Int) -> Int {
        if let placedBy { return placedBy.recordOffset(row) - DiskGraphLayout.headerSize }
        return rowsPerGroup == 1 ? row &* groupBytes : (row / rowsPerGroup) &* groupBytes &+ (row % rowsPerGroup) &* rowStep
    }

    /// `row`'s vector in the mapping (row < rowCount; unchecked).
    @inline(__always)
    func pointer(row: Int) -> UnsafeRawPointer { base + offset(ofRow: row) }

    /// Calls `body(row, vector)` for each row of `rows` in order (rows < rowCount; unchecked),
    /// stepping through the layout: one division for the whole range, none per row (the inner loop
    /// of the exact scans, where a division per row would cost as much as a 384-d distance).
    /// With `prefetchBytes` > 0, hints the first `prefetchBytes` of the vector eight rows ahead into
    /// L2: graph records are not one sequential stream (a record's neighbour list and each sector's
    /// padding sit between two vectors), which the hardware prefetcher follows less well.
    @inline(__always)
    func forEachRow<E: Error>(in rows: Range<Int>, prefetchBytes: Int = 0,
                              _ body: (Int, UnsafeRawPointer) throws(E) -> Void) throws(E) {
        guard !rows.isEmpty else { return }
        if !inRowOrder {
            // Placed rows: one table look-up per row, the prefetch eight rows ahead as well.
            for row in rows {
                if prefetchBytes > 0, row &+ 8 < rows.upperBound { Prefetch.rangeL2(pointer(row: row &+ 8), bytes: prefetchBytes) }
                try body(row, pointer(row: row))
            }
            return
        }
        var current = Cursor(self, at: rows.lowerBound)
        // The row eight ahead, stepped alongside (so the prefetch costs no division either).
        let prefetching = prefetchBytes > 0 && rowStep > 0
        var ahead = Cursor(self, at: prefetching ? rows.lowerBound &+ 8 : rows.lowerBound)
        for row in rows {
            if prefetching, row &+ 8 < rows.upperBound {
                Prefetch.rangeL2(ahead.pointer(self), bytes: prefetchBytes)
                ahead.advance(self)
            }
            try body(row, current.pointer(self))
            current.advance(self)
        }
    }

    /// A position in the layout that steps row by row without dividing.
    private struct Cursor {
        var group: UnsafeRawPointer
        var slot: Int

        @inline(__always)
        init(_ p: VectorPlacement, at row: Int) {
            group = p.base + row / p.rowsPerGroup * p.groupBytes
            slot = row % p.rowsPerGroup
        }

        @inline(__always)
        func pointer(_ p: VectorPlacement) -> UnsafeRawPointer { group + slot &* p.rowStep }

        @inline(__always)
        mutating func advance(_ p: VectorPlacement) {
            slot &+= 1
            if slot == p.rowsPerGroup {
                slot = 0
                group += p.groupBytes
            }
        }
    }

    /// Bytes from the section's start through the group that holds row `rows - 1` (0 for no rows):
    /// how far a reader of rows 0..<rows has come through the section.
    /// Placed rows (a block-aware layout) may lie anywhere: the section is then covered in
    /// proportion to the rows read (whole pages), all of it once the last row is read, so a reader
    /// that hashes the section as it goes still does so in bounded steps.
    func sectionBytes(throughRows rows: Int) -> Int {
        guard rows > 0 else { return 0 }
        if let placedBy {
            let total = placedBy.geometry.totalBytes
            if rows >= rowCount { return total }
            let share = Int(Double(rows) / Double(rowCount) * Double(total)) & ~(DiskGraphLayout.sectorSize - 1)
            return min(total, share)
        }
        return startInSection + ((rows - 1) / rowsPerGroup + 1) * groupBytes
    }

    /// Bytes from `base` covering the whole groups (4 KB sectors of records, or rows of the vectors
    /// section) of which a reader going through the rows in order is done once it has read
    /// `rows`: the group holding row `rows.upperBound` may still hold rows it has not read, unless
    /// `rows` reaches the last row.
    /// Placed rows (a block-aware layout): the share of the section ``sectionBytes(throughRows:)``
    /// moved on by while reading `rows` (a page there may still hold a record of a row not yet
    /// read: dropping it from the process costs a page-cache fault later, never a wrong byte).
    func finishedGroups(afterReading rows: Range<Int>) -> Range<Int> {
        if placedBy != nil {
            let lower = max(0, sectionBytes(throughRows: rows.lowerBound) - startInSection)
            return lower..<max(lower, sectionBytes(throughRows: rows.upperBound) - startInSection)
        }
        let lower = rows.lowerBound / rowsPerGroup * groupBytes
        let upper = rows.upperBound >= rowCount ? sectionBytes(throughRows: rowCount) - startInSection
                                                : rows.upperBound / rowsPerGroup * groupBytes
        return lower..<max(lower, upper)
    }

    /// The 4 KB pages (offsets from `base`, sorted, distinct) holding the records of `rows`: in a
    /// block-aware layout they are scattered, and a reader that drops what it has read drops these.
    func recordPages(of rows: Range<Int>) -> [Int] {
        let page = DiskGraphLayout.sectorSize
        return Set(rows.map { offset(ofRow: $0) / page * page }).sorted()
    }

    /// Bytes one row takes in the layout, on average (for sizing scan tiles).
    var bytesPerRow: Int { max(1, groupBytes / rowsPerGroup) }

    /// The node id `row`'s record stores, in a block-aware layout (nil in row order, where records
    /// carry none); it differs from `row` only when the placement table is damaged.
    func storedNode(ofRow row: Int) -> Int? {
        guard let placedBy else { return nil }
        return placedBy.storedNode(of: placedBy.unsafeRecord(row))
    }

    /// File offset of `row`'s vector, for error messages.
    func fileOffset(ofRow row: Int) -> UInt64 { sectionOffset + UInt64(startInSection + offset(ofRow: row)) }

    /// The section's label in errors ("vectors" or "graph").
    var sectionLabel: String { section.description }
}
