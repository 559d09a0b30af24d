// Snapshot reads: one manifest version plus one buffer state, immutable while held; get, scan and
// (filtered) search over the sealed segments and the buffer, merged by (distance, id).
import StrataFormat
import StrataIndex
#if canImport(Glibc)
import Glibc
#endif

/// One immutable view of a collection: a manifest version and a buffer state. Holding it keeps
/// its segment files in use (they are not removed by this process while it lives).
public struct CollectionSnapshot: Sendable {
    package let version: Version
    package let mem: MemTable
    /// The schema.
    public let schema: SegmentSchema

    /// A snapshot of `version` and `mem`.
    package init(version: Version, mem: MemTable, schema: SegmentSchema) {
        self.version = version
        self.mem = mem
        self.schema = schema
    }

    /// Manifest generation of this snapshot.
    public var generation: UInt64 { version.manifest.generation }

    /// Live rows.
    public var count: Int {
        var n = mem.index.count - mem.sealedDeletes.count
        for s in version.segments { n += s.segment.rowCount - (s.bitmap?.deletedCount ?? 0) }
        return n
    }

    /// The live row with `id`, or nil.
    public func get(id: UInt64) throws(StrataError) -> CollectionRecord? {
        if let loc = mem.index[id] { return mem.chunks[Int(loc.chunk)].record(Int(loc.row)) }
        guard !mem.sealedDeletes.contains(id), let (s, row) = version.locate(id) else { return nil }
        let seg = version.segments[s].segment
        return CollectionRecord(id: id, vector: try seg.vector(row: row), payload: try seg.payload(row: row).padded(to: schema.columns.count))
    }

    /// Calls `body` for every live row: sealed segments in manifest order (rows in file order, the
    /// payload decoded one block per column per 1,024 rows), then the buffer in insertion order.
    /// Payloads have every column of ``schema`` (null for columns added after a row's segment was written).
    public func forEachRow(_ body: (CollectionRecord) throws(StrataError) -> Void) throws(StrataError) {
        for s in version.segments {
            try SegmentLiveRows(s, pending: mem.sealedDeletes, width: schema.columns.count).forEach { (_, record) throws(StrataError) in try body(record) }
        }
        try mem.forEachLiveRow { (chunk, row) throws(StrataError) in try body(chunk.record(row)) }
    }

    /// The k nearest live rows to `query` across every segment and the buffer, closest first (ties
    /// by id). Indexed segments are searched through their graph, over-fetching to make up for
    /// deleted rows (and falling back to an exact scan when too few survive); others and the buffer
    /// exactly. `options.exact` forces exact search everywhere.
    /// Throws `.dimensionMismatch`, `.nonFiniteValue` / `.invalidValue` (see `VectorLimits`), `.invalidArgument`.
    public func search(query: [Float], options: SearchOptions = SearchOptions()) throws(StrataError) -> [CollectionHit] {
        try search(query: query, filter: nil, options: options)
    }

    /// The k nearest live rows that pass `filter`, closest first. Segments with payload indexes run
    /// their planner (exact scan of the passing rows, or filtered graph search), over-fetching to make
    /// up for deleted rows and falling back to an exact scan of the passing rows; the buffer is
    /// filtered row by row. Throws `.unknownColumn` / `.typeMismatch` for a filter that does not fit
    /// the schema, and what the unfiltered search throws.
    public func search(query: [Float], filter: Filter?, options: SearchOptions = SearchOptions()) throws(StrataError) -> [CollectionHit] {
        var reads = GraphRecordReads()
        return try search(query: query, filter: filter, options: options, reads: &reads)
    }

    /// ``search(query:filter:options:)`` that also adds the graph records its segment searches
    /// read (from the node cache or the file) to `reads`.
    package func search(query: [Float], filter: Filter?, options: SearchOptions,
                        reads: inout GraphRecordReads) throws(StrataError) -> [CollectionHit] {
        if let filter { try filter.validate(against: schema) }
        guard options.k >= 1 else { throw StrataError(.invalidArgument, "k must be at least 1, got \(options.k)") }
        guard query.count == schema.dimension else {
            throw StrataError(.dimensionMismatch, "query has \(query.count) dimensions, collection has \(schema.dimension)")
        }
        try VectorLimits.checkQuery(query)
        let k = options.k
        var all: [CollectionHit] = []
        for s in version.segments {
            // A segment without some of the filter's columns (added after it was written) holds
            // nulls there: the filter is resolved against the columns it has.
            switch filter?.resolved(forSegment: s.segment.schema) {
            case nil, .all?: all += try searchSegment(s, query: query, options: options, reads: &reads)
            case .none?: continue
            case .filter(let f)?: all += try searchSegment(s, query: query, filter: f, options: options, reads: &reads)
            }
        }
        all += try searchBuffer(query: query, k: k, filter: filter)
        all.sort()
        return Array(all.prefix(k))
    }

    private func searchSegment(_ s: OpenSegment, query: [Float], options: SearchOptions,
                               reads: inout GraphRecordReads) throws(StrataError) -> [CollectionHit] {
        let live = SegmentLiveRows(s, pending: mem.sealedDeletes)
        let seg = s.segment
        let k = options.k
        guard live.bitmapLiveCount > 0 else { return [] }
        if seg.hasIndex, !options.exact {
            if !live.hasDeletes {
                let (hits, stats) = try seg.searchWithStats(query: query, options: options)
                reads.add(stats)
                return hits.map { CollectionHit(id: $0.id, distance: $0.distance) }
            }
            // Over-fetch in proportion to the deleted fraction, widen up to twice, then scan.
            // In Double: a huge k must not overflow (or trap converting) before the clamp to rowCount.
            let wanted = (Double(k) * Double(seg.rowCount) / Double(live.bitmapLiveCount)).rounded(.up) + Double(k / 2) + 2
            var fetch = wanted >= Double(seg.rowCount) ? seg.rowCount : Int(wanted)
            for _ in 0..<3 {
                guard fetch <= max(1000, seg.rowCount / 8) else { break }
                let o = SearchOptions(k: fetch, listSize: max(options.listSize, fetch), beamWidth: options.beamWidth)
                let (hits, stats) = try seg.searchWithStats(query: query, options: o)
                reads.add(stats)
                let kept = hits.filter { !live.isDeleted($0.row) }
                if kept.count >= k || fetch >= seg.rowCount {
                    return kept.prefix(k).map { CollectionHit(id: $0.id, distance: $0.distance) }
                }
                fetch = min(seg.rowCount, fetch * 4)
            }
        }
        return try live.exactNearest(query: query, k: k, among: 0..<seg.rowCount)
    }

    private func searchSegment(_ s: OpenSegment, query: [Float], filter: Filter, options: SearchOptions,
                               reads: inout GraphRecordReads) throws(StrataError) -> [CollectionHit] {
        let live = SegmentLiveRows(s, pending: mem.sealedDeletes)
        let seg = s.segment
        let k = options.k
        let hasDeletes = live.hasDeletes
        guard seg.rowCount > 0 else { return [] }
        if seg.hasIndex, !options.exact {
            var fetch = hasDeletes ? k + k / 2 + 2 : k
            for _ in 0..<3 {
                guard fetch <= max(1000, seg.rowCount / 8) else { break }
                let result = try seg.search(query: query, filter: filter,
                                            options: FilteredSearchOptions(k: fetch, listSize: max(options.listSize, fetch)))
                reads.add(recordsRead: result.stats.recordsRead, cachedRecords: result.stats.cachedRecords)
                let found = result.hits
                let kept = hasDeletes ? found.filter { !live.isDeleted($0.row) } : found
                if kept.count >= k || (found.count < fetch && !hasDeletes) {
                    return kept.prefix(k).map { CollectionHit(id: $0.id, distance: $0.distance) }
                }
                fetch *= 4
            }
        }
        // Exact over the passing rows.
        return try live.exactNearest(query: query, k: k, among: try seg.rows(matching: filter))
    }

    private func searchBuffer(query: [Float], k: Int, filter: Filter? = nil) throws(StrataError) -> [CollectionHit] {
        guard !mem.index.isEmpty else { return [] }
        var q = query
        q = try Distance(schema).prepareQuery(q)
        let dim = schema.dimension
        let metric = schema.metric
        var top = TopK(k: k)
        q.withUnsafeBufferPointer { qp in
            for (c, chunk) in mem.chunks.enumerated() {
                chunk.vectors.withUnsafeBufferPointer { vp in
                    for r in 0..<chunk.ids.count {
                        let id = chunk.ids[r]
                        guard mem.isLive(id: id, chunk: c, row: r) else { continue }
                        if let filter, !filter.matches(chunk.values[r], schema: schema) { continue }
                        let v = vp.baseAddress! + r * dim
                        let d = Distance.unsafeFloat32(metric, qp.baseAddress!, v, dim)
                        if d <= top.threshold { top.offer(distance: d, id: id, row: r) }
                    }
                }
            }
        }
        return top.sorted().map { CollectionHit(id: $0.id, distance: $0.distance) }
    }
}
