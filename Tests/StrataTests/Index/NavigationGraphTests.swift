// The navigation graph over sampled rows: its budget, its walk (against a brute-force scan of the
// sample by the same ADC distances), and what it changes in a beam search: fewer records read for
// the same answers' quality, over the mapping and through a segment opened with it.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class NavigationGraphTests: StrataTestCase {
    let n = 12_000, dim = 32

    private struct Fixture {
        let data: [Float]
        let queries: [Float]
        let pq: ProductQuantizer
        let codes: ResidentCodes
        let graph: VamanaGraph
        let layout: [UInt8]
    }

    private func fixture() throws -> Fixture {
        let all = clusteredData(count: n + 100, dim: dim, clusters: 64, seed: 31)
        let data = Array(all[0..<(n * dim)])
        let queries = Array(all[(n * dim)...])
        let pq = try data.withUnsafeBufferPointer {
            try ProductQuantizer(training: $0, count: n, dimension: dim, rowStride: dim, subspaceCount: 16, sampleLimit: 4000, iterations: 6)
        }
        let codes = try data.withUnsafeBufferPointer { try pq.encode(vectors: $0, count: n, rowStride: dim) }
        let resident = try codes.withUnsafeBytes { try ResidentCodes(copying: $0, count: n, codeSize: pq.codeSize) }
        let graph = try data.withUnsafeBufferPointer {
            try VamanaBuilder.build(vectors: $0, count: n, dimension: dim, rowStride: dim, metric: .l2,
                                    parameters: VamanaParameters(maxDegree: 16, buildListSize: 32))
        }
        var layout: [UInt8] = []
        _ = try data.withUnsafeBufferPointer { v in
            try DiskGraphLayout.writeSectorLayout(graph: graph, vectors: v, dimension: dim, rowStride: dim,
                                                  elementType: .float32, metric: .l2) { layout.append(contentsOf: $0) }
        }
        return Fixture(data: data, queries: queries, pq: pq, codes: resident, graph: graph, layout: layout)
    }

    func testSampleSizeFollowsTheBudget() {
        let per = NavigationGraph.bytesPerNode
        XCTAssertEqual(NavigationGraph.sampleCount(rowCount: 100_000, dimension: 32, budgetBytes: 1000 * per), 1000)
        // Half the rows at most; nothing below 256 rows; nothing for a zero or negative budget.
        XCTAssertEqual(NavigationGraph.sampleCount(rowCount: 1000, dimension: 32, budgetBytes: 1 << 30), 500)
        XCTAssertEqual(NavigationGraph.sampleCount(rowCount: 100_000, dimension: 32, budgetBytes: 255 * per), 0)
        XCTAssertEqual(NavigationGraph.sampleCount(rowCount: 100_000, dimension: 32, budgetBytes: 0), 0)
        XCTAssertEqual(NavigationGraph.sampleCount(rowCount: 100_000, dimension: 32, budgetBytes: -5), 0)
        XCTAssertEqual(NavigationGraph.sampleCount(rowCount: 0, dimension: 32, budgetBytes: 1 << 20), 0)
        // The decoded copy of the build is bounded whatever the budget.
        let wide = NavigationGraph.sampleCount(rowCount: 10_000_000, dimension: 4096, budgetBytes: 1 << 40)
        XCTAssertEqual(wide, NavigationGraph.buildBytesLimit / (4 * 4096 + 2 * 4096))
    }

    func testWalkFindsTheNearestSampledRows() throws {
        let f = try fixture()
        let budget = 1500 * NavigationGraph.bytesPerNode
        let nav = try XCTUnwrap(NavigationGraph.build(quantizer: f.pq, codes: f.codes.bytes, rowCount: n, medoid: f.graph.medoid,
                                                      budgetBytes: budget, threads: 2))
        XCTAssertEqual(nav.count, 1500)
        XCTAssertLessThanOrEqual(nav.residentBytes, budget)
        let sampled = (0..<nav.count).map { Int(nav.rows[$0]) }
        XCTAssertEqual(Int(nav.rows[nav.entry]), f.graph.medoid)
        XCTAssertEqual(Set(sampled).count, nav.count, "a row sampled twice")
        XCTAssertTrue(sampled.allSatisfy { $0 >= 0 && $0 < n })

        let table = UnsafeMutablePointer<Float>.allocate(capacity: f.pq.distanceTableCount)
        defer { table.deallocate() }
        var scratch = NavigationScratch()
        defer { scratch.deallocate() }
        let codes = f.codes.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var exactTop = 0
        let queries = f.queries.count / dim
        for qi in 0..<queries {
            try f.queries.withUnsafeBufferPointer { q in
                f.pq.computeDistanceTable(query: q.baseAddress! + qi * dim, metric: .l2, into: table)
                let found = nav.nearest(table: table, codes: codes, codeSize: f.pq.codeSize, listSize: 16, &scratch)
                XCTAssertEqual(found, 16)
                let rows = (0..<found).map { scratch.nodes[$0] }
                let dists = (0..<found).map { scratch.dists[$0] }
                XCTAssertEqual(dists, dists.sorted(), "walk results out of order")
                XCTAssertEqual(Set(rows).count, found, "a row returned twice")
                // Each distance is the row's ADC distance.
                var check = [Float](repeating: 0, count: found)
                ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: f.pq.codeSize, ids: rows, count: found, into: &check)
                XCTAssertEqual(check, dists)
                // Brute force over the sample by the same distances.
                var all = [Float](repeating: 0, count: nav.count)
                let ids = sampled.map { UInt32($0) }
                ProductQuantizer.unsafeDistances(table: table, codes: codes, codeSize: f.pq.codeSize, ids: ids, count: ids.count, into: &all)
                let best = try XCTUnwrap(all.min())
                XCTAssertGreaterThanOrEqual(dists[0], best)
                if dists[0] == best { exactTop += 1 }
            }
        }
        // A walk with a list of 16 over 1,500 nodes finds the true nearest nearly always.
        XCTAssertGreaterThanOrEqual(exactTop, queries * 9 / 10, "\(exactTop) of \(queries)")
    }

    func testSearchStartingNearTheQueryReadsLessForTheSameRecall() throws {
        let f = try fixture()
        let nav = try XCTUnwrap(NavigationGraph.build(quantizer: f.pq, codes: f.codes.bytes, rowCount: n, medoid: f.graph.medoid,
                                                      budgetBytes: 1 << 20, threads: 2))
        try f.layout.withUnsafeBytes { raw in
            let view = try DiskGraphView(bytes: raw)
            let plain = try BeamSearcher(graph: view, quantizer: f.pq, codes: f.codes)
            let navigated = try BeamSearcher(graph: view, quantizer: f.pq, codes: f.codes, navigation: nav)
            var hits = (plain: 0, navigated: 0), reads = (plain: 0, navigated: 0)
            let queries = f.queries.count / dim
            for qi in 0..<queries {
                let q = Array(f.queries[qi * dim..<(qi + 1) * dim])
                let truth = Set(try plain.exactSearch(q, k: 10).map(\.row))
                for width in [1, 4] {
                    let p = BeamSearchParameters(k: 10, listSize: 24, beamWidth: width)
                    let a = try plain.search(q, parameters: p)
                    reads.plain += plain.lastStats.recordsRead
                    let b = try navigated.search(q, parameters: p)
                    reads.navigated += navigated.lastStats.recordsRead
                    hits.plain += a.filter { truth.contains($0.row) }.count
                    hits.navigated += b.filter { truth.contains($0.row) }.count
                    XCTAssertEqual(b.count, 10)
                    for i in 1..<b.count { XCTAssertLessThanOrEqual(b[i - 1].distance, b[i].distance) }
                    // Distances are exact.
                    let v = f.data[b[0].row * dim..<(b[0].row + 1) * dim]
                    let d = zip(q, v).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                    XCTAssertEqual(b[0].distance, d, accuracy: 1e-3 * max(1, d))
                }
            }
            XCTAssertLessThan(reads.navigated, reads.plain, "records read: \(reads)")
            XCTAssertGreaterThanOrEqual(hits.navigated, hits.plain - queries / 5, "hits: \(hits)")
            // A list smaller than the walk's is seeded with the walk's best rows only.
            let q = Array(f.queries[0..<dim])
            XCTAssertEqual(try navigated.search(q, parameters: BeamSearchParameters(k: 3, listSize: 4)).count, 3)
        }
    }

    func testSegmentOpensWithTheBudgetAsked() throws {
        let path = tmpPath("nav.seg")
        let rows = clusteredRows(count: 6000, dimension: 24, clusters: 20, seed: 5, idStride: 1, idBase: 1)
        try writeIndexedSegment(path, rows: rows, dimension: 24)
        // Through the mapping none by default; over direct I/O the default budget.
        XCTAssertEqual(try Segment.open(path: path).navigationSummary.rows, 0)
        var direct = SegmentOpenOptions()
        direct.directIO = true
        let d = try Segment.open(path: path, options: direct)
        XCTAssertEqual(d.navigationSummary.rows, 3000, "half the rows at most")
        XCTAssertLessThanOrEqual(d.navigationSummary.bytes, SegmentOpenOptions.defaultNavigationBudgetBytes)
        var asked = SegmentOpenOptions()
        asked.navigationBudgetBytes = 1000 * NavigationGraph.bytesPerNode
        let on = try Segment.open(path: path, options: asked)
        XCTAssertEqual(on.navigationSummary.rows, 1000)
        XCTAssertEqual(on.navigationSummary.bytes, 1000 * NavigationGraph.bytesPerNode)
        direct.navigationBudgetBytes = 0
        let off = try Segment.open(path: path, options: direct)
        XCTAssertEqual(off.navigationSummary.rows, 0)
        XCTAssertEqual(off.navigationSummary.bytes, 0)
        // A row is its own nearest neighbour either way.
        for r in [0, 2998, 5998] {
            for seg in [on, off, d] {
                XCTAssertEqual(try seg.search(query: rows[r].vector, options: SearchOptions(k: 1, listSize: 32)).first?.row, r)
            }
        }
    }
}
