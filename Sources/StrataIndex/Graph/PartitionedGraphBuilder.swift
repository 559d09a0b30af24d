// Out-of-core graph build: DiskANN's answer to data larger than RAM (Subramanya et al. 2019, section
// 4.2 "Indexing large datasets"), used by IndexBuilder (for SegmentWriter.finish()) when
// IndexOptions.memoryBudget is smaller than an in-memory build of the whole segment would take.
//
// 1. k-means (on a sample) splits the rows into C partitions; every row joins the `overlap` (2)
//    partitions with the nearest centroids that still have room, so partitions are bounded by the
//    budget and neighbouring partitions share rows;
// 2. one partition at a time: its rows' vectors are gathered from the mapped segment, a Vamana graph
//    is built over them in memory (VamanaBuilder, all threads), and its adjacency, in global row ids,
//    is written to a temporary file (rows ascending, fixed-size records);
// 3. merge: for each row, in row order, the lists of its partitions are united; a union longer than
//    R is RobustPruned (Build/RobustPrune.swift, exact float32 distances from the mapped vectors)
//    back to R; the result goes to a merged adjacency file (fixed-size records);
// 4. the merged graph is made reachable from the global medoid (the row nearest to the mean) by a
//    BFS over the merged file and a few patched edges (Build/MergedGraph.swift); IndexBuilder then
//    streams the sector layout from the merged file and the mapped vectors.
//
// Anonymous memory: PQ codes and partition assignment (M + 6 B per row with overlap 2), one
// partition's build (``PartitionedGraphBuilder/partitionBytesPerRow(dimension:parameters:)`` per row)
// and the BFS state (5 B per row, after the partition builds). Everything else (vectors, partition
// graphs, the merged graph) lives in files, read through the page cache.
import StrataFormat
import CStrataKernels
#if canImport(Glibc)
import Glibc
#endif

/// How an out-of-core build splits a segment, from its row count, shape and memory budget.
package struct PartitionPlan: Sendable, Equatable {
    /// Number of partitions C (1: the whole segment is built in memory).
    public var partitions: Int
    /// Partitions each row joins (2 when partitioned, 1 otherwise).
    public var overlap: Int
    /// Most rows one partition may hold.
    public var capacity: Int
    /// Estimated bytes per row of one partition's in-memory build.
    public var bytesPerPartitionRow: Int
    /// Bytes held for the whole build regardless of partitioning (PQ codes, assignment).
    public var fixedBytes: Int

    /// Whether the build is split into partitions.
    public var isPartitioned: Bool { partitions > 1 }
}

/// Builds a Vamana graph over more rows than fit the memory budget (see the file comment).
package enum PartitionedGraphBuilder {
    /// Partitions each row joins when the build is split.
    static let overlap = 2
    /// Fill factor partitions are planned for, leaving room for k-means' uneven cluster sizes.
    static let plannedFill = 0.8
    /// The smallest partition a budget must allow.
    package static let minimumPartitionRows = 1_000

    /// Threads whose visited stamps (4 B per row each) the estimate allows for. A constant, not the
    /// thread count, so that the plan, and so the graph, does not depend on the number of threads.
    static let stampThreadsAllowance = 4

    /// Estimated anonymous bytes per row while one partition's graph is built in memory: the gathered
    /// float32 rows, VamanaBuilder's float16 navigation copy, adjacency with slack, degrees, the
    /// result copy, visited stamps and the reachability pass.
    package static func partitionBytesPerRow(dimension: Int, parameters: VamanaParameters) -> Int {
        let r = parameters.maxDegree
        let width = max(r, Int((Float(r) * (1 + parameters.slack)).rounded(.up)))
        return 4 * dimension + 2 * ((dimension + 31) & ~31) + 4 * width + 4 + (4 * r + 4) + 4 * stampThreadsAllowance + 9
    }

    /// Plans the split of `count` rows under `memoryBudget` bytes.
    /// - Throws: `StrataError.Code.invalidArgument` when the budget cannot hold the fixed part plus
    ///   a partition of ``minimumPartitionRows`` rows, or there would be more than 65,535 partitions.
    /// `rowsInPlace`: the rows are float32 that an in-memory build reads where they are (a mapped
    /// file), so building the whole segment at once gathers no copy of them; a partition always does.
    package static func plan(count: Int, dimension: Int, codeSize: Int, parameters: VamanaParameters,
                             memoryBudget: Int?, rowsInPlace: Bool = false) throws(StrataError) -> PartitionPlan {
        let perRow = partitionBytesPerRow(dimension: dimension, parameters: parameters)
        let singlePerRow = perRow - (rowsInPlace ? 4 * dimension : 0)
        let single = PartitionPlan(partitions: 1, overlap: 1, capacity: count, bytesPerPartitionRow: singlePerRow,
                                   fixedBytes: count * codeSize)
        guard let budget = memoryBudget else { return single }
        if count * (codeSize + singlePerRow) <= budget { return single }
        let fixed = count * (codeSize + 6 * overlap)  // codes, then per membership a u16 part and a u32 member
        let capacity = (budget - fixed) / perRow
        if budget <= fixed || capacity < minimumPartitionRows {
            let need = fixed + minimumPartitionRows * perRow
            throw StrataError(.invalidArgument,
                              "memory budget \(budget) bytes is too small to index \(count) rows out of core: it needs at least \(need) bytes (\((need + (1 << 20) - 1) >> 20) MiB)")
        }
        let partitions = Int((Double(overlap * count) / (Double(capacity) * plannedFill)).rounded(.up))
        if partitions > Int(UInt16.max) { throw StrataError(.invalidArgument, "memory budget too small: \(partitions) partitions") }
        return PartitionPlan(partitions: max(2, partitions), overlap: overlap, capacity: capacity,
                             bytesPerPartitionRow: perRow, fixedBytes: fixed)
    }

    /// Runs steps 1-4 of the file comment. Temporary files are named `tempPrefix` + a suffix and
    /// removed before returning (the merged graph's file when the returned object is released).
    /// `shouldStop` is asked between partitions and between the batches of each partition's graph.
    package static func build(rows: VectorRows, metric: DistanceMetric, parameters: VamanaParameters, plan: PartitionPlan,
                      tempPrefix: String, progress: (@Sendable (IndexBuildProgress) -> Void)?,
                      shouldStop: (@Sendable () -> Bool)? = nil) throws(StrataError) -> MergedGraph {
        let n = rows.count, d = rows.dimension, r = parameters.maxDegree
        let threads = parameters.threads ?? IndexParallel.defaultThreadCount
        let c = plan.partitions
        if n >= Int(UInt32.max) { throw StrataError(.invalidArgument, "too many rows for a graph: \(n)") }

        // 1. Partition: k-means on a sample, then capacity-bounded assignment in row order.
        progress?(IndexBuildProgress(phase: "partition", done: 0, total: n, detail: "\(c) partitions of at most \(plan.capacity) rows"))
        let sampleRows = sampleRowNumbers(count: n, limit: min(n, max(50_000, 64 * c)), seed: parameters.seed ^ 0x9A27)
        let sample = rows.gather(sampleRows, threads: threads)
        let kmeans = try sample.withUnsafeBufferPointer { (v) throws(StrataError) in
            try KMeans(vectors: v, count: sampleRows.count, dimension: d, rowStride: d, k: c, iterations: 10,
                       sampleLimit: sampleRows.count, seed: parameters.seed ^ 0x9A28)
        }
        let (members, rowParts) = assign(rows: rows, centroids: kmeans.centroids, partitions: c, capacity: plan.capacity,
                                         threads: threads, progress: progress)

        // 2. One graph per partition, adjacency in global ids to a temporary file.
        var partFiles: [String] = []
        defer { for f in partFiles { FileSystem.removeIfPresent(f) } }
        for p in 0..<c {
            let path = "\(tempPrefix).part\(p)"
            partFiles.append(path)
            try IndexBuildCancellation.check(shouldStop)
            progress?(IndexBuildProgress(phase: "graph", done: p, total: c, detail: "partition \(p + 1)/\(c): \(members[p].count) rows"))
            try buildPartition(rows: rows, members: members[p], metric: metric,
                               parameters: partitionParameters(parameters, p), path: path, r: r, threads: threads, shouldStop: shouldStop)
        }
        progress?(IndexBuildProgress(phase: "graph", done: c, total: c, detail: ""))
        let memberCounts = members.map(\.count)

        // 3. Merge in row order.
        let mergedPath = "\(tempPrefix).graph"
        let medoid = Medoid.of(rows, threads: threads)
        do {
            try merge(rows: rows, partFiles: partFiles, memberCounts: memberCounts, rowParts: rowParts, overlap: plan.overlap,
                      r: r, alpha: parameters.alpha, saturate: parameters.saturate, threads: threads, to: mergedPath, progress: progress)
            for f in partFiles { FileSystem.removeIfPresent(f) }
            partFiles = []
            // 4. Reachability.
            let merged = try MergedGraph(path: mergedPath, count: n, maxDegree: r, medoid: medoid)
            progress?(IndexBuildProgress(phase: "connect", done: 0, total: n, detail: ""))
            try merged.connect()
            progress?(IndexBuildProgress(phase: "connect", done: n, total: n, detail: "\(merged.repairedEdges) edges added"))
            return merged
        } catch {
            FileSystem.removeIfPresent(mergedPath)
            throw error
        }
    }

    /// Per-partition parameters: the same knobs, a seed of its own.
    static func partitionParameters(_ p: VamanaParameters, _ partition: Int) -> VamanaParameters {
        var q = p
        q.seed = p.seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(partition + 1)
        return q
    }

    /// `limit` distinct row numbers drawn with `seed`, ascending (sequential reads of the mapping).
    package static func sampleRowNumbers(count: Int, limit: Int, seed: UInt64) -> [Int] {
        if limit >= count { return Array(0..<count) }
        // Floyd's algorithm: `limit` distinct values without an O(count) array.
        var rng = IndexRandom(seed: seed)
        var chosen = Set<Int>(minimumCapacity: limit)
        for j in (count - limit)..<count {
            let t = rng.below(j + 1)
            if !chosen.insert(t).inserted { chosen.insert(j) }
        }
        return chosen.sorted()
    }

    /// Assigns every row to the `overlap` partitions with the nearest centroids that have room,
    /// in row order (deterministic). Returns each partition's rows (ascending) and, per row, its
    /// partitions (`overlap` entries, ascending partition number, 0xFFFF when fewer).
    static func assign(rows: VectorRows, centroids: [Float], partitions c: Int, capacity: Int, threads: Int,
                       progress: (@Sendable (IndexBuildProgress) -> Void)?) -> ([[UInt32]], [UInt16]) {
        let n = rows.count, d = rows.dimension
        let keep = min(c, 8)
        var members = [[UInt32]](repeating: [], count: c)
        var rowParts = [UInt16](repeating: 0xFFFF, count: n * overlap)
        var sizes = [Int](repeating: 0, count: c)
        let chunk = 1 << 16
        var order = [UInt16](repeating: 0, count: chunk * keep)
        let rowScratch = UnsafeMutablePointer<Float>.allocate(capacity: threads * d)
        let distScratch = UnsafeMutablePointer<Float>.allocate(capacity: threads * c)
        defer { rowScratch.deallocate(); distScratch.deallocate() }
        let rs = SendablePointer(rowScratch), ds = SendablePointer(distScratch)
        var start = 0
        while start < n {
            let end = min(n, start + chunk)
            centroids.withUnsafeBufferPointer { cp in
                let cents = UncheckedBox(cp.baseAddress!)
                order.withUnsafeMutableBufferPointer { op in
                    let out = SendablePointer(op.baseAddress!)
                    IndexParallel.forEach(count: end - start, threads: threads, chunk: 256) { w, k in
                        let v = rs.base + w * d, dist = ds.base + w * c
                        rows.copy(row: start + k, into: v)
                        for j in 0..<c { dist[j] = strata_l2sq_f32(v, cents.value + j * d, d) }
                        // Partial selection of the `keep` nearest (ties to the lower partition).
                        for t in 0..<keep {
                            var best = 0
                            for j in 1..<max(1, c) where dist[j] < dist[best] { best = j }
                            out.base[k * keep + t] = UInt16(best)
                            dist[best] = .infinity
                        }
                    }
                }
            }
            for k in 0..<(end - start) {
                let row = start + k
                var taken = 0
                var chosen = [Int]()
                for t in 0..<keep where taken < overlap {
                    let p = Int(order[k * keep + t])
                    if sizes[p] < capacity && !chosen.contains(p) { chosen.append(p); taken += 1 }
                }
                if taken < overlap {
                    // The nearest partitions are full: take the emptiest others.
                    let rest = (0..<c).filter { !chosen.contains($0) && sizes[$0] < capacity }.sorted { sizes[$0] < sizes[$1] }
                    for p in rest.prefix(overlap - taken) { chosen.append(p); taken += 1 }
                }
                chosen.sort()
                for (slot, p) in chosen.enumerated() {
                    members[p].append(UInt32(row))
                    sizes[p] += 1
                    rowParts[row * overlap + slot] = UInt16(p)
                }
            }
            start = end
            progress?(IndexBuildProgress(phase: "partition", done: end, total: n, detail: ""))
        }
        return (members, rowParts)
    }

    /// Builds the graph of one partition and writes it as `count` records of (degree u32, R ids u32 in
    /// global row numbers), in the order of `members`.
    static func buildPartition(rows: VectorRows, members: [UInt32], metric: DistanceMetric, parameters: VamanaParameters,
                               path: String, r: Int, threads: Int, shouldStop: (@Sendable () -> Bool)? = nil) throws(StrataError) {
        let file = try SystemFile.create(path)
        defer { file.close() }
        if members.isEmpty { return }
        let d = rows.dimension
        let graph: VamanaGraph
        do {  // the gathered rows are freed before the records are written
            let dense = rows.gather(members.lazy.map { Int($0) }, threads: threads)
            graph = try dense.withUnsafeBufferPointer { (v) throws(StrataError) in
                try VamanaBuilder.build(vectors: v, count: members.count, dimension: d, rowStride: d,
                                        metric: metric, parameters: parameters, shouldStop: shouldStop)
            }
        }
        let record = 4 * (1 + r)
        let perWrite = max(1, (1 << 20) / record)
        var buffer = [UInt32](repeating: 0, count: perWrite * (1 + r))
        var written = 0
        while written < members.count {
            let end = min(members.count, written + perWrite)
            for i in written..<end {
                let o = (i - written) * (1 + r)
                let deg = Int(graph.degrees[i])
                buffer[o] = UInt32(deg).littleEndian
                for j in 0..<r {
                    buffer[o + 1 + j] = j < deg ? members[Int(graph.neighbors[i * r + j])].littleEndian : 0
                }
            }
            try buffer.withBytes { (raw) throws(StrataError) in
                try file.write(UnsafeRawBufferPointer(rebasing: raw[0..<((end - written) * record)]),
                               atAbsoluteOffset: UInt64(written * record))
            }
            written = end
        }
    }

    /// Step 3: unites each row's partition lists, RobustPrunes unions longer than R, and writes the
    /// merged adjacency (records of degree u32 + R ids u32) to `path`.
    static func merge(rows: VectorRows, partFiles: [String], memberCounts: [Int], rowParts: [UInt16], overlap: Int,
                      r: Int, alpha: Float, saturate: Bool, threads: Int, to path: String,
                      progress: (@Sendable (IndexBuildProgress) -> Void)?) throws(StrataError) {
        let n = rows.count, d = rows.dimension
        let record = 1 + r
        var maps: [MappedFile] = []
        for f in partFiles { maps.append(try MappedFile(path: f)) }
        for (p, m) in maps.enumerated() where m.bytes.count != memberCounts[p] * record * 4 {
            throw StrataError(.io, "partition graph is \(m.bytes.count) bytes, expected \(memberCounts[p] * record * 4)", path: partFiles[p])
        }
        for m in maps { m.advise(.sequential) }
        let bases = maps.map { UncheckedBox($0.bytes.baseAddress?.assumingMemoryBound(to: UInt32.self)) }
        let out = try SystemFile.create(path)
        defer { out.close() }
        var cursor = [Int](repeating: 0, count: partFiles.count)
        let chunk = 1 << 14
        let sources = UnsafeMutablePointer<Int>.allocate(capacity: chunk * overlap)  // (partition, local) packed
        let result = UnsafeMutablePointer<UInt32>.allocate(capacity: chunk * record)
        let scratch = (0..<threads).map { _ in MergeScratch(maxCandidates: overlap * r, dimension: d) }
        defer { sources.deallocate(); result.deallocate() }
        let src = SendablePointer(sources), res = SendablePointer(result)
        var start = 0
        while start < n {
            let end = min(n, start + chunk)
            for k in 0..<(end - start) {
                for slot in 0..<overlap {
                    let p = rowParts[(start + k) * overlap + slot]
                    if p == 0xFFFF { src.base[k * overlap + slot] = -1; continue }
                    src.base[k * overlap + slot] = Int(p) << 40 | cursor[Int(p)]
                    cursor[Int(p)] += 1
                }
            }
            IndexParallel.forEach(count: end - start, threads: threads, chunk: 64) { w, k in
                let s = scratch[w]
                let row = start + k
                var m = 0
                for slot in 0..<overlap {
                    let packed = src.base[k * overlap + slot]
                    if packed < 0 { continue }
                    guard let base = bases[packed >> 40].value else { continue }
                    let rec = base + (packed & ((1 << 40) - 1)) * record
                    let deg = min(r, Int(UInt32(littleEndian: rec[0])))
                    for j in 0..<deg {
                        let id = UInt32(littleEndian: rec[1 + j])
                        if Int(id) == row || Int(id) >= n { continue }
                        var dup = false
                        for t in 0..<m where s.ids[t] == id { dup = true; break }
                        if !dup { s.ids[m] = id; m += 1 }
                    }
                }
                let o = res.base + k * record
                let kept = m <= r ? m : s.robustPrune(rows: rows, row: row, count: m, r: r, alpha: alpha, saturate: saturate)
                o[0] = UInt32(kept).littleEndian
                for j in 0..<r { o[1 + j] = j < kept ? s.ids[j].littleEndian : 0 }
            }
            try out.write(UnsafeRawBufferPointer(start: result, count: (end - start) * record * 4),
                          atAbsoluteOffset: UInt64(start) * UInt64(record * 4))
            start = end
            progress?(IndexBuildProgress(phase: "merge", done: end, total: n, detail: ""))
        }
        withExtendedLifetime(maps) {}  // `bases` point into these mappings
        try out.sync()
    }
}

/// Per-thread scratch of the merge: candidate ids, their distances and vectors.
///
/// Unchecked `Sendable`: one per worker thread; handed to `IndexParallel` only so that worker `t` can use
/// scratch `t`, never shared.
final class MergeScratch: @unchecked Sendable {
    let ids: UnsafeMutablePointer<UInt32>
    let dist: UnsafeMutablePointer<Float>
    let occlusion: UnsafeMutablePointer<Float>
    let vectors: UnsafeMutablePointer<Float>
    let query: UnsafeMutablePointer<Float>
    /// Each candidate's slot in `vectors` (the prune sorts candidates, not their vectors).
    let slots: UnsafeMutablePointer<UInt32>
    /// Scratch row of the prune (unused: gathered rows are float32 already).
    let widened: UnsafeMutablePointer<Float>
    let keptIds: UnsafeMutablePointer<UInt32>
    let capacity: Int
    let dimension: Int

    init(maxCandidates: Int, dimension: Int) {
        capacity = maxCandidates
        self.dimension = dimension
        ids = .allocate(capacity: maxCandidates)
        dist = .allocate(capacity: maxCandidates)
        occlusion = .allocate(capacity: maxCandidates)
        vectors = .allocate(capacity: maxCandidates * dimension)
        query = .allocate(capacity: dimension)
        slots = .allocate(capacity: maxCandidates)
        widened = .allocate(capacity: dimension)
        keptIds = .allocate(capacity: maxCandidates)
    }

    deinit {
        ids.deallocate(); dist.deallocate(); occlusion.deallocate(); vectors.deallocate(); query.deallocate()
        slots.deallocate(); widened.deallocate(); keptIds.deallocate()
    }

    /// RobustPrune of `ids[0..<count]` around `row` in float32 (exact distances; float16 segments are
    /// widened as the rows are gathered): the candidates are gathered densely, so the prune reads
    /// them through row keys (their slots). Leaves the kept ids (at most `r`) at the front of `ids`
    /// and returns how many.
    func robustPrune(rows: VectorRows, row: Int, count: Int, r: Int, alpha: Float, saturate: Bool) -> Int {
        let d = dimension
        rows.copy(row: row, into: query)
        let gathered = Float32Rows(base: vectors, stride: d, dimension: d, count: count)
        for i in 0..<count {
            rows.copy(row: Int(ids[i]), into: vectors + i * d)
            dist[i] = gathered.squaredDistance(query, i)
            slots[i] = UInt32(i)
        }
        let kept = RobustPrune.prune(PruneCandidates(ids: ids, distances: dist, occlusion: occlusion, rowKeys: slots, count: count),
                                     node: row, alpha: alpha, maxDegree: r, saturate: saturate, rows: gathered, scratch: widened, into: keptIds)
        ids.update(from: keptIds, count: kept)
        return kept
    }
}
