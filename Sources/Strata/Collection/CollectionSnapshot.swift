// Snapshot reads: one manifest version plus one buffer state, immutable while held; get, scan and
// (filtered) search over the sealed segments and the buffer, merged by (distance, id).
import StrataFormat
import StrataIndex
import CStrataKernels
#if canImport(Glibc)
import Glibc
#endif

/// One immutable view of a collection: a manifest version and a buffer state. Holding it keeps
/// its segment files in use (they are not removed by this process while it lives).
public struct CollectionSnapshot: @unchecked Sendable {
    package let version: Version
    package let mem: MemTable
    /// The schema.
    public let schema: SegmentSchema

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
        if let loc = mem.index[id] {
            let chunk = mem.chunks[Int(loc.chunk)]
            return CollectionRecord(id: id, vector: chunk.vector(Int(loc.row)), payload: chunk.values[Int(loc.row)])
        }
        guard !mem.sealedDeletes.contains(id), let (s, row) = version.locate(id) else { return nil }
        let seg = version.segments[s].segment
        return CollectionRecord(id: id, vector: try seg.vector(row: row), payload: try seg.payload(row: row))
    }

    /// Calls `body` for every live row: sealed segments in manifest order (rows in file order, the
    /// payload decoded one block per column per 1,024 rows), then the buffer in insertion order.
    public func forEachRow(_ body: (CollectionRecord) throws -> Void) throws {
        for s in version.segments {
            try SegmentRowReader.forEachLiveRow(s.segment, isDeleted: { row in
                s.isDeleted(row: row) || (!mem.sealedDeletes.isEmpty && mem.sealedDeletes.contains(s.segment.unsafeId(ofRow: row)))
            }, body)
        }
        for loc in mem.liveLocations {
            let chunk = mem.chunks[Int(loc.chunk)]
            try body(CollectionRecord(id: chunk.ids[Int(loc.row)], vector: chunk.vector(Int(loc.row)), payload: chunk.values[Int(loc.row)]))
        }
    }

    /// The k nearest live rows to `query` across every segment and the buffer, closest first (ties
    /// by id). Indexed segments are searched through their graph, over-fetching to make up for
    /// deleted rows (and falling back to an exact scan when too few survive); others and the buffer
    /// exactly. `options.exact` forces exact search everywhere.
    /// Throws `.dimensionMismatch`, `.nonFiniteValue` / `.invalidValue` (see ``VectorLimits``), `.invalidArgument`.
    public func search(query: [Float], options: SearchOptions = SearchOptions()) throws(StrataError) -> [CollectionHit] {
        try search(query: query, filter: nil, options: options)
    }

    /// The k nearest live rows that pass `filter`, closest first. Segments with payload indexes run
    /// their planner (exact scan of the passing rows, or filtered graph search), over-fetching to make
    /// up for deleted rows and falling back to an exact scan of the passing rows; the buffer is
    /// filtered row by row. Throws `.unknownColumn` / `.typeMismatch` for a filter that does not fit
    /// the schema, and what the unfiltered search throws.
    public func search(query: [Float], filter: Filter?, options: SearchOptions = SearchOptions()) throws(StrataError) -> [CollectionHit] {
        if let filter { try filter.validate(against: schema) }
        guard options.k >= 1 else { throw StrataError(.invalidArgument, "k must be at least 1, got \(options.k)") }
        guard query.count == schema.dimension else {
            throw StrataError(.dimensionMismatch, "query has \(query.count) dimensions, collection has \(schema.dimension)")
        }
        try VectorLimits.checkQuery(query)
        let k = options.k
        var all: [CollectionHit] = []
        for s in version.segments {
            if let filter {
                all += try searchSegment(s, query: query, filter: filter, options: options)
            } else {
                all += try searchSegment(s, query: query, options: options)
            }
        }
        all += try searchBuffer(query: query, k: k, filter: filter)
        all.sort()
        return Array(all.prefix(k))
    }

    private func searchSegment(_ s: OpenSegment, query: [Float], options: SearchOptions) throws(StrataError) -> [CollectionHit] {
        let seg = s.segment
        let k = options.k
        let pending = mem.sealedDeletes
        let bitmapDeleted = s.bitmap?.deletedCount ?? 0
        let live = seg.rowCount - bitmapDeleted
        guard live > 0 else { return [] }
        let hasDeletes = bitmapDeleted > 0 || !pending.isEmpty
        @inline(__always) func isDeleted(_ row: Int) -> Bool {
            s.isDeleted(row: row) || (!pending.isEmpty && pending.contains(seg.unsafeId(ofRow: row)))
        }
        if seg.hasIndex, !options.exact {
            if !hasDeletes {
                return try seg.search(query: query, options: options).map { CollectionHit(id: $0.id, distance: $0.distance) }
            }
            // Over-fetch in proportion to the deleted fraction, widen up to twice, then scan.
            // In Double: a huge k must not overflow (or trap converting) before the clamp to rowCount.
            let wanted = (Double(k) * Double(seg.rowCount) / Double(live)).rounded(.up) + Double(k / 2) + 2
            var fetch = wanted >= Double(seg.rowCount) ? seg.rowCount : Int(wanted)
            for _ in 0..<3 {
                guard fetch <= max(1000, seg.rowCount / 8) else { break }
                let o = SearchOptions(k: fetch, listSize: max(options.listSize, fetch), beamWidth: options.beamWidth)
                let kept = try seg.search(query: query, options: o).filter { !isDeleted($0.row) }
                if kept.count >= k || fetch >= seg.rowCount {
                    return kept.prefix(k).map { CollectionHit(id: $0.id, distance: $0.distance) }
                }
                fetch = min(seg.rowCount, fetch * 4)
            }
        }
        try seg.checkBeforeRead(Segment.exactScanSections)
        let q = try seg.prepareQuery(query)
        var top = TopK(k: k)
        q.withUnsafeBufferPointer { qp in
            let qb = qp.baseAddress!
            for row in 0..<seg.rowCount {
                if hasDeletes, isDeleted(row) { continue }
                let d = seg.unsafeDistance(qb, row: row)
                if d <= top.threshold { top.offer(distance: d, id: seg.unsafeId(ofRow: row), row: row) }
            }
        }
        return top.sorted().map { CollectionHit(id: $0.id, distance: $0.distance) }
    }

    private func searchSegment(_ s: OpenSegment, query: [Float], filter: Filter, options: SearchOptions) throws(StrataError) -> [CollectionHit] {
        let seg = s.segment
        let k = options.k
        let pending = mem.sealedDeletes
        let hasDeletes = (s.bitmap?.deletedCount ?? 0) > 0 || !pending.isEmpty
        @inline(__always) func isDeleted(_ row: Int) -> Bool {
            s.isDeleted(row: row) || (!pending.isEmpty && pending.contains(seg.unsafeId(ofRow: row)))
        }
        guard seg.rowCount > 0 else { return [] }
        if seg.hasIndex, !options.exact {
            var fetch = hasDeletes ? k + k / 2 + 2 : k
            for _ in 0..<3 {
                guard fetch <= max(1000, seg.rowCount / 8) else { break }
                let found = try seg.search(query: query, filter: filter,
                                           options: FilteredSearchOptions(k: fetch, listSize: max(options.listSize, fetch))).hits
                let kept = hasDeletes ? found.filter { !isDeleted($0.row) } : found
                if kept.count >= k || (found.count < fetch && !hasDeletes) {
                    return kept.prefix(k).map { CollectionHit(id: $0.id, distance: $0.distance) }
                }
                fetch *= 4
            }
        }
        // Exact over the passing rows.
        let passing = try seg.rows(matching: filter)
        try seg.checkBeforeRead(Segment.exactScanSections)
        let q = try seg.prepareQuery(query)
        var top = TopK(k: k)
        q.withUnsafeBufferPointer { qp in
            let qb = qp.baseAddress!
            for row in passing {
                if hasDeletes, isDeleted(row) { continue }
                let d = seg.unsafeDistance(qb, row: row)
                if d <= top.threshold { top.offer(distance: d, id: seg.unsafeId(ofRow: row), row: row) }
            }
        }
        return top.sorted().map { CollectionHit(id: $0.id, distance: $0.distance) }
    }

    private func searchBuffer(query: [Float], k: Int, filter: Filter? = nil) throws(StrataError) -> [CollectionHit] {
        guard !mem.index.isEmpty else { return [] }
        var q = query
        if schema.metric == .cosine {
            q = try VectorLimits.cosineUnitQuery(q)
        }
        let dim = schema.dimension
        let metric = schema.metric
        var top = TopK(k: k)
        q.withUnsafeBufferPointer { qp in
            for (c, chunk) in mem.chunks.enumerated() {
                chunk.vectors.withUnsafeBufferPointer { vp in
                    for r in 0..<chunk.ids.count {
                        let id = chunk.ids[r]
                        guard let loc = mem.index[id], loc.chunk == Int32(c), loc.row == Int32(r) else { continue }
                        if let filter, !filter.matches(chunk.values[r], schema: schema) { continue }
                        let v = vp.baseAddress! + r * dim
                        let d: Float
                        switch metric {
                        case .l2: d = strata_l2sq_f32(qp.baseAddress, v, dim)
                        case .innerProduct: d = -strata_dot_f32(qp.baseAddress, v, dim)
                        case .cosine: d = 1 - strata_dot_f32(qp.baseAddress, v, dim)
                        }
                        if d <= top.threshold { top.offer(distance: d, id: id, row: r) }
                    }
                }
            }
        }
        return top.sorted().map { CollectionHit(id: $0.id, distance: $0.distance) }
    }
}

/// Reads the live rows of a segment in chunks: payload decoded once per block, not once per row.
enum SegmentRowReader {
    static let chunkRows = 1024

    static func forEachLiveRow(_ seg: Segment, isDeleted: (Int) -> Bool, _ body: (CollectionRecord) throws -> Void) throws {
        var start = 0
        let columns = seg.schema.columns
        try seg.checkBeforeRead(Segment.idSections)
        while start < seg.rowCount {
            let end = min(seg.rowCount, start + chunkRows)
            if (start..<end).allSatisfy(isDeleted) { start = end; continue }
            var values = [[PayloadValue]](repeating: [], count: end - start)
            for c in columns {
                try seg.scan(column: c.name, rows: start..<end) { row, v in values[row - start].append(v) }
            }
            for row in start..<end where !isDeleted(row) {
                try body(CollectionRecord(id: seg.unsafeId(ofRow: row), vector: try seg.vector(row: row), payload: values[row - start]))
            }
            start = end
        }
    }
}
