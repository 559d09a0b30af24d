// Vamana graph construction (DiskANN), parallel and deterministic.
//
// Algorithm (Subramanya et al. 2019, with the batching of ParlayANN for determinism):
// 1. medoid = the row nearest to the mean (Build/Medoid.swift); a seeded random graph of
//    `initialDegree` out-edges per node;
// 2. for each pass (alpha 1.0 first, the configured alpha last), for the rows in a seeded random order,
//    in fixed-size batches:
//    a. in parallel, each row of the batch runs a greedy search for itself from the medoid with list
//       size L on the graph as it was when the batch started (frozen), then RobustPrune(visited, alpha, R)
//       (Build/RobustPrune.swift);
//    b. in batch order, the pruned lists replace the rows' out-edges, and the reverse edges are
//       grouped by target (stable, in batch order);
//    c. in parallel over targets, each target appends its new in-neighbours; a list that would exceed
//       R * (1 + slack) is RobustPruned back to R;
// 3. every list longer than R is pruned to R.
// Every step's result depends only on the frozen graph and on fixed orders, never on thread timing,
// so the graph is the same for the same input, parameters and seed, on any number of threads.
//
// Distances while building are squared L2 from a full-precision float32 vector (the point being
// inserted or pruned) to float16 copies of the other rows (C kernels, asymmetric: half the memory
// traffic of float32 rows, which is what bounds the build), for every metric: for the
// normalised vectors of `.cosine` the order is the same as `1 - dot`; for `.innerProduct` the graph is
// the L2 graph, which search then walks with `-dot` (a documented compromise, as in many engines).
import StrataFormat
import CStrataKernels
#if canImport(Glibc)
import Glibc
#endif

/// Builds ``VamanaGraph``s.
package enum VamanaBuilder {
    /// Builds a Vamana graph over `count` rows.
    /// - Parameters:
    ///   - vectors: row-major float buffer; row `i` starts at `i * rowStride`.
    ///   - count: number of rows (`< 2^32`).
    ///   - dimension: floats per row.
    ///   - rowStride: floats between row starts (>= dimension).
    ///   - metric: the segment's metric (see the file comment for how it is used).
    ///   - parameters: R, L, alpha, passes, seed, threads; validated first.
    ///   - shouldStop: asked once before each batch of inserted rows (never per distance); true
    ///     abandons the build. nil: never.
    /// - Throws: `StrataError.Code.invalidArgument` for bad parameters or a buffer too small;
    ///   ``IndexBuildCancellation/error()`` when `shouldStop` said so.
    /// - Complexity: about passes * count * L * R distance computations.
    public static func build(vectors: UnsafeBufferPointer<Float>, count: Int, dimension: Int, rowStride: Int,
                             metric: DistanceMetric, parameters: VamanaParameters = VamanaParameters(),
                             shouldStop: (@Sendable () -> Bool)? = nil) throws(StrataError) -> VamanaGraph {
        try parameters.validate()
        try checkVectorBuffer(vectors, count: count, dimension: dimension, rowStride: rowStride)
        if count >= Int(UInt32.max) { throw StrataError(.invalidArgument, "too many rows for a graph: \(count)") }
        let r = parameters.maxDegree
        if count == 0 {
            return VamanaGraph(unchecked: 0, maxDegree: r, medoid: 0, degrees: [], neighbors: [])
        }
        let input = Float32Rows(base: vectors.baseAddress!, stride: rowStride, dimension: dimension, count: count)
        // Navigate on a float16 copy with 64-byte-aligned rows on transparent huge pages when it fits
        // the budget: random row access during the build is memory-bound (a 384-float row is 24 cache
        // lines, its float16 copy 12), and TLB-bound on a strided mapping. Larger inputs are read in place.
        let padded = (dimension + 31) & ~31
        let copyBytes = count.multipliedReportingOverflow(by: padded * 2)
        if !copyBytes.overflow && copyBytes.partialValue <= VamanaBuilder.denseCopyLimit {
            let half = AlignedHalves(count: count * padded)
            let src = vectors.baseAddress!
            IndexParallel.forEach(count: count, threads: parameters.threads ?? IndexParallel.defaultThreadCount, chunk: 1024) { _, i in
                strata_f32_to_f16(src + i * rowStride, half.pointer + i * padded, dimension)
            }
            let nav = Float16Rows(base: UnsafePointer(half.pointer), stride: padded, dimension: dimension, count: count)
            let state = VamanaBuildState(input: input, nav: nav, parameters: parameters)
            guard withExtendedLifetime(half, { state.run(shouldStop: shouldStop) }) else { throw IndexBuildCancellation.error() }
            return withExtendedLifetime(half) { state.result() }
        }
        let state = VamanaBuildState(input: input, nav: input, parameters: parameters)
        guard state.run(shouldStop: shouldStop) else { throw IndexBuildCancellation.error() }
        return state.result()
    }
}

extension VamanaBuilder {
    /// Inputs whose float16 copy (rows padded to 32 values) takes up to this many bytes are navigated
    /// on that copy (an aligned, huge-page buffer); larger ones are read in place in float32.
    public static let denseCopyLimit = 16 << 30
}

/// A 2 MiB-aligned float16 (raw bits) buffer, advised for transparent huge pages, zero-filled padding.
///
/// Unchecked `Sendable`: filled before the parallel build starts and only read during it; freed in `deinit`.
final class AlignedHalves: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt16>
    let bytes: Int
    init(count: Int) {
        bytes = max(64, ((count * 2) + (2 << 20) - 1) & ~((2 << 20) - 1))
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 2 << 20)
        MemoryAdvice.hugePage.apply(to: raw, length: bytes)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        pointer = raw.bindMemory(to: UInt16.self, capacity: bytes / 2)
    }
    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// Per-worker scratch for the build: a generation-stamped visited set, the search list, the visited
/// (expanded) pool and prune buffers. Allocated once per worker; the hot loops allocate nothing.
final class VamanaScratch {
    let capacityL: Int
    var stamps: UnsafeMutablePointer<UInt32>
    var generation: UInt32 = 0
    let count: Int
    // Sorted search list.
    var listIds: UnsafeMutablePointer<UInt32>
    var listDist: UnsafeMutablePointer<Float>
    var listDone: UnsafeMutablePointer<Bool>
    var listCount = 0
    // Expanded nodes, in expansion order, with their distance to the query.
    var poolIds: UnsafeMutablePointer<UInt32>
    var poolDist: UnsafeMutablePointer<Float>
    var poolCount = 0
    var poolCapacity: Int
    var occlusion: UnsafeMutablePointer<Float>
    var newIds: UnsafeMutablePointer<UInt32>
    /// One row widened to float32 (a pruning candidate read from the float16 copy).
    let row: UnsafeMutablePointer<Float>

    init(count: Int, listSize: Int, maxListWidth: Int, dimension: Int) {
        self.count = count
        capacityL = listSize
        stamps = .allocate(capacity: count)
        stamps.initialize(repeating: 0, count: count)
        listIds = .allocate(capacity: listSize + 1)
        listDist = .allocate(capacity: listSize + 1)
        listDone = .allocate(capacity: listSize + 1)
        poolCapacity = max(4 * listSize, 2 * maxListWidth) + 16
        poolIds = .allocate(capacity: poolCapacity)
        poolDist = .allocate(capacity: poolCapacity)
        occlusion = .allocate(capacity: poolCapacity)
        newIds = .allocate(capacity: maxListWidth + 1)
        row = .allocate(capacity: max(1, dimension))
    }

    deinit {
        stamps.deallocate(); listIds.deallocate(); listDist.deallocate(); listDone.deallocate()
        poolIds.deallocate(); poolDist.deallocate(); occlusion.deallocate(); newIds.deallocate()
        row.deallocate()
    }

    @inline(__always) func nextGeneration() {
        if generation == UInt32.max {
            stamps.update(repeating: 0, count: count)
            generation = 0
        }
        generation &+= 1
    }

    @inline(__always) func growPool() {
        let n = poolCapacity * 2
        let ni = UnsafeMutablePointer<UInt32>.allocate(capacity: n)
        let nd = UnsafeMutablePointer<Float>.allocate(capacity: n)
        let nr = UnsafeMutablePointer<Float>.allocate(capacity: n)
        ni.update(from: poolIds, count: poolCount)
        nd.update(from: poolDist, count: poolCount)
        poolIds.deallocate(); poolDist.deallocate(); occlusion.deallocate()
        poolIds = ni; poolDist = nd; occlusion = nr
        poolCapacity = n
    }

    @inline(__always) func appendPool(_ id: UInt32, _ d: Float) {
        if poolCount == poolCapacity { growPool() }
        poolIds[poolCount] = id
        poolDist[poolCount] = d
        poolCount += 1
    }
}

/// The mutable graph and the vectors during a build, generic over the rows it navigates (a float16
/// copy or the float32 input) so that every distance call is specialised. Shared by the workers:
/// during a parallel phase each worker writes only its own slots (batch row or target node), and
/// reads data that no one writes in that phase, hence `@unchecked Sendable`.
final class VamanaBuildState<Nav: BuildRows>: @unchecked Sendable {
    /// The float32 input: the query of each row's own search and of its prunes.
    let input: Float32Rows
    /// The rows as navigated: distances to other rows are measured on these.
    let navRows: Nav
    let count: Int
    let dim: Int
    let p: VamanaParameters
    let r: Int
    /// Row width of the adjacency while building: R plus slack.
    let width: Int
    let threads: Int
    let adjacency: UnsafeMutablePointer<UInt32>
    let degree: UnsafeMutablePointer<UInt32>
    var medoid = 0
    var scratch: [VamanaScratch] = []

    init(input: Float32Rows, nav: Nav, parameters: VamanaParameters) {
        self.input = input
        self.navRows = nav
        self.count = input.count
        self.dim = input.dimension
        self.p = parameters
        self.r = parameters.maxDegree
        self.width = max(parameters.maxDegree, Int((Float(parameters.maxDegree) * (1 + parameters.slack)).rounded(.up)))
        self.threads = parameters.threads ?? IndexParallel.defaultThreadCount
        adjacency = .allocate(capacity: count * width)
        adjacency.initialize(repeating: 0, count: count * width)
        degree = .allocate(capacity: count)
        degree.initialize(repeating: 0, count: count)
    }

    deinit {
        adjacency.deallocate()
        degree.deallocate()
    }

    /// Row `i` of the float32 input.
    @inline(__always) func vec(_ i: Int) -> UnsafePointer<Float> { input.row(i) }

    /// Squared L2 from a float32 vector to row `i` as navigated (asymmetric on a float16 copy: the
    /// query keeps full precision).
    @inline(__always) func nav(_ q: UnsafePointer<Float>, _ i: Int) -> Float { navRows.squaredDistance(q, i) }

    /// Start address of row `i` as navigated, for prefetching (``navRowBytes`` long).
    @inline(__always) func navRow(_ i: Int) -> UnsafeRawPointer { navRows.rowAddress(i) }

    @inline(__always) var navRowBytes: Int { navRows.rowBytes }

    /// Builds the graph; false when `shouldStop` (asked before each batch) stopped it.
    func run(shouldStop: (@Sendable () -> Bool)? = nil) -> Bool {
        scratch = (0..<threads).map { _ in VamanaScratch(count: count, listSize: p.buildListSize, maxListWidth: width * 2, dimension: dim) }
        medoid = Medoid.of(input, threads: threads)
        randomInit()
        if count == 1 { return true }
        var rng = IndexRandom(seed: p.seed, stream: 0xA11CE)
        var order = (0..<count).map { UInt32($0) }
        for i in Swift.stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, rng.below(i + 1)) }
        let batch = p.batchSize ?? min(2048, max(16, count / 64))
        for pass in 0..<p.passes {
            let alpha: Float = pass == p.passes - 1 ? p.alpha : 1.0
            var start = 0
            while start < count {
                if let shouldStop, shouldStop() { return false }
                let end = min(count, start + batch)
                insertBatch(order, start, end, alpha: alpha)
                start = end
            }
        }
        finalPrune()
        repairReachability()
        return true
    }

    /// Makes every node reachable from the medoid: pruning can drop all in-edges of a few nodes.
    /// In id order, each unreachable node u is searched for and linked from the nearest expanded,
    /// reachable node with a free slot (if none has one, the nearest one's last edge is replaced), and
    /// everything reachable from u is marked. A second sweep re-checks nodes a replaced edge may have
    /// orphaned. Sequential and deterministic; in practice it touches a handful of nodes.
    func repairReachability() {
        var reached = [Bool](repeating: false, count: count)
        var queue: [Int] = []
        func mark(from start: Int) {
            if reached[start] { return }
            reached[start] = true
            queue.removeAll(keepingCapacity: true)
            queue.append(start)
            var head = 0
            while head < queue.count {
                let v = queue[head]; head += 1
                let row = adjacency + v * width
                for j in 0..<Int(degree[v]) where !reached[Int(row[j])] {
                    reached[Int(row[j])] = true
                    queue.append(Int(row[j]))
                }
            }
        }
        mark(from: medoid)
        let s = scratch[0]
        for u in 0..<count where !reached[u] {
            greedySearch(vec(u), s)
            // Candidates: expanded nodes (all reachable), closest first.
            var best = -1
            var bestDist = Float.infinity
            var fallback = -1
            var fallbackDist = Float.infinity
            for i in 0..<s.poolCount {
                let v = Int(s.poolIds[i])
                if v == u || !reached[v] { continue }
                let d = s.poolDist[i]
                if Int(degree[v]) < r {
                    if d < bestDist { best = v; bestDist = d }
                } else if d < fallbackDist {
                    fallback = v; fallbackDist = d
                }
            }
            if best < 0 { best = fallback }
            if best < 0 { best = medoid }
            let row = adjacency + best * width
            if Int(degree[best]) < r {
                row[Int(degree[best])] = UInt32(u)
                degree[best] += 1
            } else {
                // Full: replace the last (an arbitrary, typically long) edge; the node it pointed to is
                // re-checked below because marking only grows.
                row[r - 1] = UInt32(u)
            }
            mark(from: u)
        }
        // A replaced edge can orphan a node; one more sweep with a fresh marking catches it (rare).
        for i in 0..<count { reached[i] = false }
        mark(from: medoid)
        for u in 0..<count where !reached[u] {
            greedySearch(vec(u), s)
            var best = medoid
            var bestDist = Float.infinity
            for i in 0..<s.poolCount {
                let v = Int(s.poolIds[i])
                if v != u && reached[v] && Int(degree[v]) < r && s.poolDist[i] < bestDist { best = v; bestDist = s.poolDist[i] }
            }
            if Int(degree[best]) < r {
                adjacency[best * width + Int(degree[best])] = UInt32(u)
                degree[best] += 1
                mark(from: u)
            }
        }
    }

    /// Each node gets `initialDegree` distinct random out-neighbours (not itself), from its own stream.
    func randomInit() {
        let k = min(p.initialDegree, r, count - 1)
        if k <= 0 { return }
        IndexParallel.forEach(count: count, threads: threads, chunk: 1024) { _, i in
            var rng = IndexRandom(seed: self.p.seed, stream: UInt64(i) &+ 1)
            let row = self.adjacency + i * self.width
            var n = 0
            while n < k {
                let c = UInt32(rng.below(self.count))
                if Int(c) == i { continue }
                var dup = false
                for j in 0..<n where row[j] == c { dup = true; break }
                if dup { continue }
                row[n] = c
                n += 1
            }
            self.degree[i] = UInt32(k)
        }
    }

    // MARK: search

    /// Greedy search for `q` from the medoid with list size L; fills `s.pool` with every expanded node.
    func greedySearch(_ q: UnsafePointer<Float>, _ s: VamanaScratch) {
        let l = p.buildListSize
        s.nextGeneration()
        let gen = s.generation
        let stamps = s.stamps
        let ids = s.listIds, dists = s.listDist, done = s.listDone
        s.poolCount = 0
        ids[0] = UInt32(medoid)
        dists[0] = nav(q, medoid)
        done[0] = false
        stamps[medoid] = gen
        var n = 1
        var cursor = 0
        let newIds = s.newIds
        while cursor < n {
            let node = Int(ids[cursor])
            done[cursor] = true
            s.appendPool(ids[cursor], dists[cursor])
            let deg = Int(degree[node])
            let row = adjacency + node * width
            var fresh = 0
            for j in 0..<deg {
                let v = row[j]
                if stamps[Int(v)] != gen {
                    stamps[Int(v)] = gen
                    newIds[fresh] = v
                    fresh += 1
                    // All fresh rows at once, into L2: their DRAM reads overlap (a row is 12 lines in
                    // float16; 64 rows fit L2 easily), which is what bounds the build.
                    strata_prefetch_range_l2(navRow(Int(v)), navRowBytes)
                }
            }
            var lowest = cursor + 1
            for j in 0..<fresh {
                let v = newIds[j]
                if j + 1 < fresh { strata_prefetch_range(navRow(Int(newIds[j + 1])), navRowBytes) }
                let d = nav(q, Int(v))
                if n == l && d >= dists[l - 1] { continue }
                // Insert keeping (distance, id) order: binary search, then one memmove per array.
                var lo = 0, hi = n
                while lo < hi {
                    let mid = (lo + hi) >> 1
                    if dists[mid] < d || (dists[mid] == d && ids[mid] < v) { lo = mid + 1 } else { hi = mid }
                }
                let pos = lo
                let moved = (n == l ? l - 1 : n) - pos
                if moved > 0 {
                    memmove(ids + pos + 1, ids + pos, moved * 4)
                    memmove(dists + pos + 1, dists + pos, moved * 4)
                    memmove(done + pos + 1, done + pos, moved)
                }
                ids[pos] = v; dists[pos] = d; done[pos] = false
                if n < l { n += 1 }
                if pos < lowest { lowest = pos }
            }
            cursor = lowest
            while cursor < n && done[cursor] { cursor += 1 }
        }
        s.listCount = n
    }

    // MARK: prune

    /// RobustPrune of `s.pool[0..<poolCount]` (ids and distances to `node`) with `alpha`, keeping at most
    /// R ids into `out`; returns how many. Reorders the pool.
    @inline(__always)
    func robustPrune(node: Int, _ s: VamanaScratch, alpha: Float, out: UnsafeMutablePointer<UInt32>) -> Int {
        RobustPrune.prune(PruneCandidates(ids: s.poolIds, distances: s.poolDist, occlusion: s.occlusion, count: s.poolCount),
                          node: node, alpha: alpha, maxDegree: r, saturate: p.saturate, rows: navRows, scratch: s.row, into: out)
    }

    // MARK: batches

    func insertBatch(_ order: [UInt32], _ start: Int, _ end: Int, alpha: Float) {
        let b = end - start
        let out = UnsafeMutablePointer<UInt32>.allocate(capacity: b * r)
        let outCount = UnsafeMutablePointer<Int>.allocate(capacity: b)
        defer { out.deallocate(); outCount.deallocate() }
        let outP = SendablePointer(out), outC = SendablePointer(outCount)
        order.withUnsafeBufferPointer { ord in
            let ordBox = UncheckedBox(ord)
            // a. search + prune against the frozen graph.
            IndexParallel.forEach(count: b, threads: threads) { worker, k in
                let s = self.scratch[worker]
                let node = Int(ordBox.value[start + k])
                self.greedySearch(self.vec(node), s)
                outC.base[k] = self.robustPrune(node: node, s, alpha: alpha, out: outP.base + k * self.r)
            }
        }
        // b. replace out-edges in batch order; group reverse edges by target (stable).
        var reverse: [UInt64] = []
        reverse.reserveCapacity(b * r)
        for k in 0..<b {
            let node = Int(order[start + k])
            let c = outCount[k]
            let row = adjacency + node * width
            for j in 0..<c {
                row[j] = out[k * r + j]
                reverse.append(UInt64(out[k * r + j]) << 32 | UInt64(k))
            }
            degree[node] = UInt32(c)
        }
        reverse.sort()
        var groups: [Int] = [0]
        for i in 1..<reverse.count where reverse[i] >> 32 != reverse[i - 1] >> 32 { groups.append(i) }
        if reverse.isEmpty { return }
        groups.append(reverse.count)
        // c. add reverse edges per target, pruning on overflow.
        reverse.withUnsafeBufferPointer { rev in
            let revBox = UncheckedBox(rev)
            order.withUnsafeBufferPointer { ord in
                let ordBox = UncheckedBox(ord)
                IndexParallel.forEach(count: groups.count - 1, threads: threads, chunk: 16) { worker, g in
                    let lo = groups[g], hi = groups[g + 1]
                    let target = Int(revBox.value[lo] >> 32)
                    var sources = [UInt32]()
                    sources.reserveCapacity(hi - lo)
                    for i in lo..<hi {
                        sources.append(ordBox.value[start + Int(revBox.value[i] & 0xFFFF_FFFF)])
                    }
                    self.addReverseEdges(target: target, sources: sources, alpha: alpha, self.scratch[worker])
                }
            }
        }
    }

    func addReverseEdges(target: Int, sources: [UInt32], alpha: Float, _ s: VamanaScratch) {
        let row = adjacency + target * width
        var deg = Int(degree[target])
        var pending: [UInt32] = []
        pending.reserveCapacity(sources.count)
        for src in sources {
            if Int(src) == target { continue }
            var present = false
            for j in 0..<deg where row[j] == src { present = true; break }
            if !present && pending.contains(src) { present = true }
            if present { continue }
            pending.append(src)
        }
        let extra = pending.count
        if extra == 0 { return }
        if deg + extra <= width {
            for j in 0..<extra { row[deg + j] = pending[j] }
            degree[target] = UInt32(deg + extra)
            return
        }
        // Overflow: prune existing plus new back to R.
        s.poolCount = 0
        let tv = vec(target)
        for j in 0..<deg { s.appendPool(row[j], nav(tv, Int(row[j]))) }
        for j in 0..<extra { s.appendPool(pending[j], nav(tv, Int(pending[j]))) }
        deg = robustPrune(node: target, s, alpha: alpha, out: row)
        degree[target] = UInt32(deg)
    }

    func finalPrune() {
        let alpha = p.alpha
        IndexParallel.forEach(count: count, threads: threads, chunk: 64) { worker, i in
            let deg = Int(self.degree[i])
            if deg <= self.r { return }
            let s = self.scratch[worker]
            s.poolCount = 0
            let row = self.adjacency + i * self.width
            let tv = self.vec(i)
            for j in 0..<deg { s.appendPool(row[j], self.nav(tv, Int(row[j]))) }
            self.degree[i] = UInt32(self.robustPrune(node: i, s, alpha: alpha, out: row))
        }
    }

    func result() -> VamanaGraph {
        var nbrs = [UInt32](repeating: 0, count: count * r)
        var degs = [UInt32](repeating: 0, count: count)
        for i in 0..<count {
            let d = min(Int(degree[i]), r)
            degs[i] = UInt32(d)
            for j in 0..<d { nbrs[i * r + j] = adjacency[i * width + j] }
        }
        return VamanaGraph(unchecked: count, maxDegree: r, medoid: medoid, degrees: degs, neighbors: nbrs)
    }
}
