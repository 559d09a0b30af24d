// The id index of a segment ((id, row) pairs sorted by id, SegmentLayout.swift), produced from the
// ids in row order either in memory (about 40 B per row: sort order and pairs next to the ids) or,
// above a memory bound, by an external sort: consecutive runs of rows are sorted in memory and
// spilled to temporary files next to the segment, then a k-way merge (a binary heap over the runs'
// heads) streams the pairs out. Both give the same bytes: ids are unique, so the order is total.
import StrataFormat

/// Sorts a segment's ids into its id index, within a memory bound.
struct IdIndexSort {
    /// Rows per sorted run of the external sort; nil: sort in memory.
    let runRows: Int?
    /// Prefix of the run files (the segment's temporary path; `.idrun<k>` is appended).
    let tempPrefix: String
    /// How the duplicate-id error names a row.
    let rowLabel: (Int) -> String

    /// Bytes per row of the in-memory sort (sort order, pairs and their copy as written).
    static let inMemoryBytesPerRow = 40
    /// Bytes per row of a run while it is sorted ((id, row) pairs).
    static let runBytesPerRow = 16
    /// Pairs per write of the merged output.
    static let outputChunkPairs = 1 << 16

    /// The sort for `rows` rows within `memoryBytes` (nil: unbounded, in memory): in memory when
    /// the rows fit at ``inMemoryBytesPerRow``, else runs of `memoryBytes / runBytesPerRow` rows.
    init(rows: Int, memoryBytes: Int?, tempPrefix: String, rowLabel: @escaping (Int) -> String = { "row \($0)" }) {
        self.tempPrefix = tempPrefix
        self.rowLabel = rowLabel
        if let memoryBytes, rows > memoryBytes / Self.inMemoryBytesPerRow {
            runRows = max(1, memoryBytes / Self.runBytesPerRow)
        } else {
            runRows = nil
        }
    }

    /// Calls `emit` with the id index bytes in order, in chunks. Throws `.duplicateId` naming two
    /// rows that share an id (nothing more is emitted then). Run files are removed before it returns.
    func write(ids: [UInt64], emit: (UnsafeRawBufferPointer) throws(StrataError) -> Void) throws(StrataError) {
        guard let runRows, ids.count > runRows else { return try writeInMemory(ids: ids, emit: emit) }
        var runPaths: [String] = []
        defer { for p in runPaths { FileSystem.removeIfPresent(p) } }
        // 1. Sorted runs, each a file of little-endian (id, row) pairs.
        var pairs: [UInt64] = []
        pairs.reserveCapacity(min(runRows, ids.count) * 2)
        var start = 0
        while start < ids.count {
            let end = min(ids.count, start + runRows)
            pairs.removeAll(keepingCapacity: true)
            try sortedPairs(ids: ids, rows: start..<end, into: &pairs)
            let path = "\(tempPrefix).idrun\(runPaths.count)"
            runPaths.append(path)
            let file = try FileSystem.create(path)
            defer { file.close() }
            try pairs.withBytes { (raw) throws(StrataError) in try file.write(raw, atAbsoluteOffset: 0) }
            start = end
        }
        pairs = []
        // 2. The k-way merge.
        var runs: [MappedFile] = []
        for p in runPaths {
            let m = try MappedFile(path: p)
            m.advise(.sequential)
            runs.append(m)
        }
        var heap = PairHeap()
        var next = [Int](repeating: 1, count: runs.count)
        for (k, run) in runs.enumerated() { heap.push(Self.pair(run.bytes, 0), run: k) }
        var out: [UInt64] = []
        out.reserveCapacity(Self.outputChunkPairs * 2)
        var previous: (id: UInt64, row: UInt64)? = nil
        while let top = heap.pop() {
            if let previous, previous.id == top.id { throw duplicate(top.id, Int(previous.row), Int(top.row)) }
            previous = (top.id, top.row)
            out.append(top.id.littleEndian)
            out.append(top.row.littleEndian)
            let run = runs[top.run]
            if next[top.run] * 16 < run.bytes.count {
                heap.push(Self.pair(run.bytes, next[top.run]), run: top.run)
                next[top.run] += 1
            }
            if out.count >= Self.outputChunkPairs * 2 {
                try out.withBytes(emit)
                out.removeAll(keepingCapacity: true)
            }
        }
        if !out.isEmpty { try out.withBytes(emit) }
    }

    /// The in-memory sort (the writer's original one), emitted in one piece.
    private func writeInMemory(ids: [UInt64], emit: (UnsafeRawBufferPointer) throws(StrataError) -> Void) throws(StrataError) {
        var pairs: [UInt64] = []
        pairs.reserveCapacity(ids.count * 2)
        try sortedPairs(ids: ids, rows: 0..<ids.count, into: &pairs)
        try pairs.withBytes(emit)
    }

    /// Appends the little-endian (id, row) pairs of `rows`, sorted by id; `.duplicateId` when two share an id.
    private func sortedPairs(ids: [UInt64], rows: Range<Int>, into pairs: inout [UInt64]) throws(StrataError) {
        var order = Array(rows)
        order.sort { ids[$0] < ids[$1] }
        for (k, row) in order.enumerated() {
            if k > 0, ids[order[k - 1]] == ids[row] { throw duplicate(ids[row], order[k - 1], row) }
            pairs.append(ids[row].littleEndian)
            pairs.append(UInt64(row).littleEndian)
        }
    }

    /// The error for rows `a` and `b` sharing `id`, the lower row first.
    private func duplicate(_ id: UInt64, _ a: Int, _ b: Int) -> StrataError {
        StrataError(.duplicateId, "id \(id) appears in \(rowLabel(min(a, b))) and \(rowLabel(max(a, b)))")
    }

    /// Pair `i` of a run file.
    private static func pair(_ bytes: UnsafeRawBufferPointer, _ i: Int) -> (id: UInt64, row: UInt64) {
        (UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 16, as: UInt64.self)),
         UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 16 + 8, as: UInt64.self)))
    }
}

/// A binary min-heap of (id, row) pairs tagged with their run, ordered by id then row.
struct PairHeap {
    private var items: [(id: UInt64, row: UInt64, run: Int)] = []

    private static func less(_ a: (id: UInt64, row: UInt64, run: Int), _ b: (id: UInt64, row: UInt64, run: Int)) -> Bool {
        a.id != b.id ? a.id < b.id : a.row < b.row
    }

    /// Adds a pair from `run`.
    mutating func push(_ pair: (id: UInt64, row: UInt64), run: Int) {
        items.append((pair.id, pair.row, run))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the smallest pair, or nil when empty.
    mutating func pop() -> (id: UInt64, row: UInt64, run: Int)? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, Self.less(items[l], items[m]) { m = l }
                if r < items.count, Self.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first
    }

    /// Number of pairs held.
    var count: Int { items.count }
}
