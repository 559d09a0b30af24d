// The shared pieces of both graph builders: RobustPrune over any BuildRows (rows by id, or gathered
// rows through row keys) and the medoid (nearest row to the mean, for any thread count and row type).
import XCTest
@testable import StrataFormat
@testable import StrataIndex

final class RobustPruneMedoidTests: XCTestCase {
    /// Runs RobustPrune over 1-D points (`points[id]`, padded to 8 floats) around `node`.
    private func prune(points: [Float], node: Int, candidates: [UInt32], alpha: Float, r: Int,
                       gathered: Bool = false, saturate: Bool = false) -> [UInt32] {
        let d = 8
        var rows = [Float](repeating: 0, count: points.count * d)
        for (i, x) in points.enumerated() { rows[i * d] = x }
        var ids = candidates
        var dists = candidates.map { (points[Int($0)] - points[node]) * (points[Int($0)] - points[node]) }
        var occlusion = [Float](repeating: 0, count: candidates.count)
        var out = [UInt32](repeating: 0, count: r)
        var scratch = [Float](repeating: 0, count: d)
        // Gathered: candidate k's row copied to slot k, found through row keys (as the merge does).
        var dense = [Float](repeating: 0, count: max(1, candidates.count) * d)
        for (k, id) in candidates.enumerated() { dense[k * d] = points[Int(id)] }
        var keys = (0..<candidates.count).map { UInt32($0) }
        let kept = rows.withUnsafeBufferPointer { rp in
            dense.withUnsafeBufferPointer { dp in
                ids.withUnsafeMutableBufferPointer { ip in
                    dists.withUnsafeMutableBufferPointer { dsp in
                        occlusion.withUnsafeMutableBufferPointer { rmp in
                            keys.withUnsafeMutableBufferPointer { kp in
                                scratch.withUnsafeMutableBufferPointer { sp in
                                    out.withUnsafeMutableBufferPointer { op in
                                        let list = PruneCandidates(ids: ip.baseAddress!, distances: dsp.baseAddress!, occlusion: rmp.baseAddress!,
                                                                   rowKeys: gathered ? kp.baseAddress! : nil, count: candidates.count)
                                        if gathered {
                                            return RobustPrune.prune(list, node: node, alpha: alpha, maxDegree: r, saturate: saturate,
                                                                     rows: Float32Rows(base: dp.baseAddress!, stride: d, dimension: d, count: candidates.count),
                                                                     scratch: sp.baseAddress!, into: op.baseAddress!)
                                        }
                                        return RobustPrune.prune(list, node: node, alpha: alpha, maxDegree: r, saturate: saturate,
                                                                 rows: Float32Rows(base: rp.baseAddress!, stride: d, dimension: d, count: points.count),
                                                                 scratch: sp.baseAddress!, into: op.baseAddress!)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Array(out[0..<kept])
    }

    /// Saturation fills the slots occlusion left empty with the closest candidates not kept, after
    /// the occlusion picks, up to R; never the node itself or a repeat; only when alpha > 1.
    func testSaturationFillsEmptySlotsWithTheClosestDroppedCandidates() {
        let points: [Float] = [0, 1, 2, 10, -3, 2.5]
        let candidates: [UInt32] = [3, 2, 1, 4, 5, 0, 2]
        let plain = prune(points: points, node: 0, candidates: candidates, alpha: 1.2, r: 8)
        XCTAssertEqual(plain, [1, 4])
        XCTAssertEqual(prune(points: points, node: 0, candidates: candidates, alpha: 1.2, r: 8, saturate: true), [1, 4, 2, 5, 3])
        XCTAssertEqual(prune(points: points, node: 0, candidates: candidates, alpha: 1.2, r: 3, saturate: true), [1, 4, 2])
        XCTAssertEqual(prune(points: points, node: 0, candidates: candidates, alpha: 1.2, r: 8, gathered: true, saturate: true), [1, 4, 2, 5, 3])
        XCTAssertEqual(prune(points: points, node: 0, candidates: candidates, alpha: 1, r: 8, saturate: true), [1, 4], "alpha 1: no saturation")
    }

    func testPruneKeepsOnlyCandidatesNoKeptOneShadows() {
        // node 0 at 0; candidates at 1 (id 1), 2 (id 2), 10 (id 3), -3 (id 4).
        let points: [Float] = [0, 1, 2, 10, -3]
        // alpha 1: 1 shadows 2 (1 <= 4) and 10 (81 <= 100); -3 is on the other side (16 > 9).
        XCTAssertEqual(prune(points: points, node: 0, candidates: [3, 2, 1, 4], alpha: 1, r: 8), [1, 4])
        // alpha 1.3: 1.3 * 81 > 100, so 10 stays.
        XCTAssertEqual(prune(points: points, node: 0, candidates: [3, 2, 1, 4], alpha: 1.3, r: 8), [1, 4, 3])
        // At most R, closest first.
        XCTAssertEqual(prune(points: points, node: 0, candidates: [3, 2, 1, 4], alpha: 1.3, r: 2), [1, 4])
        // The node itself and repeated ids are dropped.
        XCTAssertEqual(prune(points: points, node: 0, candidates: [0, 1, 1, 4, 4], alpha: 1, r: 8), [1, 4])
    }

    func testPruneFillsWithDiverseNeighboursBeforeWhatOnlyALargerAlphaAdmits() {
        // node 0 at 0; id 1 at 1, id 2 at 12, id 3 at -13. Seen from id 1, id 2 is occluded by a
        // factor 144 / 121 = 1.19: admitted at alpha 1.2 but not at 1. Id 3 lies the other way.
        // Progressive occlusion takes id 3 (admitted at alpha 1) before id 2, so with R = 2 the
        // list keeps both directions; a single pass at alpha 1.2 would have kept 1 and 2.
        let points: [Float] = [0, 1, 12, -13]
        XCTAssertEqual(prune(points: points, node: 0, candidates: [3, 2, 1], alpha: 1.2, r: 2), [1, 3])
        XCTAssertEqual(prune(points: points, node: 0, candidates: [3, 2, 1], alpha: 1.2, r: 8), [1, 3, 2])
        XCTAssertEqual(prune(points: points, node: 0, candidates: [3, 2, 1], alpha: 1, r: 8), [1, 3])
    }

    func testPruneBreaksDistanceTiesByIdAndReadsGatheredRowsThroughKeys() {
        // ids 1 and 2 both at distance 1 from node 0 (at 5): the lower id comes first and does not
        // shadow id 2 on the other side; id 2 (at 6) shadows id 3 (at 7), and id 4 (at 20) at alpha 1
        // (196 <= 225) but not at alpha 1.2 (235.2 > 225).
        let points: [Float] = [5, 4, 6, 7, 20]
        for gathered in [false, true] {
            XCTAssertEqual(prune(points: points, node: 0, candidates: [4, 3, 2, 1], alpha: 1, r: 8, gathered: gathered), [1, 2],
                           "gathered: \(gathered)")
            XCTAssertEqual(prune(points: points, node: 0, candidates: [2, 4, 1, 3], alpha: 1.2, r: 8, gathered: gathered), [1, 2, 4],
                           "gathered: \(gathered)")
            XCTAssertEqual(prune(points: points, node: 0, candidates: [2, 4, 1, 3], alpha: 1.2, r: 2, gathered: gathered), [1, 2])
        }
    }

    /// `count` rows of `d` floats with a nonzero mean.
    private func randomRows(count: Int, d: Int, seed: UInt64) -> [Float] {
        var rng = IndexRandom(seed: seed)
        return (0..<(count * d)).map { _ in Float(rng.below(2001)) / 1000 - 0.7 }
    }

    private func bruteForceMedoid(_ v: [Float], count: Int, d: Int) -> Int {
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<count { for j in 0..<d { mean[j] += Double(v[i * d + j]) } }
        let m = mean.map { Float($0 / Double(count)) }
        var best = 0, bestDist = Float.infinity
        v.withUnsafeBufferPointer { p in
            m.withUnsafeBufferPointer { mp in
                for i in 0..<count {
                    let s = DistanceKernels.unsafeL2Squared(p.baseAddress! + i * d, mp.baseAddress!, count: d)
                    if s < bestDist { best = i; bestDist = s }
                }
            }
        }
        return best
    }

    func testMedoidIsTheRowNearestTheMeanForAnyRowTypeAndThreadCount() {
        let d = 4
        for count in [1, 2, 37, Medoid.chunkRows + 1234] {
            let v = randomRows(count: count, d: d, seed: UInt64(count))
            let want = count == 1 ? 0 : bruteForceMedoid(v, count: count, d: d)
            v.withUnsafeBufferPointer { p in
                let dense = Float32Rows(base: p.baseAddress!, stride: d, dimension: d, count: count)
                let mapped = VectorRows(base: UnsafeRawPointer(p.baseAddress!), strideBytes: 4 * d, dimension: d, count: count,
                                        elementType: .float32)
                for threads in [1, 3] {
                    XCTAssertEqual(Medoid.of(dense, threads: threads), want, "\(count) rows, \(threads) threads")
                    XCTAssertEqual(Medoid.of(mapped, threads: threads), want, "\(count) rows, \(threads) threads, mapped")
                }
            }
        }
    }

    func testFloat16RowsWidenAndMeasureAsStored() {
        let d = 40
        let v = randomRows(count: 3, d: d, seed: 9)
        var halves = [UInt16](repeating: 0, count: v.count)
        for i in 0..<v.count { halves[i] = DistanceKernels.halfBits(from: v[i]) }
        halves.withUnsafeBufferPointer { hp in
            let rows = Float16Rows(base: hp.baseAddress!, stride: d, dimension: d, count: 3)
            let mapped = VectorRows(base: UnsafeRawPointer(hp.baseAddress!), strideBytes: 2 * d, dimension: d, count: 3, elementType: .float16)
            var scratch = [Float](repeating: 0, count: d)
            scratch.withUnsafeMutableBufferPointer { sp in
                let row1 = Array(UnsafeBufferPointer(start: rows.float32Row(1, scratch: sp.baseAddress!), count: d))
                XCTAssertEqual(row1, (0..<d).map { DistanceKernels.float(fromHalfBits: halves[d + $0]) })
                let q = v.withUnsafeBufferPointer { $0.baseAddress! }
                XCTAssertEqual(rows.squaredDistance(q, 2), mapped.squaredDistance(q, 2))
                XCTAssertEqual(rows.rowBytes, 2 * d)
                XCTAssertEqual(mapped.rowBytes, 2 * d)
            }
        }
    }
}
