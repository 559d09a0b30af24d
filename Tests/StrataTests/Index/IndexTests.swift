import CStrataKernels
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

private func expectCode(_ code: StrataError.Code, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected \(code), nothing thrown", file: file, line: line)
    } catch let e as StrataError {
        XCTAssertEqual(e.code, code, "\(e)", file: file, line: line)
    } catch {
        XCTFail("unexpected \(error)", file: file, line: line)
    }
}

/// Builds graph + layout bytes for the tests.
private func buildLayout(_ data: [Float], count: Int, dim: Int, metric: DistanceMetric, params: VamanaParameters,
                         elementType: VectorElementType = .float32) throws -> (VamanaGraph, [UInt8]) {
    let graph = try data.withUnsafeBufferPointer {
        try VamanaBuilder.build(vectors: $0, count: count, dimension: dim, rowStride: dim, metric: metric, parameters: params)
    }
    var bytes: [UInt8] = []
    _ = try data.withUnsafeBufferPointer { v in
        try DiskGraphLayout.writeSectorLayout(graph: graph, vectors: v, dimension: dim, rowStride: dim,
                                              elementType: elementType, metric: metric) { bytes.append(contentsOf: $0) }
    }
    return (graph, bytes)
}

final class IndexQuantizerTests: XCTestCase {
    let n = 3000, dim = 32

    func testDefaultSubspaceCount() {
        XCTAssertEqual(ProductQuantizer.defaultSubspaceCount(dimension: 384), 96)
        XCTAssertEqual(ProductQuantizer.defaultSubspaceCount(dimension: 128), 32)
        XCTAssertEqual(ProductQuantizer.defaultSubspaceCount(dimension: 100), 25)
        XCTAssertEqual(ProductQuantizer.defaultSubspaceCount(dimension: 3), 1)
    }

    func testProductQuantizerRoundTripAndTables() throws {
        let data = clusteredData(count: n, dim: dim)
        let pq = try data.withUnsafeBufferPointer {
            try ProductQuantizer(training: $0, count: n, dimension: dim, rowStride: dim, subspaceCount: 8, sampleLimit: 2000, iterations: 6)
        }
        XCTAssertEqual(pq.codeSize, 8)
        let codes = try data.withUnsafeBufferPointer { try pq.encode(vectors: $0, count: n, rowStride: dim) }
        XCTAssertEqual(codes.count, n * 8)
        // Error bound: well below the data's per-row variance around the mean (~ dim * (9 + 1)).
        var mean = [Double](repeating: 0, count: dim)
        for i in 0..<n { for j in 0..<dim { mean[j] += Double(data[i * dim + j]) / Double(n) } }
        var variance = 0.0
        for i in 0..<n { for j in 0..<dim { let t = Double(data[i * dim + j]) - mean[j]; variance += t * t / Double(n) } }
        let mse = try data.withUnsafeBufferPointer { v in
            try codes.withUnsafeBytes { try pq.meanSquaredError(vectors: v, count: n, rowStride: dim, codes: $0) }
        }
        XCTAssertLessThan(mse, 0.25 * variance, "mse \(mse) variance \(variance)")
        XCTAssertGreaterThan(mse, 0)

        // Serialisation round trip.
        let bytes = pq.serialize()
        let back = try bytes.withUnsafeBytes { try ProductQuantizer(deserializing: $0) }
        XCTAssertEqual(back, pq)

        // ADC tables equal distances to the decoded vectors, for l2 / ip / cosine, and the C kernel equals
        // the plain sum.
        var table = [Float](repeating: 0, count: pq.distanceTableCount)
        let q = Array(data[5 * dim..<6 * dim])
        for metric in DistanceMetric.allCases {
            table.withUnsafeMutableBufferPointer { t in
                q.withUnsafeBufferPointer { pq.computeDistanceTable(query: $0.baseAddress!, metric: metric, into: t.baseAddress!) }
            }
            var ids = (0..<50).map { UInt32($0 * 7) }
            var out = [Float](repeating: 0, count: ids.count)
            table.withUnsafeBufferPointer { t in
                codes.withUnsafeBufferPointer { c in
                    ProductQuantizer.unsafeDistances(table: t.baseAddress!, codes: c.baseAddress!, codeSize: 8,
                                                     ids: &ids, count: ids.count, into: &out)
                }
            }
            for (k, id) in ids.enumerated() {
                let rec = codes.withUnsafeBufferPointer { pq.decode($0.baseAddress! + Int(id) * 8) }
                var expected: Float = 0
                switch metric {
                case .l2: for j in 0..<dim { expected += (q[j] - rec[j]) * (q[j] - rec[j]) }
                case .innerProduct: for j in 0..<dim { expected -= q[j] * rec[j] }
                case .cosine: for j in 0..<dim { expected -= q[j] * rec[j] }
                }
                var plain: Float = 0
                for s in 0..<8 { plain += table[s * 256 + Int(codes[Int(id) * 8 + s])] }
                XCTAssertEqual(out[k], expected, accuracy: 1e-3 * max(1, abs(expected)), "\(metric)")
                XCTAssertEqual(out[k], plain, accuracy: 1e-4 * max(1, abs(plain)))
            }
        }
    }

    /// Cosine searches rank codes by squared L2 (unit vectors): it charges each code word's error in
    /// length, which `1 - dot` ignores, and so finds more of the true neighbours in a PQ shortlist.
    func testCosineCodesAreRankedBySquaredL2() throws {
        XCTAssertEqual(ProductQuantizer.rankingMetric(for: .cosine), .l2)
        XCTAssertEqual(ProductQuantizer.rankingMetric(for: .l2), .l2)
        XCTAssertEqual(ProductQuantizer.rankingMetric(for: .innerProduct), .innerProduct)
        let count = 3000, d = 32, m = 4, queries = 40, shortlist = 40
        let data = clusteredData(count: count, dim: d, clusters: 64, seed: 11, normalise: true)
        let pq = try data.withUnsafeBufferPointer {
            try ProductQuantizer(training: $0, count: count, dimension: d, rowStride: d, subspaceCount: m, sampleLimit: 3000, iterations: 6, threads: 1)
        }
        let codes = try data.withUnsafeBufferPointer { try pq.encode(vectors: $0, count: count, rowStride: d, threads: 1) }
        var ids = (0..<count).map { UInt32($0) }
        var table = [Float](repeating: 0, count: pq.distanceTableCount)
        var pqDistance = [Float](repeating: 0, count: count)
        // Shortlist recall: how many of the exact top 10 are among the `shortlist` best by PQ.
        func recall(_ metric: DistanceMetric) -> Int {
            var found = 0
            for qi in 0..<queries {
                let q = Array(data[(qi * 61 % count) * d..<(qi * 61 % count + 1) * d])
                let exact = (0..<count).map { r in (1 - zip(q, data[r * d..<(r + 1) * d]).reduce(Float(0)) { $0 + $1.0 * $1.1 }, r) }
                let truth = Set(exact.sorted { $0 < $1 }.prefix(10).map(\.1))
                q.withUnsafeBufferPointer { pq.computeDistanceTable(query: $0.baseAddress!, metric: metric, into: &table) }
                ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: m, ids: &ids, count: count, into: &pqDistance)
                let listed = pqDistance.enumerated().sorted { ($0.element, $0.offset) < ($1.element, $1.offset) }.prefix(shortlist)
                found += listed.filter { truth.contains($0.offset) }.count
            }
            return found
        }
        let byL2 = recall(ProductQuantizer.rankingMetric(for: .cosine)), byDot = recall(.cosine)
        XCTAssertGreaterThan(byL2, byDot, "neighbours found in the shortlists: squared L2 \(byL2), 1 - dot \(byDot) of \(queries * 10)")
    }

    func testNearestKernelMatchesReference() {
        var rng = IndexRandom(seed: 3)
        for (d, k) in [(1, 1), (3, 17), (4, 256), (8, 40), (5, 33)] {
            let ct = (0..<(d * k)).map { _ in Float(rng.below(1000)) / 100 }
            let x = (0..<d).map { _ in Float(rng.below(1000)) / 100 }
            var best = 0
            var bestD = Float.infinity
            for c in 0..<k {
                var s: Float = 0
                for j in 0..<d { s += (x[j] - ct[j * k + c]) * (x[j] - ct[j * k + c]) }
                if s < bestD { bestD = s; best = c }
            }
            var dist: Float = 0
            let got = strata_nearest_transposed_f32(x, ct, d, k, &dist)
            XCTAssertEqual(dist, bestD, accuracy: 1e-3)
            if Int(got) != best { XCTAssertEqual(dist, bestD, accuracy: 1e-4, "tie expected") }
        }
    }

    func testProductQuantizerBadParameters() {
        let data = clusteredData(count: 300, dim: dim)
        data.withUnsafeBufferPointer { v in
            expectCode(.invalidArgument) { _ = try ProductQuantizer(training: v, count: 300, dimension: 32, rowStride: 32, subspaceCount: 0) }
            expectCode(.invalidArgument) { _ = try ProductQuantizer(training: v, count: 300, dimension: 32, rowStride: 32, subspaceCount: 5) }
            expectCode(.invalidArgument) { _ = try ProductQuantizer(training: v, count: 301, dimension: 32, rowStride: 32, subspaceCount: 8) }
            expectCode(.invalidArgument) { _ = try ProductQuantizer(training: v, count: 10, dimension: 32, rowStride: 16, subspaceCount: 8) }
        }
    }

    func testProductQuantizerRejectsBadBytes() throws {
        let data = clusteredData(count: 300, dim: 8)
        let pq = try data.withUnsafeBufferPointer {
            try ProductQuantizer(training: $0, count: 300, dimension: 8, rowStride: 8, subspaceCount: 4, iterations: 2)
        }
        let good = pq.serialize()
        // Every truncation throws.
        for cut in Swift.stride(from: 0, to: good.count, by: 13) {
            expectCode(.corrupt) { _ = try Array(good[0..<cut]).withUnsafeBytes { try ProductQuantizer(deserializing: $0) } }
        }
        // Trailing byte, bad magic, bad shape, huge dimension, non-finite centroid.
        expectCode(.corrupt) { _ = try (good + [0]).withUnsafeBytes { try ProductQuantizer(deserializing: $0) } }
        var bad = good; bad[0] ^= 1
        expectCode(.corrupt) { _ = try bad.withUnsafeBytes { try ProductQuantizer(deserializing: $0) } }
        bad = good; bad[16] = 3 // M = 3 does not divide 8
        expectCode(.corrupt) { _ = try bad.withUnsafeBytes { try ProductQuantizer(deserializing: $0) } }
        bad = good; bad[12] = 0xFF; bad[13] = 0xFF; bad[14] = 0xFF; bad[15] = 0xFF
        expectCode(.corrupt) { _ = try bad.withUnsafeBytes { try ProductQuantizer(deserializing: $0) } }
        bad = good; bad[32] = 0; bad[33] = 0; bad[34] = 0xC0; bad[35] = 0x7F // NaN
        expectCode(.corrupt) { _ = try bad.withUnsafeBytes { try ProductQuantizer(deserializing: $0) } }
        // Random garbage never traps.
        var rng = IndexRandom(seed: 11)
        for len in [0, 1, 7, 31, 32, 40, 100, 8224] {
            var g = (0..<len).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if len >= 8 { for (i, b) in "STRATAPQ".utf8.enumerated() { g[i] = b } }
            XCTAssertThrowsError(try g.withUnsafeBytes { try ProductQuantizer(deserializing: $0) })
        }
    }
}

final class IndexGraphTests: XCTestCase {
    let n = 2000, dim = 32

    var params: VamanaParameters {
        var p = VamanaParameters(maxDegree: 16, buildListSize: 40, alpha: 1.2, passes: 2, seed: 42)
        p.initialDegree = 8
        return p
    }

    func testGraphInvariantsAndRecall() throws {
        let all = clusteredData(count: n + 50, dim: dim)
        let data = Array(all[0..<(n * dim)])
        let queries = Array(all[(n * dim)...])
        let (graph, bytes) = try buildLayout(data, count: n, dim: dim, metric: .l2, params: params)
        XCTAssertEqual(graph.count, n)
        for i in 0..<n {
            let nb = graph.neighbors(of: i)
            XCTAssertLessThanOrEqual(nb.count, 16)
            XCTAssertFalse(nb.contains(UInt32(i)), "self loop at \(i)")
            XCTAssertEqual(Set(nb).count, nb.count, "duplicate edge at \(i)")
        }
        try bytes.withUnsafeBytes { raw in
            let view = try DiskGraphView(bytes: raw)
            XCTAssertEqual(view.count, n)
            XCTAssertEqual(view.medoid, graph.medoid)
            let report = view.validate()
            XCTAssertTrue(report.isValid, "\(report.problems)")
            XCTAssertEqual(report.unreachableCount, 0)
            XCTAssertEqual(report.degreeHistogram.reduce(0, +), n)
            XCTAssertEqual(view.neighbors(of: 7).map { Array($0) }, Array(graph.neighbors(of: 7)))
            XCTAssertEqual(view.vector(of: 7), Array(data[7 * dim..<8 * dim]))
            XCTAssertNil(view.vector(of: n))

            let pq = try data.withUnsafeBufferPointer {
                try ProductQuantizer(training: $0, count: n, dimension: dim, rowStride: dim, subspaceCount: 16, sampleLimit: 2000, iterations: 6)
            }
            let codes = try data.withUnsafeBufferPointer { try pq.encode(vectors: $0, count: n, rowStride: dim) }
            try codes.withUnsafeBytes { c in
                let searcher = try BeamSearcher(graph: view, quantizer: pq, codes: c)
                var hits = 0
                for qi in 0..<50 {
                    let q = Array(queries[qi * dim..<(qi + 1) * dim])
                    let exact = try searcher.exactSearch(q, k: 10)
                    let approx = try searcher.search(q, parameters: BeamSearchParameters(k: 10, listSize: 40))
                    XCTAssertEqual(approx.count, 10)
                    for i in 1..<approx.count { XCTAssertLessThanOrEqual(approx[i - 1].distance, approx[i].distance) }
                    let truth = Set(exact.map(\.row))
                    hits += approx.filter { truth.contains($0.row) }.count
                    // Reported distances are exact.
                    let v = data[approx[0].row * dim..<(approx[0].row + 1) * dim]
                    let d = zip(q, v).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                    XCTAssertEqual(approx[0].distance, d, accuracy: 1e-3 * max(1, d))
                }
                let recall = Double(hits) / 500
                XCTAssertGreaterThanOrEqual(recall, 0.9, "recall@10 \(recall)")
                // Beam width 4 works too.
                let q = Array(queries[0..<dim])
                let w4 = try searcher.search(q, parameters: BeamSearchParameters(k: 5, listSize: 30, beamWidth: 4))
                XCTAssertEqual(w4.count, 5)
                expectCode(.dimensionMismatch) { _ = try searcher.search([1, 2], parameters: BeamSearchParameters()) }
                expectCode(.invalidArgument) { _ = try searcher.search(q, parameters: BeamSearchParameters(k: 10, listSize: 5)) }
            }
        }
    }

    func testDeterministicAcrossThreadCounts() throws {
        let data = clusteredData(count: 1200, dim: 16, normalise: true)
        var p1 = params
        p1.threads = 1
        var p2 = params
        p2.threads = 3
        let (_, a) = try buildLayout(data, count: 1200, dim: 16, metric: .cosine, params: p1)
        let (_, b) = try buildLayout(data, count: 1200, dim: 16, metric: .cosine, params: p2)
        XCTAssertEqual(a, b)
        var p3 = params
        p3.seed = 43
        let (_, c) = try buildLayout(data, count: 1200, dim: 16, metric: .cosine, params: p3)
        XCTAssertNotEqual(a, c)
        let pqA = try data.withUnsafeBufferPointer {
            try ProductQuantizer(training: $0, count: 1200, dimension: 16, rowStride: 16, subspaceCount: 4, iterations: 3, threads: 1)
        }
        let pqB = try data.withUnsafeBufferPointer {
            try ProductQuantizer(training: $0, count: 1200, dimension: 16, rowStride: 16, subspaceCount: 4, iterations: 3, threads: 2)
        }
        XCTAssertEqual(pqA.serialize(), pqB.serialize())
    }

    /// The build navigates on a float16 copy of the rows: a strided input (junk between rows) must give
    /// the same graph as the dense one, on any thread count, and the same again on a rebuild.
    func testFloat16NavigationIsDeterministicForStridedInput() throws {
        let count = 1500, d = 24, stride = 29
        let dense = clusteredData(count: count, dim: d, seed: 21, normalise: true)
        var strided = [Float](repeating: 9.5, count: count * stride)
        for i in 0..<count { for j in 0..<d { strided[i * stride + j] = dense[i * d + j] } }
        func build(_ v: [Float], _ rowStride: Int, threads: Int) throws -> VamanaGraph {
            var p = params
            p.threads = threads
            return try v.withUnsafeBufferPointer {
                try VamanaBuilder.build(vectors: $0, count: count, dimension: d, rowStride: rowStride, metric: .cosine, parameters: p)
            }
        }
        let a = try build(dense, d, threads: 1)
        let b = try build(strided, stride, threads: 2)
        let c = try build(strided, stride, threads: 3)
        XCTAssertEqual(a.medoid, b.medoid)
        XCTAssertEqual(a.degrees, b.degrees)
        XCTAssertEqual(a.neighbors, b.neighbors)
        XCTAssertEqual(b.neighbors, c.neighbors)
        XCTAssertNoThrow(try VamanaGraph(count: count, maxDegree: a.maxDegree, medoid: a.medoid, degrees: a.degrees, neighbors: a.neighbors))
    }

    func testBadParameters() {
        let data = clusteredData(count: 100, dim: 8)
        data.withUnsafeBufferPointer { v in
            func build(_ p: VamanaParameters) throws {
                _ = try VamanaBuilder.build(vectors: v, count: 100, dimension: 8, rowStride: 8, metric: .l2, parameters: p)
            }
            expectCode(.invalidArgument) { try build(VamanaParameters(maxDegree: 0, buildListSize: 10)) }
            expectCode(.invalidArgument) { try build(VamanaParameters(maxDegree: 16, buildListSize: 8)) }
            expectCode(.invalidArgument) { try build(VamanaParameters(maxDegree: 8, buildListSize: 10, alpha: 0.5)) }
            expectCode(.invalidArgument) { try build(VamanaParameters(maxDegree: 8, buildListSize: 10, passes: 0)) }
            expectCode(.invalidArgument) {
                _ = try VamanaBuilder.build(vectors: v, count: 101, dimension: 8, rowStride: 8, metric: .l2)
            }
        }
        expectCode(.invalidArgument) { try BeamSearchParameters(k: 0, listSize: 10).validate() }
        expectCode(.invalidArgument) { try BeamSearchParameters(k: 10, listSize: 9).validate() }
        expectCode(.invalidArgument) { try BeamSearchParameters(k: 1, listSize: 9, beamWidth: 0).validate() }
    }

    func testTinyGraphsAndFloat16() throws {
        for count in [0, 1, 2, 5] {
            let data = clusteredData(count: max(count, 1), dim: 4)
            let (graph, bytes) = try buildLayout(Array(data.prefix(count * 4)), count: count, dim: 4, metric: .l2,
                                                 params: VamanaParameters(maxDegree: 4, buildListSize: 8))
            XCTAssertEqual(graph.count, count)
            try bytes.withUnsafeBytes { raw in
                let view = try DiskGraphView(bytes: raw)
                let rep = view.validate()
                XCTAssertTrue(rep.isValid)
                XCTAssertEqual(rep.unreachableCount, 0)
            }
        }
        // float16 records, and a record bigger than a sector (dim 1100 float32).
        let data = clusteredData(count: 300, dim: 48, normalise: true)
        let (_, bytes) = try buildLayout(data, count: 300, dim: 48, metric: .cosine,
                                         params: VamanaParameters(maxDegree: 12, buildListSize: 24), elementType: .float16)
        try bytes.withUnsafeBytes { raw in
            let view = try DiskGraphView(bytes: raw)
            XCTAssertEqual(view.elementType, .float16)
            let v = view.vector(of: 3)!
            for j in 0..<48 { XCTAssertEqual(v[j], data[3 * 48 + j], accuracy: 1e-3) }
            let pq = try data.withUnsafeBufferPointer {
                try ProductQuantizer(training: $0, count: 300, dimension: 48, rowStride: 48, subspaceCount: 12, iterations: 3)
            }
            let codes = try data.withUnsafeBufferPointer { try pq.encode(vectors: $0, count: 300, rowStride: 48) }
            try codes.withUnsafeBytes { c in
                let s = try BeamSearcher(graph: view, quantizer: pq, codes: c)
                let hits = try s.search(Array(data[3 * 48..<4 * 48]), parameters: BeamSearchParameters(k: 3, listSize: 20))
                XCTAssertEqual(hits.first?.row, 3)
                XCTAssertEqual(hits.first!.distance, 0, accuracy: 1e-3)
            }
        }
        let big = clusteredData(count: 20, dim: 1100)
        let (_, bigBytes) = try buildLayout(big, count: 20, dim: 1100, metric: .l2, params: VamanaParameters(maxDegree: 4, buildListSize: 8))
        XCTAssertEqual(bigBytes.count, 4096 + 20 * 2 * 4096)
        try bigBytes.withUnsafeBytes { raw in
            let view = try DiskGraphView(bytes: raw)
            XCTAssertEqual(view.geometry.nodesPerSector, 0)
            XCTAssertEqual(view.geometry.sectorsPerNode, 2)
            XCTAssertEqual(view.vector(of: 19), Array(big[19 * 1100..<20 * 1100]))
        }
    }

    func testCorruptLayoutIsRejectedOrContained() throws {
        let data = clusteredData(count: 200, dim: 8)
        let (_, good) = try buildLayout(data, count: 200, dim: 8, metric: .l2, params: VamanaParameters(maxDegree: 8, buildListSize: 16))
        func open(_ b: [UInt8]) throws { _ = try b.withUnsafeBytes { try DiskGraphView(bytes: $0) } }
        XCTAssertNoThrow(try open(good))
        XCTAssertThrowsError(try open(Array(good.dropLast(4096))))
        XCTAssertThrowsError(try open(Array(good.prefix(100))))
        XCTAssertThrowsError(try open(good + [UInt8](repeating: 0, count: 4096)))
        // Each header field mutated.
        for offset in [0, 8, 12, 16, 19, 24, 28, 29, 30, 31, 32, 36, 40, 44, 50, 55, 56, 64, 4095] {
            var bad = good
            bad[offset] ^= 0x5A
            XCTAssertThrowsError(try open(bad), "offset \(offset)")
        }
        // A corrupt record (degree and ids out of range) is reported by validate and tolerated by search.
        var bad = good
        let geo = try DiskGraphLayout.Geometry(count: 200, dimension: 8, elementType: .float32, maxDegree: 8)
        let rec = geo.slotOffset(5)
        bad[rec + geo.vectorBytes] = 200 // degree 200 > R
        bad[rec + geo.vectorBytes + 4] = 0xFF; bad[rec + geo.vectorBytes + 5] = 0xFF // id 65535 >= count
        try bad.withUnsafeBytes { raw in
            let view = try DiskGraphView(bytes: raw)
            let rep = view.validate()
            XCTAssertFalse(rep.isValid)
            XCTAssertGreaterThanOrEqual(rep.problemCount, 2)
            let pq = try data.withUnsafeBufferPointer {
                try ProductQuantizer(training: $0, count: 200, dimension: 8, rowStride: 8, subspaceCount: 2, iterations: 2)
            }
            let codes = try data.withUnsafeBufferPointer { try pq.encode(vectors: $0, count: 200, rowStride: 8) }
            try codes.withUnsafeBytes { c in
                let s = try BeamSearcher(graph: view, quantizer: pq, codes: c)
                for i in 0..<20 {
                    _ = try s.search(Array(data[i * 8..<(i + 1) * 8]), parameters: BeamSearchParameters(k: 5, listSize: 200))
                }
                XCTAssertThrowsError(try BeamSearcher(graph: view, quantizer: pq, codes: UnsafeRawBufferPointer(rebasing: c.dropLast())))
            }
        }
    }
}
