// Deterministic synthetic clustered datasets for benchmarks (`strata gen`), and an exact, streaming,
// multi-threaded top-k ground-truth scan that works on any base file.
//
// Files written into the output directory (texmex formats, see VectorFiles.swift):
//   base.fvecs         rows x dimension float32
//   query.fvecs        queries x dimension float32
//   groundtruth.ivecs  queries records of gtK int32 row numbers, nearest first (squared L2, ties to
//                      the lower row)
//
// Model: `clusters` centres with coordinates ~ N(0, 1); cluster c has a spread sigma_c = s * (0.5 + u)
// with u ~ U[0, 1) and s = `SyntheticDataset.noiseScale`. A row picks a cluster uniformly and adds
// N(0, sigma_c^2) noise to every coordinate. Queries are drawn the same way from other random streams,
// so they are not copies of base rows. With s = 1 most, but not all, of a query's nearest neighbours
// lie in its own cluster (tight clusters are separated, loose ones overlap their neighbours). Checked
// with a NumPy simulation of this model at d = 96, 200 queries: share of the true top-10 in the
// query's cluster 0.95 with 1,000 rows per cluster (100k rows, 100 clusters), 0.75 with 100 rows per
// cluster (100k rows, 1,000 clusters); s = 0.75 gives 0.98-1.0 (too separated), s = 1.5 0.42-0.55.
//
// Latent model (`intrinsicDimension` k, 0 < k < d): the same clusters are drawn in k dimensions
// (centres ~ N(0, 1), spreads sigma_c as above) and each row is embedded as x = P z + e, where P is a
// fixed d x k matrix with entries N(0, 1/k) and e ~ N(0, residual^2) per coordinate
// (`SyntheticDataset.residualScale`). Its intrinsic dimension is about k, like real embeddings
// (local intrinsic dimension 10-20 for 96-768-d text and image models).
//
// Determinism: every random number comes from a SplitMix64 stream (`IndexRandom`) chosen by
// (seed, purpose, block of `rowsPerStream` rows), and rows are computed with plain Swift arithmetic
// (no FMA contraction on x86-64), so the files are byte-identical for any thread count.
import Strata
import StrataFormat
import StrataIndex
#if canImport(Glibc)
import Glibc
#endif

/// The parameters of a synthetic clustered dataset; see ``SyntheticDataset``.
public struct SyntheticDatasetSpec: Sendable, Equatable {
    /// Base rows, 1...Int32.max (ground-truth files store row numbers as int32).
    public var rows: Int
    /// Dimensions per vector, 1...``SyntheticDataset/maxDimension``.
    public var dimension: Int
    /// Number of cluster centres, 1...`rows`; `clusters * dimension` at most 2^27.
    public var clusters: Int
    /// Seed of every random stream.
    public var seed: UInt64
    /// Number of query vectors, 1...1,000,000.
    public var queries: Int
    /// Neighbours per query in the ground truth, 1...min(`rows`, 10,000).
    public var groundTruthK: Int
    /// L2-normalise every base and query row (for cosine / inner-product benchmarks).
    public var normalize: Bool
    /// Intrinsic dimension k of the data: clusters live in a k-dimensional latent space that a fixed
    /// random linear map embeds into `dimension` (plus a small full-rank residual), as real embeddings
    /// occupy a low-dimensional part of their space. 0 (or >= `dimension`): isotropic clusters in
    /// the full space, which is as hard for any ANN index as random data.
    public var intrinsicDimension: Int = SyntheticDatasetSpec.defaultIntrinsicDimension

    /// Default ``intrinsicDimension``: 16.
    public static let defaultIntrinsicDimension = 16

    /// Creates a specification; call ``validate()`` before using it.
    /// - Parameters:
    ///   - rows: Base rows.
    ///   - dimension: Dimensions per vector.
    ///   - clusters: Cluster centres.
    ///   - seed: Seed of every random stream.
    ///   - queries: Query vectors.
    ///   - groundTruthK: Neighbours per query in the ground truth.
    ///   - normalize: Whether rows are L2-normalised.
    public init(rows: Int, dimension: Int, clusters: Int, seed: UInt64 = SyntheticDataset.defaultSeed,
                queries: Int = SyntheticDataset.defaultQueries, groundTruthK: Int = SyntheticDataset.defaultGroundTruthK,
                normalize: Bool = false) {
        self.rows = rows
        self.dimension = dimension
        self.clusters = clusters
        self.seed = seed
        self.queries = queries
        self.groundTruthK = groundTruthK
        self.normalize = normalize
    }

    /// Checks every parameter against its documented range.
    /// - Throws: ``StrataError/Code/invalidArgument`` naming the first parameter out of range.
    public func validate() throws(StrataError) {
        guard rows >= 1, rows <= Int(Int32.max) else { throw StrataError(.invalidArgument, "rows must be in 1...\(Int32.max), got \(rows)") }
        guard dimension >= 1, dimension <= SyntheticDataset.maxDimension else {
            throw StrataError(.invalidArgument, "dimension must be in 1...\(SyntheticDataset.maxDimension), got \(dimension)")
        }
        guard clusters >= 1, clusters <= rows else { throw StrataError(.invalidArgument, "clusters must be in 1...rows (\(rows)), got \(clusters)") }
        guard clusters * dimension <= 1 << 27 else {
            throw StrataError(.invalidArgument, "clusters x dimension must be at most \(1 << 27) (the centres are held in memory), got \(clusters * dimension)")
        }
        guard intrinsicDimension >= 0, intrinsicDimension <= SyntheticDataset.maxDimension else {
            throw StrataError(.invalidArgument, "intrinsic dimension must be in 0...\(SyntheticDataset.maxDimension), got \(intrinsicDimension)")
        }
        guard queries >= 1, queries <= 1_000_000 else { throw StrataError(.invalidArgument, "queries must be in 1...1000000, got \(queries)") }
        guard groundTruthK >= 1, groundTruthK <= min(rows, 10_000) else {
            throw StrataError(.invalidArgument, "ground-truth k must be in 1...min(rows, 10000) = \(min(rows, 10_000)), got \(groundTruthK)")
        }
    }
}

/// What ``SyntheticDataset/generate(_:directory:threads:progress:)`` wrote and how long it took.
public struct SyntheticDatasetSummary: Sendable, Equatable {
    /// The dataset's parameters.
    public var spec: SyntheticDatasetSpec
    /// Worker threads used.
    public var threads: Int
    /// Paths of base.fvecs, query.fvecs and groundtruth.ivecs.
    public var basePath: String, queryPath: String, groundTruthPath: String
    /// Size of base.fvecs in bytes.
    public var baseBytes: UInt64
    /// Wall seconds of the whole run.
    public var totalSeconds: Double
    /// Wall seconds spent in the ground-truth scan (part of ``totalSeconds``).
    public var groundTruthSeconds: Double
    /// Wall seconds spent writing base.fvecs (`pwrite` and the final fsync; part of ``totalSeconds``).
    public var writeSeconds: Double
}

/// Deterministic synthetic clustered datasets with exact L2 ground truth.
///
/// ``generate(_:directory:threads:progress:)`` writes `base.fvecs`, `query.fvecs` and
/// `groundtruth.ivecs` (the layout `strata bench --dataset` reads) in one streaming pass: base rows
/// are produced in batches of whole ``rowsPerStream``-row streams, each batch is scanned against all
/// queries for the ground truth while it is in memory, then appended to the file. Memory is bounded
/// by one batch (about 32 MiB, at least one stream per thread) plus `threads x queries x gtK` top-k
/// entries, whatever the number of rows.
///
/// The metric of the ground truth is squared Euclidean distance (with ``SyntheticDatasetSpec/normalize``
/// the rows are unit vectors, so the same order is the cosine order).
public enum SyntheticDataset {
    /// The seed used when none is given.
    public static let defaultSeed: UInt64 = 20_240_607
    /// Queries when none are given.
    public static let defaultQueries = 1000
    /// Ground-truth neighbours per query when none are given.
    public static let defaultGroundTruthK = 100
    /// The largest dimension accepted.
    public static let maxDimension = 4096
    /// Rows per random stream: fixed, since it decides which numbers each row gets.
    public static let rowsPerStream = 1024
    /// The cluster spread scale `s` (see the file comment): sigma_c = s * U[0.5, 1.5).
    public static let noiseScale = 1.0
    /// Standard deviation of the full-rank residual of the latent model, per coordinate.
    public static let residualScale = 0.05

    static let baseStreamTag: UInt64 = 0xBA5E_0000_0000_0001
    static let queryStreamTag: UInt64 = 0x0E47_0000_0000_0002
    static let modelStream: UInt64 = 0xC1_0057_E125

    /// Writes the dataset described by `spec` into `directory` (created if missing; existing files of
    /// the same names are replaced atomically, each via a temporary file, fsync and rename).
    ///
    /// - Parameters:
    ///   - spec: The dataset; validated first.
    ///   - directory: Output directory.
    ///   - threads: Worker threads (default: all online processors). Does not change the output.
    ///   - progress: Called on the calling thread after each batch with the base rows done so far.
    /// - Returns: Paths, sizes and timings.
    /// - Throws: ``StrataError/Code/invalidArgument`` for a bad spec or thread count;
    ///   ``StrataError/Code/io`` when a file cannot be written (no partial file is left at a final path).
    /// - Complexity: O(rows x dimension x queries) for the ground truth, O(rows x dimension) otherwise.
    public static func generate(_ spec: SyntheticDatasetSpec, directory: String, threads: Int? = nil,
                                progress: ((_ rowsDone: Int) -> Void)? = nil) throws(StrataError) -> SyntheticDatasetSummary {
        try spec.validate()
        let threads = threads ?? IndexParallel.defaultThreadCount
        guard threads >= 1, threads <= 1024 else { throw StrataError(.invalidArgument, "threads must be in 1...1024, got \(threads)") }
        let start = monotonicSeconds()
        try FileSystem.makeDirectory(directory)
        let d = spec.dimension
        let model = ClusterModel(spec: spec)

        // Queries: small (at most 1M x 4096 floats by validation, in practice 1000 x d), kept in memory.
        let queryPath = directory + "/query.fvecs"
        var queries = [Float](repeating: 0, count: spec.queries * d)
        queries.withUnsafeMutableBufferPointer { q in
            let streams = (spec.queries + rowsPerStream - 1) / rowsPerStream
            let out = SendablePointer(q.baseAddress!)
            IndexParallel.forEach(count: streams, threads: threads) { _, s in
                let first = s * rowsPerStream
                model.fillRows(tag: queryStreamTag, stream: s, count: min(rowsPerStream, spec.queries - first),
                               into: out.base + first * d, strideFloats: d)
            }
        }
        let queryWriter = try TexmexWriter(path: queryPath, dimension: d)
        try queries.withUnsafeBufferPointer { q in Result { () throws(StrataError) in try queryWriter.append(floatRows: q) } }.get()
        try queryWriter.commit()

        // Base rows in batches of whole streams, written as fvecs records in place.
        let basePath = directory + "/base.fvecs"
        let baseWriter = try TexmexWriter(path: basePath, dimension: d)
        let scan = ExactTopKScan(queries: queries, dimension: d, k: spec.groundTruthK, threads: threads)
        let recordFloats = d + 1
        let streamBytes = rowsPerStream * recordFloats * 4
        let streamsPerBatch = max(threads, (32 << 20) / streamBytes / threads * threads)
        let batchRows = streamsPerBatch * rowsPerStream
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: batchRows * recordFloats)
        defer { buffer.deallocate() }
        let header = Float(bitPattern: UInt32(bitPattern: Int32(d).littleEndian))
        var gtSeconds = 0.0, writeSeconds = 0.0
        var done = 0
        while done < spec.rows {
            let n = min(batchRows, spec.rows - done)
            let firstStream = done / rowsPerStream
            let out = SendablePointer(buffer)
            IndexParallel.forEach(count: (n + rowsPerStream - 1) / rowsPerStream, threads: threads) { _, s in
                let rows = min(rowsPerStream, n - s * rowsPerStream)
                let records = out.base + s * rowsPerStream * recordFloats
                for r in 0..<rows { records[r * recordFloats] = header }
                model.fillRows(tag: baseStreamTag, stream: firstStream + s, count: rows, into: records + 1, strideFloats: recordFloats)
            }
            let t0 = monotonicSeconds()
            scan.scan(rows: buffer + 1, strideFloats: recordFloats, count: n, firstRow: done)
            let t1 = monotonicSeconds()
            try baseWriter.append(encodedRecords: UnsafeRawBufferPointer(start: buffer, count: n * recordFloats * 4))
            writeSeconds += monotonicSeconds() - t1
            gtSeconds += t1 - t0
            done += n
            progress?(done)
        }
        let t2 = monotonicSeconds()
        try baseWriter.commit()
        writeSeconds += monotonicSeconds() - t2

        let t3 = monotonicSeconds()
        let truth = scan.result()
        gtSeconds += monotonicSeconds() - t3
        let gtPath = directory + "/groundtruth.ivecs"
        let gtWriter = try TexmexWriter(path: gtPath, dimension: spec.groundTruthK)
        for ids in truth { try gtWriter.append(int32Record: ids) }
        try gtWriter.commit()

        return SyntheticDatasetSummary(
            spec: spec, threads: threads, basePath: basePath, queryPath: queryPath, groundTruthPath: gtPath,
            baseBytes: UInt64(spec.rows) * UInt64(recordFloats * 4), totalSeconds: monotonicSeconds() - start,
            groundTruthSeconds: gtSeconds, writeSeconds: writeSeconds)
    }

    /// The exact `k` nearest base rows (squared L2; ties to the lower row) of every query, by a
    /// streaming multi-threaded scan of `base` (read once, in order, from its mapping).
    ///
    /// - Parameters:
    ///   - base: The rows to search.
    ///   - queries: The queries; same dimension as `base`.
    ///   - k: Neighbours per query, at least 1; a query gets `min(k, base.count)` row numbers.
    ///   - threads: Worker threads (default: all online processors). Does not change the result.
    /// - Returns: One array of row numbers per query, nearest first.
    /// - Throws: ``StrataError/Code/dimensionMismatch`` when the dimensions differ;
    ///   ``StrataError/Code/invalidArgument`` for `k` or `threads` below 1 or more than Int32.max rows.
    /// - Complexity: O(base.count x queries.count x dimension) time; O(threads x queries x k) memory
    ///   beyond the mapping.
    public static func exactGroundTruth(base: VectorFile, queries: VectorFile, k: Int,
                                        threads: Int? = nil) throws(StrataError) -> [[Int32]] {
        let threads = threads ?? IndexParallel.defaultThreadCount
        guard k >= 1, threads >= 1, threads <= 1024 else { throw StrataError(.invalidArgument, "k and threads must be positive") }
        guard base.count <= Int(Int32.max) else { throw StrataError(.invalidArgument, "more than \(Int32.max) base rows") }
        guard base.count == 0 || queries.count == 0 || base.dimension == queries.dimension else {
            throw StrataError(.dimensionMismatch, "base has \(base.dimension) dimensions, queries \(queries.dimension)")
        }
        guard queries.count > 0 else { return [] }
        guard base.count > 0 else { return Array(repeating: [], count: queries.count) }
        var q: [Float] = []
        q.reserveCapacity(queries.count * queries.dimension)
        for i in 0..<queries.count { queries.withRow(i) { q.append(contentsOf: $0) } }
        let scan = ExactTopKScan(queries: q, dimension: base.dimension, k: k, threads: threads)
        base.adviseSequential()
        let block = max(1, (32 << 20) / (base.dimension * 4))
        var at = 0
        while at < base.count {
            let n = min(block, base.count - at)
            base.withRows(at..<(at + n)) { p, stride in scan.scan(rows: p, strideFloats: stride, count: n, firstRow: at) }
            at += n
        }
        return scan.result()
    }
}

/// The cluster centres and spreads of a dataset, and the row generator.
struct ClusterModel: Sendable {
    let spec: SyntheticDatasetSpec
    /// `clusters x g` centre coordinates, g = the generating dimension (k for the latent model, else d).
    let centres: [Float]
    /// Per-cluster noise standard deviation.
    let sigmas: [Double]
    /// The latent model's `d x k` embedding (row-major), empty for the isotropic model.
    let projection: [Double]
    /// Dimension the clusters are drawn in.
    let generatingDimension: Int

    init(spec: SyntheticDatasetSpec) {
        self.spec = spec
        var rng = IndexRandom(seed: spec.seed, stream: SyntheticDataset.modelStream)
        let latent = spec.intrinsicDimension > 0 && spec.intrinsicDimension < spec.dimension
        let g = latent ? spec.intrinsicDimension : spec.dimension
        generatingDimension = g
        let n = spec.clusters * g
        var c = [Float](repeating: 0, count: n)
        var i = 0
        while i < n {
            let (a, b) = Self.gaussianPair(&rng)
            c[i] = Float(a)
            if i + 1 < n { c[i + 1] = Float(b) }
            i += 2
        }
        centres = c
        sigmas = (0..<spec.clusters).map { _ in SyntheticDataset.noiseScale * (0.5 + Self.unit(&rng)) }
        if latent {
            var prng = IndexRandom(seed: spec.seed, stream: SyntheticDataset.modelStream &+ 1)
            let scale = 1 / Double(g).squareRoot()
            var p = [Double](repeating: 0, count: spec.dimension * g)
            var k = 0
            while k < p.count {
                let (a, b) = Self.gaussianPair(&prng)
                p[k] = a * scale
                if k + 1 < p.count { p[k + 1] = b * scale }
                k += 2
            }
            projection = p
        } else {
            projection = []
        }
    }

    /// Uniform in [0, 1) with 53 bits.
    @inline(__always) static func unit(_ rng: inout IndexRandom) -> Double { Double(rng.next() >> 11) * 0x1p-53 }

    /// Two independent N(0, 1) values (Marsaglia's polar method: one `log` and one square root per pair).
    @inline(__always) static func gaussianPair(_ rng: inout IndexRandom) -> (Double, Double) {
        while true {
            let u = 2 * unit(&rng) - 1, v = 2 * unit(&rng) - 1
            let s = u * u + v * v
            if s > 0 && s < 1 {
                let m = (-2 * log(s) / s).squareRoot()
                return (u * m, v * m)
            }
        }
    }

    /// Writes `count` rows of random stream `stream` (rows `stream * rowsPerStream ...`) of the family
    /// `tag` to `out`, row r at `out + r * strideFloats`.
    func fillRows(tag: UInt64, stream: Int, count: Int, into out: UnsafeMutablePointer<Float>, strideFloats: Int) {
        var rng = IndexRandom(seed: spec.seed ^ tag, stream: UInt64(stream))
        let d = spec.dimension, g = generatingDimension
        var z = [Double](repeating: 0, count: g)
        centres.withUnsafeBufferPointer { centres in
            for r in 0..<count {
                let c = rng.below(spec.clusters)
                let sigma = sigmas[c]
                let centre = centres.baseAddress! + c * g
                let row = out + r * strideFloats
                if projection.isEmpty {
                    var j = 0
                    while j < d {
                        let (a, b) = Self.gaussianPair(&rng)
                        row[j] = Float(Double(centre[j]) + sigma * a)
                        if j + 1 < d { row[j + 1] = Float(Double(centre[j + 1]) + sigma * b) }
                        j += 2
                    }
                } else {
                    var j = 0
                    while j < g {
                        let (a, b) = Self.gaussianPair(&rng)
                        z[j] = Double(centre[j]) + sigma * a
                        if j + 1 < g { z[j + 1] = Double(centre[j + 1]) + sigma * b }
                        j += 2
                    }
                    j = 0
                    while j < d {
                        let (a, b) = Self.gaussianPair(&rng)
                        var x0 = SyntheticDataset.residualScale * a, x1 = SyntheticDataset.residualScale * b
                        for t in 0..<g { x0 += projection[j * g + t] * z[t] }
                        row[j] = Float(x0)
                        if j + 1 < d {
                            for t in 0..<g { x1 += projection[(j + 1) * g + t] * z[t] }
                            row[j + 1] = Float(x1)
                        }
                        j += 2
                    }
                }
                if spec.normalize {
                    var sum = 0.0
                    for j in 0..<d { sum += Double(row[j]) * Double(row[j]) }
                    let inv = sum > 0 ? 1 / sum.squareRoot() : 0
                    for j in 0..<d { row[j] = Float(Double(row[j]) * inv) }
                }
            }
        }
    }
}

/// Exact top-k by squared L2 of a fixed query set over rows streamed in blocks.
///
/// Rows of a block are split into items of ``rowsPerItem`` rows handed to the workers; a worker
/// computes the distances of its rows to a group of queries with `DistanceKernels.unsafeL2BlockTransposed`
/// (queries stored transposed and padded to a multiple of 16 columns, a group small enough to stay
/// in L2) and offers each distance below the query's current k-th best to that worker's bounded
/// max-heap. ``result()`` merges the workers' heaps. A distance depends only on the row and the query
/// (the kernel's per-lane order is fixed), and the order (distance, row) is total, so the result does
/// not depend on the number of threads or on the block sizes.
///
/// Unchecked `Sendable`: each worker writes only its own heap slots and scratch rows (indexed by its
/// worker number); `result()` reads them after `IndexParallel` has joined every worker.
final class ExactTopKScan: @unchecked Sendable {
    let dimension: Int
    let queryCount: Int
    let k: Int
    let workers: Int
    static let rowsPerItem = 64

    /// A group of queries, transposed: `qt[j * width + c]` is coordinate j of query `start + c`.
    struct Group { let start: Int; let count: Int; let width: Int; let qt: UnsafeMutablePointer<Float> }
    private var groups: [Group] = []
    private let maxWidth: Int
    // Per worker w and query q: heap entries at ((w * queryCount) + q) * k, the entry count and the
    // admission threshold (the heap's worst distance once full, else +infinity).
    private let heapDistance: UnsafeMutablePointer<Float>
    private let heapRow: UnsafeMutablePointer<UInt32>
    private let heapCount: UnsafeMutablePointer<Int>
    private let threshold: UnsafeMutablePointer<Float>
    private let scratch: UnsafeMutablePointer<Float>

    init(queries: [Float], dimension: Int, k: Int, threads: Int) {
        precondition(dimension >= 1 && queries.count % dimension == 0 && k >= 1 && threads >= 1)
        self.dimension = dimension
        queryCount = queries.count / dimension
        self.k = k
        workers = threads
        // Columns per group: the transposed group should stay within about 256 KiB (L2).
        let perGroup = max(16, min((queryCount + 15) / 16 * 16, (256 << 10) / (dimension * 4) / 16 * 16))
        var start = 0
        var widest = 16
        while start < queryCount {
            let count = min(perGroup, queryCount - start)
            let width = (count + 15) / 16 * 16
            let qt = UnsafeMutablePointer<Float>.allocate(capacity: width * dimension)
            qt.initialize(repeating: 0, count: width * dimension)
            for c in 0..<count { for j in 0..<dimension { qt[j * width + c] = queries[(start + c) * dimension + j] } }
            groups.append(Group(start: start, count: count, width: width, qt: qt))
            widest = max(widest, width)
            start += count
        }
        maxWidth = widest
        let slots = workers * queryCount
        heapDistance = .allocate(capacity: slots * k)
        heapRow = .allocate(capacity: slots * k)
        heapCount = .allocate(capacity: slots)
        heapCount.initialize(repeating: 0, count: slots)
        threshold = .allocate(capacity: slots)
        threshold.initialize(repeating: .infinity, count: slots)
        scratch = .allocate(capacity: workers * Self.rowsPerItem * maxWidth)
    }

    deinit {
        for g in groups { g.qt.deallocate() }
        heapDistance.deallocate(); heapRow.deallocate(); heapCount.deallocate(); threshold.deallocate(); scratch.deallocate()
    }

    /// Offers rows `firstRow ..< firstRow + count`, row i at `rows + i * strideFloats`.
    func scan(rows: UnsafePointer<Float>, strideFloats: Int, count: Int, firstRow: Int) {
        let items = (count + Self.rowsPerItem - 1) / Self.rowsPerItem
        let rowsBox = UncheckedBox(rows)
        IndexParallel.forEach(count: items, threads: workers) { worker, item in
            let lo = item * Self.rowsPerItem
            let n = min(Self.rowsPerItem, count - lo)
            self.scanItem(worker: worker, rows: rowsBox.value + lo * strideFloats, strideFloats: strideFloats, count: n,
                          firstRow: firstRow + lo)
        }
    }

    private func scanItem(worker: Int, rows: UnsafePointer<Float>, strideFloats: Int, count n: Int, firstRow: Int) {
        let out = scratch + worker * Self.rowsPerItem * maxWidth
        let slot0 = worker * queryCount
        for g in groups {
            DistanceKernels.unsafeL2BlockTransposed(rows: rows, rowStride: strideFloats, count: n, transposed: g.qt, dimension: dimension, width: g.width, into: out)
            for r in 0..<n {
                let o = out + r * g.width
                let row = UInt32(firstRow + r)
                let thresholds = threshold + slot0 + g.start
                for c in 0..<g.count where o[c] <= thresholds[c] {
                    offer(slot: slot0 + g.start + c, distance: o[c], row: row)
                }
            }
        }
    }

    /// Whether entry (d1, r1) ranks after (d2, r2).
    @inline(__always) private static func worse(_ d1: Float, _ r1: UInt32, than d2: Float, _ r2: UInt32) -> Bool {
        d1 > d2 || (d1 == d2 && r1 > r2)
    }

    @inline(__always) private func offer(slot: Int, distance: Float, row: UInt32) {
        let dist = heapDistance + slot * k, ids = heapRow + slot * k
        var n = heapCount[slot]
        if n < k {
            // Sift up.
            var i = n
            while i > 0 {
                let p = (i - 1) / 2
                guard Self.worse(distance, row, than: dist[p], ids[p]) else { break }
                dist[i] = dist[p]; ids[i] = ids[p]; i = p
            }
            dist[i] = distance; ids[i] = row
            n += 1
            heapCount[slot] = n
            if n == k { threshold[slot] = dist[0] }
            return
        }
        guard Self.worse(dist[0], ids[0], than: distance, row) else { return }
        // Replace the worst (the root) and sift down.
        var i = 0
        while true {
            let l = 2 * i + 1
            if l >= k { break }
            var child = l
            if l + 1 < k && Self.worse(dist[l + 1], ids[l + 1], than: dist[l], ids[l]) { child = l + 1 }
            guard Self.worse(dist[child], ids[child], than: distance, row) else { break }
            dist[i] = dist[child]; ids[i] = ids[child]; i = child
        }
        dist[i] = distance; ids[i] = row
        threshold[slot] = dist[0]
    }

    /// The merged top-k row numbers per query, nearest first.
    func result() -> [[Int32]] {
        var out: [[Int32]] = []
        out.reserveCapacity(queryCount)
        var entries: [(Float, UInt32)] = []
        for q in 0..<queryCount {
            entries.removeAll(keepingCapacity: true)
            for w in 0..<workers {
                let slot = w * queryCount + q
                for e in 0..<heapCount[slot] { entries.append((heapDistance[slot * k + e], heapRow[slot * k + e])) }
            }
            entries.sort { Self.worse($1.0, $1.1, than: $0.0, $0.1) }
            out.append(entries.prefix(k).map { Int32($0.1) })
        }
        return out
    }
}
