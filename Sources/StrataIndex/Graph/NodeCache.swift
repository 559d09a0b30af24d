// A cache of graph records copied into anonymous memory (DiskANN's "cached nodes"): BFS levels
// from the medoid by default, or the nodes sample searches expand most (a ranking given to `init`).
//
// Every search starts at the medoid and its first hops walk the same few thousand nodes, so keeping
// their records (vector + neighbour list) in RAM removes the first reads of every query from a cold
// disk. Without a ranking, nodes are taken in breadth-first order from the medoid (neighbours in
// stored order, ids >= N and degrees > R clamped exactly as the searcher does) until the byte budget
// is spent; of the level that does not fit whole, the nodes most referenced from the previous level
// are taken (ties in discovery order), so the choice is deterministic.
//
// Memory: a slot map from node id to record slot (open addressing, 8 bytes per entry, a power of
// two at least twice the cached count, so 16-32 B per cached node: it grows with the cache, not with
// the graph) plus `cached * recordSize` bytes of records, the sum never above the budget (the record
// block is rounded up to whole 4 KiB pages inside the budget).
import StrataFormat
import CStrataKernels
#if canImport(Glibc)
import Glibc
#endif

/// Graph records of the nodes nearest the entry point, held in anonymous memory for
/// ``BeamSearcher``. Immutable after `init`, so one cache is shared by all searchers of a segment.
// @unchecked Sendable: the slot map and records are written only in `init` and freed in `deinit`;
// searches only read them, from any number of threads.
package final class NodeCache: @unchecked Sendable {
    /// Nodes cached.
    package let cachedCount: Int
    /// Bytes of anonymous memory held (slot map + records), at most the budget given to `init`.
    package let residentBytes: Int
    /// Bytes per record (the graph's record size).
    package let recordSize: Int
    /// BFS levels fully cached (the medoid is level 0); the next level may be partly cached. 0 for
    /// a ranked cache.
    package let completeLevels: Int
    /// Whether the nodes came from a ranking (sample searches) rather than BFS order.
    package let ranked: Bool
    /// Open-addressing map: entry = (node + 1) << 32 | slot, 0 = empty; `slotMask + 1` entries.
    let slots: UnsafeMutablePointer<UInt64>
    let slotMask: Int
    let storage: UnsafeMutableRawPointer
    let storageBytes: Int
    let nodeCount: Int

    /// Slot value of a node that is not cached.
    static let absent = UInt32.max

    @inline(__always) static func home(_ node: Int, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(truncatingIfNeeded: node) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// The slot of `node`, or ``absent``.
    @inline(__always) func slot(of node: Int) -> UInt32 { NodeCache.lookup(slots, slotMask, node) }

    @inline(__always) static func lookup(_ slots: UnsafeMutablePointer<UInt64>, _ mask: Int, _ node: Int) -> UInt32 {
        let key = UInt64(truncatingIfNeeded: node + 1) << 32
        var j = home(node, mask)
        while true {
            let e = slots[j]
            if e == 0 { return absent }
            if e & 0xFFFF_FFFF_0000_0000 == key { return UInt32(truncatingIfNeeded: e) }
            j = (j + 1) & mask
        }
    }

    /// Records `node` at `slot` (node not present; the map is never more than half full).
    static func insert(_ slots: UnsafeMutablePointer<UInt64>, _ mask: Int, _ node: Int, _ slot: Int) {
        var j = home(node, mask)
        while slots[j] != 0 { j = (j + 1) & mask }
        slots[j] = UInt64(truncatingIfNeeded: node + 1) << 32 | UInt64(slot)
    }

    /// Copies the records of up to `budgetBytes` worth of nodes out of `graph`: those of `ranking`
    /// in its order (the medoid first whatever the ranking says; ids out of range and repeats are
    /// skipped) when given, else the nodes nearest the medoid, breadth first. Reads from a cold file
    /// are issued ahead (`madvise(MADV_WILLNEED)`), a BFS level or a ranked chunk at a time, so that
    /// opening does not wait for each sector in turn.
    /// - Parameters:
    ///   - graph: a validated graph view (usually a mapping of the segment).
    ///   - budgetBytes: the most anonymous memory to use; 0 (or less than the slot map) caches nothing.
    ///   - ranking: nodes most worth caching first
    ///     (``BeamSearcherPool/expansionRanking(count:query:parameters:threads:)`` ranks them by how
    ///     many sample searches expand them; room the ranking leaves is filled in BFS order), or nil
    ///     for BFS order.
    /// - Complexity: O(cached * R) time.
    package init(graph: DiskGraphView, budgetBytes: Int, ranking: [UInt32]? = nil) {
        let n = graph.count
        let geo = graph.geometry
        recordSize = geo.recordSize
        nodeCount = n
        let page = 4096
        let (capacity, entries) = NodeCache.capacity(count: n, recordSize: geo.recordSize, budgetBytes: budgetBytes)
        if capacity == 0 {
            slots = .allocate(capacity: 1)
            slots.initialize(to: 0)
            slotMask = 0
            storage = .allocate(byteCount: 64, alignment: 64)
            storageBytes = 0
            cachedCount = 0
            residentBytes = 0
            completeLevels = 0
            ranked = false
            return
        }
        slots = .allocate(capacity: entries)
        slots.initialize(repeating: 0, count: entries)
        slotMask = entries - 1
        storageBytes = (capacity * geo.recordSize + page - 1) / page * page
        storage = .allocate(byteCount: storageBytes, alignment: page)
        residentBytes = entries * 8 + storageBytes

        ranked = ranking != nil
        if let ranking {
            cachedCount = NodeCache.copyRanked(ranking, from: graph, capacity: capacity, slots, slotMask, storage)
            completeLevels = 0
        } else {
            (cachedCount, completeLevels) = NodeCache.copyBreadthFirst(from: graph, capacity: capacity, slots, slotMask, storage)
        }
        NodeCache.unmapCopied(graph)
    }

    /// The records a budget of `budgetBytes` holds for a graph of `count` records of `recordSize`
    /// bytes, and the entries of its slot map: the map is sized for the most records the budget
    /// could hold, then whole record pages fill what the map leaves.
    package static func capacity(count n: Int, recordSize: Int, budgetBytes: Int) -> (records: Int, mapEntries: Int) {
        let page = 4096
        var capacity = 0
        var entries = 1
        if n > 0 && budgetBytes > 0 && n < Int(UInt32.max) {
            let most = min(n, budgetBytes / (recordSize + 16))
            while entries < 2 * most { entries <<= 1 }
            let mapBytes = entries * 8
            if budgetBytes > mapBytes {
                let room = (budgetBytes - mapBytes) / page * page
                capacity = min(n, room / recordSize, entries / 2)
            }
        }
        return (capacity, entries)
    }

    /// Copies the records of `ranking` (medoid first) into slots 0..<cached, then, while room is
    /// left (a ranking shorter than the budget), nodes in BFS order from the medoid; returns the count.
    private static func copyRanked(_ ranking: [UInt32], from graph: DiskGraphView, capacity: Int,
                                   _ map: UnsafeMutablePointer<UInt64>, _ mask: Int, _ storage: UnsafeMutableRawPointer) -> Int {
        let n = graph.count, geo = graph.geometry
        let base = graph.bytes.baseAddress!
        var chosen: [Int] = [graph.medoid]
        chosen.reserveCapacity(capacity)
        NodeCache.insert(map, mask, graph.medoid, 0)
        for r in ranking where chosen.count < capacity {
            let v = Int(r)
            if v >= n || NodeCache.lookup(map, mask, v) != NodeCache.absent { continue }
            NodeCache.insert(map, mask, v, chosen.count)
            chosen.append(v)
        }
        // Advise a chunk ahead of the copies, so that a cold file is read with many requests in flight.
        let chunk = 256
        for start in stride(from: 0, to: chosen.count, by: chunk) {
            let end = min(chosen.count, start + chunk)
            for v in chosen[start..<end] { NodeCache.willNeed(base + graph.recordOffset(v), bytes: geo.recordSize) }
            for slot in start..<end {
                (storage + slot * geo.recordSize).copyMemory(from: base + graph.recordOffset(chosen[slot]), byteCount: geo.recordSize)
            }
        }
        var cached = chosen.count
        if cached == capacity { return cached }
        // BFS from the medoid through cached and uncached nodes alike, taking the uncached ones.
        var seen: Set<Int> = [graph.medoid]
        var queue = [graph.medoid], head = 0
        while head < queue.count && cached < capacity {
            let v = queue[head]
            head += 1
            forEachNeighbor(of: base + graph.recordOffset(v), geo, n) { u in
                guard cached < capacity, seen.insert(u).inserted else { return }
                queue.append(u)
                if NodeCache.lookup(map, mask, u) != NodeCache.absent { return }
                NodeCache.insert(map, mask, u, cached)
                (storage + cached * geo.recordSize).copyMemory(from: base + graph.recordOffset(u), byteCount: geo.recordSize)
                cached += 1
            }
        }
        return cached
    }

    /// Calls `body` with each neighbour id of a record that is a node (< `n`), in stored order, the
    /// degree clamped to R exactly as the searcher does.
    @inline(__always)
    private static func forEachNeighbor(of record: UnsafeRawPointer, _ geo: DiskGraphLayout.Geometry, _ n: Int, _ body: (Int) -> Void) {
        let vb = geo.vectorBytes
        let d = min(Int(UInt32(littleEndian: record.loadUnaligned(fromByteOffset: vb, as: UInt32.self))), geo.maxDegree)
        for j in 0..<d {
            let u = Int(UInt32(littleEndian: record.loadUnaligned(fromByteOffset: vb + 4 + 4 * j, as: UInt32.self)))
            if u < n { body(u) }
        }
    }

    /// Copies BFS levels from the medoid into the slots; returns the count and the complete levels.
    private static func copyBreadthFirst(from graph: DiskGraphView, capacity: Int, _ map: UnsafeMutablePointer<UInt64>,
                                         _ mask: Int, _ storage: UnsafeMutableRawPointer) -> (cached: Int, levels: Int) {
        let n = graph.count, geo = graph.geometry
        let base = graph.bytes.baseAddress!
        // BFS, one level at a time: advise the whole level, copy it, and collect the next level with
        // the number of references each new node gets from the level just copied. When the next level
        // does not fit, the most referenced nodes are taken (ties in discovery order): a node many
        // cached nodes point to is one that many searches expand.
        var refs: [Int: UInt32] = [:]
        var level: [Int] = [graph.medoid]
        NodeCache.insert(map, mask, graph.medoid, 0)
        var cached = 1
        var levels = 1
        while !level.isEmpty {
            for v in level { NodeCache.willNeed(base + graph.recordOffset(v), bytes: geo.recordSize) }
            var next: [Int] = []
            for v in level {
                let dst = storage + Int(NodeCache.lookup(map, mask, v)) * geo.recordSize
                dst.copyMemory(from: base + graph.recordOffset(v), byteCount: geo.recordSize)
                if cached == capacity { continue }
                forEachNeighbor(of: dst, geo, n) { u in
                    if NodeCache.lookup(map, mask, u) != NodeCache.absent { return }
                    let r = refs[u, default: 0]
                    if r == 0 { next.append(u) }
                    refs[u] = r &+ 1
                }
            }
            let room = capacity - cached
            if next.count > room {
                // Stable: equal counts keep discovery order.
                let ranked = next.enumerated().sorted { a, b in
                    let ra = refs[a.element, default: 0], rb = refs[b.element, default: 0]
                    return ra != rb ? ra > rb : a.offset < b.offset
                }
                next = ranked.prefix(room).map(\.element)
            } else if !next.isEmpty {
                levels += 1
            }
            refs.removeAll(keepingCapacity: true)
            for u in next {
                NodeCache.insert(map, mask, u, cached)
                cached += 1
            }
            level = next
        }
        return (cached, levels)
    }

    /// Drops the page-table entries the copies made (see the comment inside).
    private static func unmapCopied(_ graph: DiskGraphView) {
        // The copies touched the records through the mapping, and each fault mapped up to
        // fault_around_bytes of neighbouring cached pages too: page-table entries that keep those pages
        // from being dropped by POSIX_FADV_DONTNEED (as `strata bench --cold` does) and that no search
        // needs. For a shared file mapping MADV_DONTNEED only unmaps; the page cache keeps the data.
        #if canImport(Glibc)
        let base = graph.bytes.baseAddress!
        let start = UInt(bitPattern: base + DiskGraphLayout.headerSize) & ~UInt(4095)
        let end = UInt(bitPattern: base + graph.bytes.count) & ~UInt(4095)
        if end > start { MemoryAdvice.dontNeed.apply(to: UnsafeMutableRawPointer(bitPattern: start), length: Int(end - start)) }
        #endif
    }

    deinit {
        slots.deallocate()
        storage.deallocate()
    }

    /// The cached record of node `i` (`i < count`), or nil when it is not cached.
    @inline(__always)
    package func record(_ i: Int) -> UnsafeRawPointer? {
        if cachedCount == 0 { return nil }
        let s = slot(of: i)
        return s == NodeCache.absent ? nil : UnsafeRawPointer(storage + Int(s) * recordSize)
    }

    /// Whether node `i` is cached (nil-safe for any `i`).
    package func contains(_ i: Int) -> Bool {
        i >= 0 && i < nodeCount && cachedCount > 0 && slot(of: i) != NodeCache.absent
    }

    /// Advises the kernel that the pages holding these records will be read soon
    /// (`madvise(MADV_WILLNEED)`): for a file mapping it starts the reads without waiting, so a later
    /// touch of several records waits about one device latency instead of one per record.
    /// Records never straddle a 4 KiB page boundary unless they span whole sectors.
    @inline(__always)
    static func willNeed(_ record: UnsafeRawPointer, bytes: Int) {
        #if canImport(Glibc)
        let start = UInt(bitPattern: record) & ~UInt(4095)
        let end = (UInt(bitPattern: record) + UInt(bytes) + 4095) & ~UInt(4095)
        MemoryAdvice.willNeed.apply(to: UnsafeMutableRawPointer(bitPattern: start), length: Int(end - start))
        #endif
    }
}
