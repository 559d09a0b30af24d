// The live rows of a sealed segment: the rows its delete bitmap does not mark, less (in a snapshot)
// those whose ids the buffer has deleted or replaced since. One reader for every pass over them:
// the snapshot's row listing and exact searches, and the compactor's copy into a new segment.
import StrataFormat
import StrataIndex

/// The live rows of one segment of a version, as a snapshot or a compaction sees them.
struct SegmentLiveRows {
    /// Rows read per chunk: the payload is decoded once per block and chunk, not once per row.
    static let chunkRows = 1024

    /// The segment and its delete bitmap.
    let open: OpenSegment
    /// Ids deleted since the version was published (the buffer's deletes of sealed rows); empty
    /// for a compaction, which carries later deletes over when it publishes.
    let pending: Set<UInt64>
    /// Payload columns of a record: the segment's, padded with nulls for columns added to the
    /// collection after it was written (SchemaGrowth.swift).
    let width: Int

    /// The live rows of `open`, less those whose ids are in `pending`, with payloads of `width`
    /// columns (nil: the segment's own).
    init(_ open: OpenSegment, pending: Set<UInt64> = [], width: Int? = nil) {
        self.open = open
        self.pending = pending
        self.width = max(width ?? 0, open.segment.schema.columns.count)
    }

    /// The segment.
    var segment: Segment { open.segment }

    /// Rows the bitmap leaves live (the pending deletes may fall in other segments).
    var bitmapLiveCount: Int { open.segment.rowCount - (open.bitmap?.deletedCount ?? 0) }

    /// Whether any row may be deleted (by the bitmap or a pending delete).
    var hasDeletes: Bool { (open.bitmap?.deletedCount ?? 0) > 0 || !pending.isEmpty }

    /// Whether `row` is deleted.
    @inline(__always) func isDeleted(_ row: Int) -> Bool {
        open.isDeleted(row: row) || (!pending.isEmpty && pending.contains(open.segment.unsafeId(ofRow: row)))
    }

    /// Calls `body(row, record)` for every live row in file order, ``chunkRows`` rows at a time,
    /// and `afterChunk(rows)` after each chunk (one whose rows are all deleted too, unread).
    func forEach(afterChunk: (Range<Int>) -> Void = { _ in },
                 _ body: (Int, CollectionRecord) throws(StrataError) -> Void) throws(StrataError) {
        let seg = open.segment
        try seg.checkBeforeRead(Segment.idSections)
        var start = 0
        while start < seg.rowCount {
            let end = min(seg.rowCount, start + Self.chunkRows)
            if !hasDeletes || !(start..<end).allSatisfy(isDeleted) {
                let values = try seg.payload(rows: start..<end)
                for row in start..<end where !isDeleted(row) {
                    try body(row, CollectionRecord(id: seg.unsafeId(ofRow: row), vector: try seg.vector(row: row),
                                                   payload: values[row - start].padded(to: width)))
                }
            }
            afterChunk(start..<end)
            start = end
        }
    }

    /// The `k` nearest live rows among `rows` to `query`, by exact distance, closest first (ties by id).
    func exactNearest<Rows: Sequence<Int>>(query: [Float], k: Int, among rows: Rows) throws(StrataError) -> [CollectionHit] {
        let seg = open.segment
        try seg.checkBeforeRead(seg.exactScanSections)
        let q = try seg.prepareQuery(query)
        let hasDeletes = hasDeletes
        var top = TopK(k: k)
        q.withUnsafeBufferPointer { qp in
            let qb = qp.baseAddress!
            for row in rows {
                if hasDeletes, isDeleted(row) { continue }
                let d = seg.unsafeDistance(qb, row: row)
                if d <= top.threshold { top.offer(distance: d, id: seg.unsafeId(ofRow: row), row: row) }
            }
        }
        return top.sorted().map { CollectionHit(id: $0.id, distance: $0.distance) }
    }
}

extension Segment {
    /// The payload of `rows` (clamped to the segment), one array of values in schema column order
    /// per row, decoding each block of each column once.
    func payload(rows: Range<Int>) throws(StrataError) -> [[PayloadValue]] {
        try checkOpen()
        try checkBeforeRead(Segment.columnSections)
        let range = rows.clamped(to: 0..<rowCount)
        var values = [[PayloadValue]](repeating: [], count: range.count)
        guard !range.isEmpty else { return values }
        for c in columns {
            var b = c.blockIndex(ofRow: range.lowerBound)
            while b < c.blocks.count, Int(c.blocks[b].firstRow) < range.upperBound {
                let block = try c.decodeBlock(b)
                let first = Int(c.blocks[b].firstRow)
                for i in max(range.lowerBound, first)..<min(range.upperBound, first + block.rowCount) {
                    values[i - range.lowerBound].append(block.value(i - first))
                }
                b += 1
            }
        }
        return values
    }
}
