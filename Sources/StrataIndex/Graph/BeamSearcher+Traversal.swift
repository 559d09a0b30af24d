// The beam search itself, generic over the row predicate and specialised for each form
// (RowPredicate.swift), so that the unfiltered search carries no filter code at all.
//
// Per query: build the M x 256 ADC table; start the candidate list (ordered by PQ distance) with the
// medoid, or, unfiltered with a NavigationGraph, with the sampled rows its walk finds nearest; repeatedly take the W best unexpanded candidates, read their records (vector and neighbour
// list, co-located in one sector), insert their unvisited neighbours with PQ distances, and compute
// the exact distance of each expanded node from the vector in its record. The answer is the k
// expanded nodes with the smallest exact distances: every record read is reranked for free.
//
// With a filter, every node met is tested. Passing nodes enter the list and, once expanded, the
// results. Non-passing nodes keep the traversal connected: they enter the list and are expanded while
// a budget of non-passing expansions lasts; once it is spent they are not even scored. The list size
// L counts passing candidates only (non-passing ones ride along up to the budget), so a filter
// admitting half the rows costs about what an unfiltered search with the same L costs.
//
// Latency hiding: after inserting the neighbours of the current beam, the next beam is known, so its
// records are prefetched before the current beam's exact distances are computed; neighbour codes are
// prefetched inside the ADC kernel.
import StrataFormat
import CStrataKernels
#if canImport(Glibc)
import Glibc
#endif

extension BeamSearcher {
    /// Candidate flag: the node was expanded (or skipped once the non-passing budget was spent).
    static let expandedFlag: UInt8 = 1
    /// Candidate flag: the node passes the row predicate.
    static let passesFlag: UInt8 = 2

    /// Runs the search; leaves the top results sorted in `resultIds/resultDist[0..<returned]`.
    func traverse<P: RowAdmission>(_ q: UnsafePointer<Float>, _ p: BeamSearchParameters, _ predicate: P,
                                   nonPassingBudget: Int) -> Int {
        lastStats = BeamSearchStats()
        if n == 0 { return 0 }
        let l = p.listSize, w = min(p.beamWidth, 64), k = p.k
        var budget = P.admitsEveryRow ? 0 : nonPassingBudget
        // The list holds up to L passing entries plus at most `budget` non-passing ones.
        let limit = P.admitsEveryRow ? l : l + budget
        ensureCapacity(list: limit, results: max(resultCapacity, 4 * l + 64))
        quantizer.computeDistanceTable(query: q, metric: ProductQuantizer.rankingMetric(for: metric), into: table)
        // Local copies: the hot loop works on plain values, written back at the end (they may grow).
        var seen = visited
        seen.clear()
        var issued = readAheadIssued
        issued.clear()
        defer { visited = seen; readAheadIssued = issued }
        let geo = graph.geometry
        let base = graph.bytes.baseAddress!
        let readAhead = p.readAhead
        let depth = readAhead ? w * BeamSearcher.readAheadBeams : 0
        let vb = geo.vectorBytes
        let rmax = geo.maxDegree
        let ids = listIds, dists = listDist, flags = listFlags
        let expanded = BeamSearcher.expandedFlag, passes = BeamSearcher.passesFlag
        var stats = BeamSearchStats()

        // Unfiltered: seed with the navigation graph's rows nearest the query (or the medoid).
        // Filtered: seed with the medoid; it is expanded whether or not it passes.
        var size: Int
        var passing: Int
        if P.admitsEveryRow {
            size = seedList(l, &seen)
            passing = size
        } else {
            let med = graph.medoid
            var start = UInt32(med)
            ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: m, ids: &start, count: 1, into: freshDist)
            ids[0] = start; dists[0] = freshDist[0]; flags[0] = passes
            _ = seen.insert(UInt32(med))
            size = 1
            passing = 1
            stats.rowsTested += 1
            if !predicate.admits(med) { flags[0] = 0; passing = 0; budget += 1 }
        }
        var cursor = 0
        var results = 0
        let firstRecord = record(Int(ids[0]), base, geo)
        if readAhead && cache == nil { NodeCache.willNeed(firstRecord, bytes: geo.recordSize) }
        strata_prefetch_range(firstRecord, geo.recordSize)

        while cursor < size {
            // Take the W best unexpanded candidates (non-passing ones while the budget lasts).
            var beamCount = 0
            var i = cursor
            while i < size && beamCount < w {
                let f = flags[i]
                if f & expanded == 0 {
                    flags[i] = f | expanded
                    if P.admitsEveryRow || f & passes != 0 {
                        beam[beamCount] = Int(ids[i])
                        beamPasses[beamCount] = true
                        beamCount += 1
                    } else if budget > 0 {
                        budget -= 1
                        stats.nonPassingExpanded += 1
                        beam[beamCount] = Int(ids[i])
                        beamPasses[beamCount] = false
                        beamCount += 1
                    }
                }
                i += 1
            }
            if !P.admitsEveryRow && beamCount == 0 {
                // Only non-passing candidates were left, and the budget is spent.
                while cursor < size && flags[cursor] & expanded != 0 { cursor += 1 }
                continue
            }
            stats.hops += 1
            // Unvisited neighbours of the beam.
            seen.reserve(beamCount * rmax)
            var freshCount = 0
            for b in 0..<beamCount {
                let rec = record(beam[b], base, geo)
                let d = min(Int(UInt32(littleEndian: rec.loadUnaligned(fromByteOffset: vb, as: UInt32.self))), rmax)
                let nb = rec + vb + 4
                for j in 0..<d {
                    let v = UInt32(littleEndian: nb.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self))
                    if Int(v) >= n || !seen.insert(v) { continue }
                    if !P.admitsEveryRow {
                        let ok = predicate.admits(Int(v))
                        stats.rowsTested += 1
                        if !ok && budget == 0 { continue }    // the budget is spent: not worth a PQ distance
                        freshFlags[freshCount] = ok ? passes : 0
                    }
                    fresh[freshCount] = v
                    freshCount += 1
                    // The code of a fresh neighbour is a cache miss: start it now (M <= 128 spans <= 3 lines).
                    let cp = codes + Int(v) * m
                    strata_prefetch(cp)
                    strata_prefetch(cp + m - 1)
                }
            }
            ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: m, ids: fresh, count: freshCount, into: freshDist)
            stats.pqDistances += freshCount
            var lowest = size
            for j in 0..<freshCount {
                let pos = P.admitsEveryRow
                    ? insert(fresh[j], freshDist[j], listSize: l, &size)
                    : insert(fresh[j], freshDist[j], freshFlags[j], listSize: l, limit: limit, &size, &passing)
                if pos < lowest { lowest = pos }
            }
            // The first unexpanded candidate: all before the old cursor and before `lowest` are expanded.
            if lowest < cursor { cursor = lowest }
            while cursor < size && flags[cursor] & expanded != 0 { cursor += 1 }
            // Prefetch the next beam's records while computing this beam's exact distances.
            // With read-ahead, first start the disk reads of the uncached ones, all of them before
            // any is touched, so that their faults overlap.
            // Beyond the next beam, the following candidates (up to `depth` in all) are likely expanded
            // a hop later: their reads start now too, so that the disk works one hop ahead.
            var peek = cursor, ahead = 0
            if readAhead { issued.reserve(max(w, depth)) }
            while peek < size && ahead < max(w, depth) {
                if flags[peek] & expanded == 0 {
                    let v = Int(ids[peek])
                    if readAhead, cache?.record(v) == nil, issued.insert(UInt32(v)) {
                        NodeCache.willNeed(base + graph.recordOffset(v), bytes: geo.recordSize)
                    }
                    if ahead < w { strata_prefetch_range(record(v, base, geo), geo.recordSize) }
                    ahead += 1
                }
                peek += 1
            }
            if results + beamCount > resultCapacity { ensureCapacity(list: limit, results: resultCapacity * 2 + beamCount) }
            for b in 0..<beamCount {
                if !P.admitsEveryRow && !beamPasses[b] { continue }
                let rec = record(beam[b], base, geo)
                resultIds[results] = UInt32(beam[b])
                resultDist[results] = exactDistance(q, rec)
                results += 1
                if cache?.record(beam[b]) != nil { stats.cachedRecords += 1 }
            }
            stats.recordsRead += beamCount
        }
        stats.exactDistances = results
        lastStats = stats
        return selectTop(results, k)
    }

    /// Inserts (v, d) into the full-or-not list of at most `l` entries, keeping it sorted (ties after
    /// equal distances); the last entry falls off a full list. Returns the position taken, or Int.max
    /// when `d` is no better than the last entry of a full list.
    @inline(__always)
    func insert(_ v: UInt32, _ d: Float, listSize l: Int, _ size: inout Int) -> Int {
        let ids = listIds, dists = listDist, flags = listFlags
        if size == l && d >= dists[l - 1] { return .max }
        var lo = 0, hi = size
        while lo < hi {
            let mid = (lo + hi) >> 1
            if dists[mid] <= d { lo = mid + 1 } else { hi = mid }
        }
        let pos = lo
        let moved = (size == l ? l - 1 : size) - pos
        if moved > 0 {
            memmove(ids + pos + 1, ids + pos, moved * 4)
            memmove(dists + pos + 1, dists + pos, moved * 4)
            memmove(flags + pos + 1, flags + pos, moved)
        }
        ids[pos] = v; dists[pos] = d; flags[pos] = BeamSearcher.passesFlag
        if size < l { size += 1 }
        return pos
    }

    /// Inserts (v, d) with `flag` (``passesFlag`` or 0) keeping the list sorted: a passing entry
    /// beyond `l` passing ones, or any entry beyond `limit` entries, is dropped, with whatever follows
    /// the worst passing entry. Returns the position it took, or Int.max when it was dropped.
    @inline(__always)
    func insert(_ v: UInt32, _ d: Float, _ flag: UInt8, listSize l: Int, limit: Int,
                _ size: inout Int, _ passing: inout Int) -> Int {
        let ids = listIds, dists = listDist, flags = listFlags
        let passes = BeamSearcher.passesFlag
        if passing >= l {
            // Full: the worst passing entry bounds what is worth keeping.
            var worst = size - 1
            while worst >= 0 && flags[worst] & passes == 0 { worst -= 1 }
            if worst >= 0 && d >= dists[worst] { return .max }
        }
        if size == limit && d >= dists[size - 1] { return .max }
        var lo = 0, hi = size
        while lo < hi {
            let mid = (lo + hi) >> 1
            if dists[mid] <= d { lo = mid + 1 } else { hi = mid }
        }
        let moved = size - lo
        if moved > 0 {
            memmove(ids + lo + 1, ids + lo, moved * 4)
            memmove(dists + lo + 1, dists + lo, moved * 4)
            memmove(flags + lo + 1, flags + lo, moved)
        }
        ids[lo] = v; dists[lo] = d; flags[lo] = flag
        size += 1
        if flag != 0 { passing += 1 }
        if size > limit {                              // drop the last entry
            size -= 1
            if flags[size] & passes != 0 { passing -= 1 }
        }
        if passing > l {                               // drop the worst passing entry (and anything after it)
            var worst = size - 1
            while flags[worst] & passes == 0 { worst -= 1 }
            size = worst
            passing -= 1
        }
        return lo < size ? lo : .max
    }
}
