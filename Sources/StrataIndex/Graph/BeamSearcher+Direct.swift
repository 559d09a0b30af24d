// The search over direct reads (DirectGraphReads.swift), pipelined as PipeANN does it: instead of
// reading a beam of W records and waiting for all of them before the next hop, up to W reads are kept
// in flight at all times. Whenever one finishes, its node is expanded at once (exact distance from
// the record, PQ distances of its unvisited neighbours into the candidate list), and the best
// candidates not yet read take the free read slots. The disk never idles while distances are
// computed, a slow read does not hold up the others, and a read is issued for the candidate that is
// best *now*, with what every finished read taught the list.
//
// The list starts as the mapped search's does (the navigation graph's rows nearest the query, or the
// medoid). Nodes in the NodeCache are expanded without a read as soon as they are the best unread
// candidate. The search ends when every candidate of the list has been expanded and no read is in
// flight; every expanded node is reranked exactly, as in the synchronous search.
//
// In a block-aware layout (graph layout version 2) a sector read also brings the records of the
// nodes placed beside the one asked for, chosen at build time among its nearest neighbours
// (BlockPlacement.swift). Each of them that makes the candidate list, or waits in it unexpanded,
// is expanded from the buffer at once: Starling's block search, one read for several expansions.
import StrataFormat
import CStrataKernels

extension BeamSearcher {
    /// The read queue for a search keeping `width` reads in flight, made on first use (and made
    /// again for a wider beam); nil when the segment is not read directly or the ring broke.
    func directReads(width: Int) -> DirectReadQueue? {
        guard let file = directFile else { return nil }
        if let q = directQueue, q.slots >= width { return q.broken ? nil : q }
        let q = DirectReadQueue(file: file, geometry: graph.geometry, slots: max(width, directQueue?.slots ?? 0))
        directQueue = q
        return q
    }

    /// The pipelined search over direct reads (unfiltered); leaves the top results sorted in
    /// `resultIds/resultDist[0..<returned]`. `p.beamWidth` is the number of reads kept in flight.
    func traverseDirect(_ q: UnsafePointer<Float>, _ p: BeamSearchParameters, _ io: DirectReadQueue) -> Int {
        lastStats = BeamSearchStats()
        if n == 0 { return 0 }
        let l = p.listSize, w = min(p.beamWidth, io.slots), k = p.k
        ensureCapacity(list: l, results: max(resultCapacity, 4 * l + 64))
        quantizer.computeDistanceTable(query: q, metric: ProductQuantizer.rankingMetric(for: metric), into: table)
        var seen = visited
        seen.clear()
        defer { visited = seen }
        let geo = graph.geometry
        let base = graph.bytes.baseAddress!
        let vb = geo.vectorBytes
        let rmax = geo.maxDegree
        let ids = listIds, flags = listFlags
        let expanded = BeamSearcher.expandedFlag
        var stats = BeamSearchStats()
        var results = 0
        var size = seedList(l, &seen)
        var cursor = 0

        let blocks = graph.isBlockLayout, perSector = geo.nodesPerSector, recordSize = geo.recordSize

        // Expands node v from its record: exact distance, then its unvisited neighbours into the list.
        func expand(_ v: Int, _ rec: UnsafeRawPointer) {
            if results + 1 > resultCapacity { ensureCapacity(list: l, results: resultCapacity * 2 + 1) }
            resultIds[results] = UInt32(v)
            resultDist[results] = exactDistance(q, rec)
            results += 1
            let d = min(Int(UInt32(littleEndian: rec.loadUnaligned(fromByteOffset: vb, as: UInt32.self))), rmax)
            let nb = rec + vb + 4
            seen.reserve(d)
            var freshCount = 0
            for j in 0..<d {
                let u = UInt32(littleEndian: nb.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self))
                if Int(u) >= n || !seen.insert(u) { continue }
                fresh[freshCount] = u
                freshCount += 1
                let cp = codes + Int(u) * m
                strata_prefetch(cp)
                strata_prefetch(cp + m - 1)
            }
            ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: m, ids: fresh, count: freshCount, into: freshDist)
            stats.pqDistances += freshCount
            for j in 0..<freshCount {
                let pos = insert(fresh[j], freshDist[j], listSize: l, &size)
                if pos < cursor { cursor = pos }
            }
        }

        // Node u's record came with a sector read for another node: expand it now when it makes
        // the list (met for the first time) or waits in it unexpanded (met before). Met for the
        // first time and not making the list, it is never expanded (the visited table keeps it
        // out), but its exact distance is at hand: it joins the results, where the PQ error that
        // kept it out of the list cannot hide a true neighbour.
        func absorb(_ u: Int, _ rec: UnsafeRawPointer) {
            var id = UInt32(u)
            if seen.insert(id) {
                ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: m, ids: &id, count: 1, into: freshDist)
                stats.pqDistances += 1
                let pos = insert(id, freshDist[0], listSize: l, &size)
                if pos == .max {
                    if !reranksSectorNeighbours { return }
                    if results + 1 > resultCapacity { ensureCapacity(list: l, results: resultCapacity * 2 + 1) }
                    resultIds[results] = id
                    resultDist[results] = exactDistance(q, rec)
                    results += 1
                    stats.blockReranked += 1
                    return
                }
                flags[pos] |= expanded
                if pos < cursor { cursor = pos }
            } else {
                var j = 0
                while j < size && ids[j] != id { j += 1 }
                if j == size || flags[j] & expanded != 0 { return }
                flags[j] |= expanded
            }
            stats.blockExpansions += 1
            expand(u, rec)
        }

        while true {
            // Fill the free read slots with the best candidates not yet read; cached ones are
            // expanded on the spot (which may put better candidates ahead of the cursor).
            while io.hasFreeSlot && io.slotsInUse < w {
                while cursor < size && flags[cursor] & expanded != 0 { cursor += 1 }
                if cursor >= size { break }
                flags[cursor] |= expanded
                let v = Int(ids[cursor])
                if let c = cache, let rec = c.record(v) {
                    stats.cachedRecords += 1
                    stats.recordsRead += 1
                    expand(v, rec)
                    continue
                }
                io.queue(v, recordSlot: graph.slot(of: v))
                stats.recordsRead += 1
            }
            io.submit()
            guard let slot = io.next() else { break }
            stats.hops += 1
            let v = io.node(in: slot)
            if v >= 0 {
                let rec = io.record(in: slot)
                if !blocks {
                    expand(v, rec)
                } else if graph.storedNode(of: rec) == v {
                    // v first (it was the best unread candidate), then the others of its sector.
                    expand(v, rec)
                    // A record counts when the placement puts its node in that very slot (the empty
                    // slots at the end of the last sector are zero, and name node 0).
                    let sector = io.sector(in: slot)
                    let first = graph.slot(of: v) / perSector * perSector
                    for k in 0..<perSector {
                        let other = sector + k * recordSize
                        guard let u = graph.storedNode(of: other), u != v, u < n, graph.slot(of: u) == first + k else { continue }
                        absorb(u, other)
                    }
                }
                // (A block-layout record naming another node: a corrupt placement; v is skipped.)
            } else {
                // The read failed: the mapping still has the record.
                let u = -1 - v
                expand(u, base + graph.recordOffset(u))
            }
            io.release(slot)
        }
        stats.exactDistances = results - stats.blockReranked
        lastStats = stats
        return selectTop(results, k)
    }
}
