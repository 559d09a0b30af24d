// Sector-locality figures of a graph section: exact on hand-made graphs whose sector placement is
// known, contained on a damaged section, and carried by `strata dump --json` of an indexed segment.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class GraphLocalityTests: StrataTestCase {
    /// Dimension 250 float32 with R = 2 gives records of 1000 + 4 + 8 = 1012 bytes: 4 per sector,
    /// 4096 - 4 * 1012 = 48 bytes of padding each.
    let dim = 250, maxDegree = 2

    /// Writes the layout of `count` zero vectors with the given neighbour lists (each of size <= R).
    func layout(_ lists: [[UInt32]], medoid: Int = 0, dimension: Int? = nil, blockLayout: Bool = false) throws -> [UInt8] {
        let d = dimension ?? dim
        var degrees: [UInt32] = [], flat: [UInt32] = []
        for l in lists {
            degrees.append(UInt32(l.count))
            flat += l + [UInt32](repeating: 0, count: maxDegree - l.count)
        }
        let graph = try VamanaGraph(count: lists.count, maxDegree: maxDegree, medoid: medoid, degrees: degrees, neighbors: flat)
        let vectors = [Float](repeating: 0, count: lists.count * d)
        var bytes: [UInt8] = []
        _ = try vectors.withUnsafeBufferPointer { v in
            try DiskGraphLayout.writeSectorLayout(graph: graph, vectors: v, dimension: d, rowStride: d,
                                                  elementType: .float32, metric: .l2, blockLayout: blockLayout) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    /// 8 nodes in 2 sectors (0-3, 4-7); node i links to its pair partner i ^ 1 (same sector) and to
    /// i + 4 mod 8 (the other sector).
    var pairedLists: [[UInt32]] { (0..<8).map { i in [UInt32(i ^ 1), UInt32((i + 4) % 8)] } }

    func testExactFiguresOnAKnownPlacement() throws {
        let bytes = try layout(pairedLists)
        try bytes.withUnsafeBytes { raw in
            let view = try DiskGraphView(bytes: raw)
            XCTAssertEqual(view.geometry.nodesPerSector, 4)
            let l = view.locality()
            XCTAssertEqual(l.sectorCount, 2)
            XCTAssertEqual(l.nodesPerSector, 4)
            XCTAssertEqual(l.paddingBytesPerSector, 48)
            XCTAssertEqual(l.paddingBytesTotal, 96)
            XCTAssertEqual(l.edgeCount, 16)
            XCTAssertEqual(l.skippedNeighborCount, 0)
            XCTAssertEqual(l.sameSectorEdgeCount, 8)
            XCTAssertEqual(l.sameSectorShare, 0.5)
            XCTAssertEqual(l.randomSameSectorShare, 3.0 / 7.0, accuracy: 1e-12)
            XCTAssertEqual(l.meanFreeNeighborShare, 0.5)
            XCTAssertEqual(l.meanNeighborSectors, 2)
            XCTAssertEqual(l.p50NeighborSectors, 2)
            XCTAssertEqual(l.p99NeighborSectors, 2)
            XCTAssertEqual(l.neighborsPerSectorRead, 1)
            // BFS from 0: depth 1 = {1, 4}, depth 2 = {5}; nodes 2, 3, 6, 7 are not reachable.
            let b = try XCTUnwrap(l.bfs)
            XCTAssertEqual(b.maxDepth, 2)
            XCTAssertEqual(b.withinDepth, [1, 3, 4, 4])
            XCTAssertEqual(b.reachable, 4)
            XCTAssertEqual(view.validate().unreachableCount, 8 - b.reachable)
            XCTAssertNil(view.locality(bfs: false).bfs)
        }
    }

    func testSameSectorOnlyAndPartialLastSector() throws {
        // 6 nodes: sector 0 = 0-3, sector 1 = 4-5 plus two empty slots. Every edge stays in its sector.
        let lists: [[UInt32]] = [[1, 2], [2, 3], [3, 0], [0, 1], [5], [4]]
        let bytes = try layout(lists)
        try bytes.withUnsafeBytes { raw in
            let l = try DiskGraphView(bytes: raw).locality()
            XCTAssertEqual(l.sectorCount, 2)
            XCTAssertEqual(l.paddingBytesTotal, 2 * 4096 - 6 * 1012)
            XCTAssertEqual(l.edgeCount, 10)
            XCTAssertEqual(l.sameSectorShare, 1)
            XCTAssertEqual(l.meanFreeNeighborShare, 1)
            XCTAssertEqual(l.meanNeighborSectors, 1)
            XCTAssertEqual(l.neighborsPerSectorRead, 10.0 / 6.0, accuracy: 1e-12)
            XCTAssertEqual(l.randomSameSectorShare, 3.0 / 5.0, accuracy: 1e-12)
            XCTAssertEqual(l.bfs?.reachable, 4)
            XCTAssertEqual(l.bfs?.maxDepth, 2)
        }
    }

    func testDamagedRecordsAreCountedAndSkipped() throws {
        var bytes = try layout(pairedLists)
        let geo = try DiskGraphLayout.Geometry(count: 8, dimension: dim, elementType: .float32, maxDegree: maxDegree)
        func put(_ value: UInt32, node: Int, at field: Int) {
            let o = geo.slotOffset(node) + geo.vectorBytes + field
            withUnsafeBytes(of: value.littleEndian) { for k in 0..<4 { bytes[o + k] = $0[k] } }
        }
        put(9_999, node: 2, at: 4 + 4)       // node 2's second neighbour out of range
        put(3, node: 3, at: 4)               // node 3's first neighbour is itself
        put(200, node: 6, at: 0)             // node 6's degree 200 > R: clamped to 2
        put(UInt32.max, node: 7, at: 4 + 4)  // node 7's second neighbour out of range
        try bytes.withUnsafeBytes { raw in
            let view = try DiskGraphView(bytes: raw)
            XCTAssertGreaterThanOrEqual(view.validate().problemCount, 4)
            let l = view.locality()
            XCTAssertEqual(l.skippedNeighborCount, 3)
            XCTAssertEqual(l.edgeCount, 13)
            // Same-sector edges lost: node 3's (self loop). Nodes 2 and 7 keep only their partner,
            // node 3 only its far neighbour: one sector each.
            XCTAssertEqual(l.sameSectorEdgeCount, 7)
            XCTAssertEqual(l.meanNeighborSectors, (5.0 * 2 + 3 * 1) / 8, accuracy: 1e-12)
            XCTAssertEqual(l.meanFreeNeighborShare, (5 * 0.5 + 1 + 0 + 1) / 8, accuracy: 1e-12)
            XCTAssertEqual(l.p50NeighborSectors, 2)
            XCTAssertEqual(l.bfs?.reachable, 4)
        }
    }

    func testRecordsSpanningSectorsShareNothing() throws {
        // Dimension 1100 float32: a 4412-byte record over 2 sectors; no two nodes share a sector.
        let lists: [[UInt32]] = [[1, 2], [0], [0, 1]]
        let bytes = try layout(lists, dimension: 1100)
        try bytes.withUnsafeBytes { raw in
            let l = try DiskGraphView(bytes: raw).locality()
            XCTAssertEqual(l.nodesPerSector, 0)
            XCTAssertEqual(l.sectorCount, 6)
            XCTAssertEqual(l.paddingBytesPerSector, 2 * 4096 - 4412)
            XCTAssertEqual(l.paddingBytesTotal, 3 * (2 * 4096 - 4412))
            XCTAssertEqual(l.sameSectorShare, 0)
            XCTAssertEqual(l.randomSameSectorShare, 0)
            XCTAssertEqual(l.meanNeighborSectors, 5.0 / 3.0, accuracy: 1e-12)
            XCTAssertEqual(l.p99NeighborSectors, 2)
            XCTAssertEqual(l.bfs?.withinDepth, [1, 3, 3, 3])
        }
    }

    /// The block-aware layout of the paired lists: BFS from 0 opens a block with 0 and fills it
    /// with 0's neighbours (1, 4), then 1's (5); node 2, unreachable, opens the second block with
    /// 3, 6 and 7. Every edge then stays in its sector; records carry their node ids, the table
    /// places them, and the lists and vectors read back as written.
    func testBlockLayoutPutsNeighboursInOneSector() throws {
        let bytes = try layout(pairedLists, blockLayout: true)
        try bytes.withUnsafeBytes { raw in
            let view = try DiskGraphView(bytes: raw)
            XCTAssertTrue(view.isBlockLayout)
            XCTAssertEqual(view.geometry.recordSize, 1016)
            XCTAssertEqual(view.geometry.nodesPerSector, 4)
            XCTAssertEqual(raw.count, 4096 * 4, "header, two node sectors, one table sector")
            XCTAssertEqual((0..<8).map { view.slot(of: $0) }, [0, 1, 4, 5, 2, 3, 6, 7])
            for i in 0..<8 {
                XCTAssertEqual(view.neighbors(of: i), pairedLists[i])
                XCTAssertEqual(view.storedNode(of: view.unsafeRecord(i)), i)
            }
            let l = view.locality()
            XCTAssertEqual(l.layoutVersion, 2)
            XCTAssertEqual(l.sameSectorShare, 1)
            XCTAssertEqual(l.meanNeighborSectors, 1)
            XCTAssertEqual(l.neighborsPerSectorRead, 2)
            XCTAssertTrue(view.validate().isValid, "\(view.validate().problems)")
        }
        // Records that do not fit two to a sector stay in row order: nothing to share.
        for d in [700, 1100] {
            let wide = try layout(pairedLists, dimension: d, blockLayout: true)
            try wide.withUnsafeBytes { raw in XCTAssertFalse(try DiskGraphView(bytes: raw).isBlockLayout, "dimension \(d)") }
        }
        // Damage: a record naming another node, a slot given twice.
        let geo = try DiskGraphLayout.Geometry(count: 8, dimension: dim, elementType: .float32, maxDegree: maxDegree, blockLayout: true)
        var named = bytes
        named[geo.slotOffset(1) + geo.nodeIdOffset] = 7
        try named.withUnsafeBytes { raw in
            XCTAssertTrue(try DiskGraphView(bytes: raw).validate().problems.contains { $0.contains("names node 7") })
        }
        var twice = bytes
        for k in 0..<4 { twice[geo.placementOffset + 4 + k] = twice[geo.placementOffset + k] }
        try twice.withUnsafeBytes { raw in
            XCTAssertTrue(try DiskGraphView(bytes: raw).validate().problems.contains { $0.contains("taken twice") })
        }
    }

    func testEmptyGraph() throws {
        let bytes = try layout([])
        try bytes.withUnsafeBytes { raw in
            let l = try DiskGraphView(bytes: raw).locality()
            XCTAssertEqual(l.sectorCount, 0)
            XCTAssertEqual(l.edgeCount, 0)
            XCTAssertEqual(l.sameSectorShare, 0)
            XCTAssertEqual(l.p99NeighborSectors, 0)
            XCTAssertNil(l.bfs)
        }
    }

    /// `strata dump` of a real indexed segment (the sample dataset) carries the layout figures.
    func testDumpJSONCarriesLayoutOfAnIndexedSegment() throws {
        let seg = tmpPath("indexed.seg")
        let build = try runStrata(["build", "--vectors", SampleDataset.directory.appendingPathComponent("base.fvecs").path,
                                   "--out", seg, "--metric", "l2", "--index", "--max-degree", "16", "--build-list", "32", "--min-index-rows", "100"],
                                  scratch: tmp)
        XCTAssertEqual(build.status, 0, build.stderr)
        let dump = try runStrata(["dump", seg, "--json"], scratch: tmp)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: dump.stdout) as? [String: Any])
        let index = try XCTUnwrap(doc["index"] as? [String: Any])
        let layout = try XCTUnwrap(index["layout"] as? [String: Any], "no index.layout in \(dump.stdoutText.prefix(2000))")
        let n = SampleDataset.baseCount
        let perSector = try XCTUnwrap(index["nodes_per_sector"] as? Int)
        XCTAssertGreaterThan(perSector, 1)
        XCTAssertEqual(layout["layout_version"] as? Int, 2, "block-aware by default")
        XCTAssertEqual(layout["sectors"] as? Int, (n + perSector - 1) / perSector)
        let recordBytes = try XCTUnwrap(index["record_bytes"] as? Int)
        XCTAssertEqual(layout["padding_bytes_per_sector"] as? Int, 4096 - perSector * recordBytes)
        XCTAssertEqual(layout["skipped_neighbors"] as? Int, 0)
        for key in ["same_sector_edge_share", "random_same_sector_share", "free_neighbor_share"] {
            let v = try XCTUnwrap(layout[key] as? Double, key)
            XCTAssertTrue(v >= 0 && v <= 1, "\(key) \(v)")
        }
        XCTAssertEqual(try XCTUnwrap(layout["random_same_sector_share"] as? Double), Double(perSector - 1) / Double(n - 1), accuracy: 1e-12)
        XCTAssertGreaterThan(try XCTUnwrap(layout["same_sector_edge_share"] as? Double),
                             10 * (layout["random_same_sector_share"] as? Double ?? 1), "the placement puts neighbours together")
        let mean = try XCTUnwrap(layout["neighbor_sectors_mean"] as? Double)
        let p50 = try XCTUnwrap(layout["neighbor_sectors_p50"] as? Int), p99 = try XCTUnwrap(layout["neighbor_sectors_p99"] as? Int)
        XCTAssertTrue(mean >= 1 && mean <= 16, "mean \(mean)")
        XCTAssertTrue(1 <= p50 && p50 <= p99 && p99 <= 16, "p50 \(p50) p99 \(p99)")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(layout["neighbors_per_sector_read"] as? Double), 1)
        let bfs = try XCTUnwrap(layout["bfs"] as? [String: Any])
        XCTAssertEqual(bfs["reachable"] as? Int, n - (index["unreachable_nodes"] as? Int ?? -1))
        let within = try XCTUnwrap(bfs["within_depth"] as? [String: Int])
        XCTAssertEqual(within["0"], 1)
        XCTAssertTrue(within["1"]! > 1 && within["1"]! <= 17 && within["1"]! <= within["2"]! && within["2"]! <= within["3"]!)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(bfs["max_depth"] as? Int), 1)
        // The text dump prints the same figures.
        let human = try runStrata(["dump", seg], scratch: tmp)
        XCTAssertEqual(human.status, 0, human.stderr)
        XCTAssertTrue(human.stdoutText.contains("locality: same-sector edges"), human.stdoutText)
        XCTAssertTrue(human.stdoutText.contains("BFS from entry point"), human.stdoutText)
    }
}
