// Scroll: the live rows in ascending id order after a cursor, one page at a time. Each sealed
// segment is walked in its id index (sorted (id, row) pairs in the mapping) from the cursor on, the
// buffer's ids above the cursor are sorted, and the sources are merged; a page reads at most
// `limit + 1` candidates per source, so memory is bounded by the page, never by the collection.
import StrataFormat
import StrataIndex

/// One page of ``CollectionSnapshot/scroll(after:limit:filter:)``.
public struct ScrollPage: Sendable {
    /// Live rows with ids above the cursor, ascending, at most `limit` of them.
    public var records: [CollectionRecord]
    /// The cursor for the next page (the last id of this page) when more rows follow; nil when
    /// this page is the last.
    public var nextId: UInt64?

    /// A page.
    public init(records: [CollectionRecord], nextId: UInt64?) {
        self.records = records
        self.nextId = nextId
    }
}

extension CollectionSnapshot {
    /// The largest page ``scroll(after:limit:filter:)`` returns.
    public static let maxScrollLimit = 100_000

    /// Up to `limit` live rows with ids greater than `after` (all ids when nil) that pass `filter`,
    /// in ascending id order, over the sealed segments and the buffer (deleted and replaced rows
    /// skipped; a row's newest version is the one returned). Pass the page's `nextId` as the next
    /// call's `after` to read on. Throws `.invalidArgument` for `limit` outside
    /// 1...``maxScrollLimit``, `.unknownColumn` / `.typeMismatch` for a filter that does not fit the
    /// schema.
    public func scroll(after: UInt64? = nil, limit: Int, filter: Filter? = nil) throws(StrataError) -> ScrollPage {
        guard limit >= 1, limit <= Self.maxScrollLimit else {
            throw StrataError(.invalidArgument, "scroll limit must be in 1...\(Self.maxScrollLimit), got \(limit)")
        }
        if let filter { try filter.validate(against: schema) }
        if after == UInt64.max { return ScrollPage(records: [], nextId: nil) }
        let first = after.map { $0 + 1 } ?? 0
        let want = limit + 1
        // Candidates as (id, source, row): source is the segment's index, or segments.count for the buffer.
        var found: [ScrollCandidate] = []
        for i in version.segments.indices {
            found += try segmentCandidates(i, from: first, want: want, filter: filter)
        }
        found += bufferCandidates(from: first, want: want, filter: filter)
        // Ascending id; for one id in several sources (never expected: publishing marks the older
        // row deleted) the newest source first, and only it kept.
        found.sort { $0.id != $1.id ? $0.id < $1.id : $0.source > $1.source }
        var page: [ScrollCandidate] = []
        for c in found where page.last?.id != c.id {
            page.append(c)
            if page.count == want { break }
        }
        let more = page.count > limit
        var records: [CollectionRecord] = []
        records.reserveCapacity(min(limit, page.count))
        for c in page.prefix(limit) { records.append(try record(c)) }
        return ScrollPage(records: records, nextId: more ? records.last?.id : nil)
    }

    private struct ScrollCandidate {
        var id: UInt64
        var source: Int
        var row: Int
    }

    /// Up to `want` live rows of segment `index` with ids from `first` on that pass `filter`, by id.
    private func segmentCandidates(_ index: Int, from first: UInt64, want: Int, filter: Filter?) throws(StrataError) -> [ScrollCandidate] {
        let open = version.segments[index]
        let seg = open.segment
        let live = SegmentLiveRows(open, pending: mem.sealedDeletes, width: schema.columns.count)
        var out: [ScrollCandidate] = []
        var k = try seg.idIndexPosition(atLeast: first)
        while k < seg.rowCount, out.count < want {
            let (id, row) = try seg.idIndexEntry(k)
            k += 1
            if live.isDeleted(row) { continue }
            if let filter, !filter.matches(try seg.payload(row: row).padded(to: schema.columns.count), schema: schema) { continue }
            out.append(ScrollCandidate(id: id, source: index, row: row))
        }
        return out
    }

    /// Up to `want` live buffered rows with ids from `first` on that pass `filter`, by id. The
    /// buffer is in memory already; sorting its ids above the cursor costs no more than it holds.
    private func bufferCandidates(from first: UInt64, want: Int, filter: Filter?) -> [ScrollCandidate] {
        let source = version.segments.count
        var ids = mem.index.keys.filter { $0 >= first }
        ids.sort()
        var out: [ScrollCandidate] = []
        for id in ids {
            guard out.count < want else { break }
            guard let loc = mem.index[id] else { continue }
            if let filter, !filter.matches(mem.chunks[Int(loc.chunk)].values[Int(loc.row)], schema: schema) { continue }
            out.append(ScrollCandidate(id: id, source: source, row: Int(loc.chunk) << 32 | Int(loc.row)))
        }
        return out
    }

    private func record(_ c: ScrollCandidate) throws(StrataError) -> CollectionRecord {
        if c.source == version.segments.count { return mem.chunks[c.row >> 32].record(c.row & 0xFFFF_FFFF) }
        let seg = version.segments[c.source].segment
        return CollectionRecord(id: c.id, vector: try seg.vector(row: c.row), payload: try seg.payload(row: c.row).padded(to: schema.columns.count))
    }
}

extension Segment {
    /// Position in the id index of the first id at least `id` (``rowCount`` when none). O(log n).
    func idIndexPosition(atLeast id: UInt64) throws(StrataError) -> Int {
        try checkOpen()
        try checkBeforeRead(Segment.idIndexSections)
        var lo = 0, hi = rowCount
        while lo < hi {
            let mid = (lo + hi) / 2
            if UInt64(littleEndian: idIndexBytes.loadUnaligned(fromByteOffset: mid * 16, as: UInt64.self)) < id { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The `k`-th (id, row) pair of the id index; `.corrupt` when its row is out of range.
    func idIndexEntry(_ k: Int) throws(StrataError) -> (id: UInt64, row: Int) {
        let id = UInt64(littleEndian: idIndexBytes.loadUnaligned(fromByteOffset: k * 16, as: UInt64.self))
        let row = UInt64(littleEndian: idIndexBytes.loadUnaligned(fromByteOffset: k * 16 + 8, as: UInt64.self))
        guard row < UInt64(rowCount) else {
            throw StrataError(.corrupt, "id index points at row \(row) of \(rowCount)", path: path, section: "id_index",
                              offset: sections.first { $0.kind == .idIndex }.map { $0.offset + UInt64(k * 16 + 8) })
        }
        return (id, Int(row))
    }
}

extension StrataCollection {
    /// A page of live rows in id order after `after` (see ``CollectionSnapshot/scroll(after:limit:filter:)``).
    public func scroll(after: UInt64? = nil, limit: Int, filter: Filter? = nil) throws(StrataError) -> ScrollPage {
        try snapshot().scroll(after: after, limit: limit, filter: filter)
    }
}
