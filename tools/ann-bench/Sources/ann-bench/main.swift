// ann-bench: builds PQ codes and a Vamana graph over a texmex dataset, writes the sector layout to a
// temporary file, maps it, and sweeps the search list size L reporting recall@10 and single-thread QPS.
//
//   .build/release/ann-bench [--dataset DIR] [--R 64] [--Lb 100] [--alpha 1.2] [--passes 1]
//       [--init-degree 16] [--M 96] [--W 1] [--Ls 10,20,...] [--threads N] [--f16] [--cache DIR]
//       [--queries N] [--k 10]
//
// --cache DIR keeps the built graph section and codes between runs (keyed by the parameters).
import Foundation
import Strata
#if canImport(Glibc)
import Glibc
#endif

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU time of the calling thread: with other processes on the machine, this is the better QPS estimate.
func cpuNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU seconds of the whole process (all threads, user + system).
func processCPU() -> Double {
    var ru = rusage()
    getrusage(RUSAGE_SELF.rawValue, &ru)
    return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) * 1e-6 + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) * 1e-6
}

func fail(_ s: String) -> Never {
    fputs("ann-bench: \(s)\n", stderr)
    exit(2)
}

/// A read-only mapping of a whole file.
struct Mapping {
    let base: UnsafeRawPointer
    let size: Int
    init(path: String, populate: Bool = true) {
        let fd = open(path, O_RDONLY)
        if fd < 0 { fail("cannot open \(path)") }
        var st = stat()
        fstat(fd, &st)
        size = Int(st.st_size)
        let p = mmap(nil, max(size, 1), PROT_READ, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0)
        if p == MAP_FAILED { fail("mmap \(path) failed") }
        close(fd)
        base = UnsafeRawPointer(p!)
    }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }
}

/// texmex vectors: `count` rows of `dim` values, row i starting at 4 + i * (4 + 4 dim) bytes.
func vecsShape(_ m: Mapping) -> (count: Int, dim: Int) {
    let dim = Int(m.base.loadUnaligned(as: Int32.self))
    let count = m.size / (4 + 4 * dim)
    if dim <= 0 || count * (4 + 4 * dim) != m.size { fail("not a vecs file") }
    return (count, dim)
}

func rssAnonKB() -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return -1 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, 512, f) != nil {
        let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if s.hasPrefix("RssAnon:") {
            return Int(s.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? -1
        }
    }
    return -1
}

// ---- arguments
var opts: [String: String] = [:]
var flags = Set<String>()
do {
    var it = CommandLine.arguments.dropFirst().makeIterator()
    while let a = it.next() {
        guard a.hasPrefix("--") else { fail("unexpected \(a)") }
        let key = String(a.dropFirst(2))
        if key == "f16" || key == "help" || key == "no-validate" || key == "build-only" { flags.insert(key); continue }
        guard let v = it.next() else { fail("\(a) needs a value") }
        opts[key] = v
    }
}
if flags.contains("build-only") { }
if flags.contains("help") {
    print("usage: ann-bench [--dataset DIR] [--R 64] [--Lb 100] [--alpha 1.2] [--passes 1] [--init-degree 16] [--M 96] [--W 1] [--Ls 10,20,40] [--threads N] [--f16] [--cache DIR] [--queries N] [--k 10] [--metric cosine]")
    exit(0)
}
func intOpt(_ k: String, _ d: Int) -> Int {
    guard let s = opts[k] else { return d }
    guard let v = Int(s) else { fail("bad --\(k)") }
    return v
}
let dir = opts["dataset"] ?? "/work/shared/datasets/pypi-minilm-100k"
var params = VamanaParameters()
params.maxDegree = intOpt("R", 64)
params.buildListSize = intOpt("Lb", 100)
params.alpha = Float(opts["alpha"] ?? "1.2") ?? 1.2
params.passes = intOpt("passes", 1)
params.initialDegree = intOpt("init-degree", params.initialDegree)
if let t = opts["threads"] { params.threads = Int(t) }
if let b = opts["batch"] { params.batchSize = Int(b) }
if let s = opts["slack"] { params.slack = Float(s) ?? 0.3 }
guard let metric = DistanceMetric(name: opts["metric"] ?? "cosine") else { fail("bad --metric") }
let beamWidth = intOpt("W", 1)
let k = intOpt("k", 10)
let elementType: VectorElementType = flags.contains("f16") ? .float16 : .float32
let ls = (opts["Ls"] ?? "10,15,20,25,30,40,50,60,80,100,150").split(separator: ",").compactMap { Int($0) }

// ---- data (mapped: the base vectors are file-backed, not anonymous memory)
let baseMap = Mapping(path: dir + "/base.fvecs")
let (nAll, dim) = vecsShape(baseMap)
let n = min(nAll, intOpt("n", nAll))
let queryMap = Mapping(path: dir + "/query.fvecs")
let (nqAll, qdim) = vecsShape(queryMap)
if qdim != dim { fail("query dimension \(qdim) != base \(dim)") }
let nq = min(nqAll, intOpt("queries", nqAll))
let gtMap = Mapping(path: dir + "/groundtruth.ivecs")
let (ngt, gtk) = vecsShape(gtMap)
if ngt < nq || gtk < k { fail("ground truth too small") }
let stride = dim + 1
let vectors = UnsafeBufferPointer(start: baseMap.base.assumingMemoryBound(to: Float.self) + 1, count: n * stride - 1)
let m = intOpt("M", ProductQuantizer.defaultSubspaceCount(dimension: dim))
print("dataset \(dir): \(n) x \(dim), \(nq) queries; metric \(metric); R \(params.maxDegree) Lb \(params.buildListSize) alpha \(params.alpha) passes \(params.passes) init \(params.initialDegree) M \(m) W \(beamWidth) \(elementType)")

let cacheDir = opts["cache"]
let key = "n\(n)-R\(params.maxDegree)-L\(params.buildListSize)-a\(params.alpha)-p\(params.passes)-i\(params.initialDegree)-b\(params.batchSize ?? 0)-s\(params.slack)-\(elementType)-\(metric)"
let graphPath = cacheDir.map { "\($0)/graph-\(key).bin" } ?? "/tmp/ann-bench-\(getpid()).graph"
let pqPath = cacheDir.map { "\($0)/pq-M\(m)-n\(n).bin" }
let codesPath = cacheDir.map { "\($0)/codes-M\(m)-n\(n).bin" }
func exists(_ p: String?) -> Bool { p.map { access($0, F_OK) == 0 } ?? false }
func writeFile(_ path: String, _ bytes: [UInt8]) {
    let f = fopen(path, "wb")!
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}
func readFile(_ path: String) -> [UInt8] {
    let mp = Mapping(path: path)
    return Array(mp.bytes)
}

// ---- PQ
var t0 = now()
let pqCPU0 = processCPU()
let pq: ProductQuantizer
var codes: [UInt8]
if exists(pqPath) && exists(codesPath) {
    pq = try readFile(pqPath!).withUnsafeBytes { try ProductQuantizer(deserializing: $0) }
    codes = readFile(codesPath!)
    print(String(format: "pq: loaded from cache (M %d)", pq.subspaceCount))
} else {
    pq = try ProductQuantizer(training: vectors, count: n, dimension: dim, rowStride: stride, subspaceCount: m, threads: params.threads)
    let tTrain = now() - t0
    codes = try pq.encode(vectors: vectors, count: n, rowStride: stride, threads: params.threads)
    print(String(format: "pq: train %.2f s, encode %.2f s (M %d, %d code bytes), CPU %.2f s", tTrain, now() - t0 - tTrain, m, codes.count, processCPU() - pqCPU0))
    if let p = pqPath { writeFile(p, pq.serialize()); writeFile(codesPath!, codes) }
}
let pqSeconds = now() - t0

// ---- graph
var buildSeconds = 0.0
if !exists(cacheDir == nil ? nil : graphPath) {
    t0 = now()
    let c0 = processCPU()
    let graph = try VamanaBuilder.build(vectors: vectors, count: n, dimension: dim, rowStride: stride, metric: metric, parameters: params)
    buildSeconds = now() - t0
    print(String(format: "graph: build wall %.2f s, CPU %.2f s", buildSeconds, processCPU() - c0))
    let t1 = now()
    guard let f = fopen(graphPath + ".tmp", "wb") else { fail("cannot create \(graphPath)") }
    let geo = try DiskGraphLayout.writeSectorLayout(graph: graph, vectors: vectors, dimension: dim, rowStride: stride,
                                                    elementType: elementType, metric: metric) { chunk in
        if fwrite(chunk.baseAddress, 1, chunk.count, f) != chunk.count { fail("short write") }
    }
    fclose(f)
    rename(graphPath + ".tmp", graphPath)
    print(String(format: "graph: build %.2f s, layout write %.2f s, %d bytes (%d nodes/sector, record %d B)",
                 buildSeconds, now() - t1, geo.totalBytes, geo.nodesPerSector, geo.recordSize))
} else {
    print("graph: loaded from cache \(graphPath)")
}
if flags.contains("build-only") { if cacheDir == nil { unlink(graphPath) }; exit(0) }
let graphMap = Mapping(path: graphPath)
let view = try DiskGraphView(bytes: graphMap.bytes)
if !flags.contains("no-validate") {
    let t2 = now()
    let rep = view.validate()
    let avg = Double(rep.edgeCount) / Double(max(1, rep.count))
    print(String(format: "validate: %.2f s, avg degree %.1f, unreachable %d, problems %d, medoid %d",
                 now() - t2, avg, rep.unreachableCount, rep.problemCount, rep.medoid))
}

// ---- queries (copied densely) and ground truth
var queries = [Float](repeating: 0, count: nq * dim)
for i in 0..<nq {
    let src = queryMap.base.assumingMemoryBound(to: Float.self) + 1 + i * stride
    for j in 0..<dim { queries[i * dim + j] = src[j] }
}
var gt = [Set<Int>]()
for i in 0..<nq {
    let src = gtMap.base.assumingMemoryBound(to: Int32.self) + 1 + i * (gtk + 1)
    gt.append(Set((0..<k).map { Int(src[$0]) }))
}

let store = try codes.withUnsafeBytes { try ResidentCodes(copying: $0, count: n, codeSize: pq.codeSize) }
codes = []  // only the resident copy stays
let searcher = try BeamSearcher(graph: view, quantizer: pq, codes: store)
print("rss_anon_mb after open: \(String(format: "%.1f", Double(rssAnonKB()) / 1024)) (codes \(store.residentBytes / 1024) KiB)")
print(" L     recall@10      QPS   cpuQPS   hops  reads  pq/query  us/query")
var best95 = 0.0, best99 = 0.0
for l in ls {
    let sp = BeamSearchParameters(k: k, listSize: max(l, k), beamWidth: beamWidth)
    // warm-up pass (page cache, branch predictors), then the timed pass
    var hits = 0, hops = 0, reads = 0, pqd = 0
    queries.withUnsafeBufferPointer { qb in
        for i in 0..<min(nq, 200) { _ = searcher.search(unchecked: qb.baseAddress! + i * dim, sp) }
    }
    let ts = now()
    let cs = cpuNow()
    var results: [[(row: Int, distance: Float)]] = []
    results.reserveCapacity(nq)
    queries.withUnsafeBufferPointer { qb in
        for i in 0..<nq {
            results.append(searcher.search(unchecked: qb.baseAddress! + i * dim, sp))
            hops += searcher.lastStats.hops
            reads += searcher.lastStats.recordsRead
            pqd += searcher.lastStats.pqDistances
        }
    }
    let el = now() - ts
    let cpu = cpuNow() - cs
    for i in 0..<nq { hits += results[i].filter { gt[i].contains($0.row) }.count }
    let recall = Double(hits) / Double(nq * k)
    let qps = Double(nq) / el
    if recall >= 0.95 { best95 = max(best95, qps) }
    if recall >= 0.99 { best99 = max(best99, qps) }
    let hq = Double(hops) / Double(nq), rq = Double(reads) / Double(nq), pq = Double(pqd) / Double(nq)
    let us = el / Double(nq) * 1e6
    let cpuQps = Double(nq) / cpu
    print(String(format: "%3d   %.4f   %8.0f  %8.0f  %5.1f  %5.1f  %8.0f  %7.1f", l, recall, qps, cpuQps, hq, rq, pq, us))
}
print("rss_anon_mb after sweep: \(String(format: "%.1f", Double(rssAnonKB()) / 1024))")
print(String(format: "summary: build_seconds %.1f (graph) + %.1f (pq), best QPS at recall>=0.95: %.0f, at >=0.99: %.0f",
             buildSeconds, pqSeconds, best95, best99))
if cacheDir == nil { unlink(graphPath) }
