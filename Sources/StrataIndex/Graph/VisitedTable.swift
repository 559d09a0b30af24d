// The set of node ids one beam search has seen.

/// The node ids one search has seen: linear probing over `id + 1` (0 marks an empty slot) in a
/// power-of-two table kept at most half full, cleared per search in O(table). Its size follows the
/// nodes a search visits (L x R order, a few thousand), not the graph, so a searcher of a billion-row
/// segment holds kilobytes, and the probes stay in the CPU cache where an O(rows) array would miss.
package struct VisitedTable {
    private(set) var slots: UnsafeMutablePointer<UInt32>
    private(set) var mask: Int
    private(set) var count = 0

    /// A table of at least `capacity` slots (a power of two, at least 64).
    package init(capacity: Int) {
        var c = 64
        while c < capacity { c <<= 1 }
        slots = .allocate(capacity: c)
        slots.initialize(repeating: 0, count: c)
        mask = c - 1
    }

    /// Frees the slots; the table must not be used afterwards.
    package func deallocate() { slots.deallocate() }

    /// Empties the table, keeping its size.
    package mutating func clear() {
        if count > 0 { slots.update(repeating: 0, count: mask + 1) }
        count = 0
    }

    /// Grows the table so that `extra` more inserts keep it at most half full (outside hot loops).
    package mutating func reserve(_ extra: Int) {
        guard (count + extra) * 2 > mask + 1 else { return }
        var c = mask + 1
        while (count + extra) * 2 > c { c <<= 1 }
        let old = slots, oldSize = mask + 1
        slots = .allocate(capacity: c)
        slots.initialize(repeating: 0, count: c)
        mask = c - 1
        for i in 0..<oldSize where old[i] != 0 {
            var j = VisitedTable.slot(old[i] &- 1, mask)
            while slots[j] != 0 { j = (j + 1) & mask }
            slots[j] = old[i]
        }
        old.deallocate()
    }

    @inline(__always) static func slot(_ id: UInt32, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(id) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// Adds `id` (< UInt32.max); true when it was not there. Call ``reserve(_:)`` first: this never grows.
    @inline(__always) package mutating func insert(_ id: UInt32) -> Bool {
        let key = id &+ 1
        var j = VisitedTable.slot(id, mask)
        while true {
            let s = slots[j]
            if s == key { return false }
            if s == 0 {
                slots[j] = key
                count += 1
                return true
            }
            j = (j + 1) & mask
        }
    }
}
