// The filtered-scan kernels (CStrataKernels/strata_filter_kernels.c) against plain Swift sums.
import CStrataKernels
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class FilterKernelTests: XCTestCase {
    func testQuantisedScanEqualsReferenceSums() {
        var rng = SplitMix64(seed: 42)
        for m in [4, 8, 12, 48, 64, 96, 100, 128, 132] {
            let rows = 700
            let codes = (0..<(rows * m)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let lut = (0..<(m * 256)).map { _ in UInt8(truncatingIfNeeded: rng.next() % UInt64(min(256, 65535 / m))) }
            for n in [0, 1, 63, 64, 65, 130, 700] {
                let ids = (0..<n).map { _ in UInt32(rng.int(rows)) }
                var out = [UInt16](repeating: 0, count: n)
                strata_pq_scan_u8(lut, codes, m, ids, n, &out)
                let want = ids.map { id in UInt16((0..<m).reduce(0) { $0 + Int(lut[$1 * 256 + Int(codes[Int(id) * m + $1])]) }) }
                XCTAssertEqual(out, want, "m \(m), n \(n), isa \(strata_pq_scan_u8_isa())")
                let half = (m / 2) / 4 * 4
                guard half >= 4 else { continue }
                strata_pq_scan_u8_partial(lut, codes, m, half, ids, n, &out)
                let wantHalf = ids.map { id in UInt16((0..<half).reduce(0) { $0 + Int(lut[$1 * 256 + Int(codes[Int(id) * m + $1])]) }) }
                XCTAssertEqual(out, wantHalf, "partial: m \(m), n \(n)")
            }
        }
    }

    func testLUTQuantisationAndSelection() {
        var rng = SplitMix64(seed: 7)
        let m = 16
        let table = (0..<(m * 256)).map { _ in rng.unitFloat() * 2 - 1 }
        var lut = [UInt8](repeating: 0, count: m * 256)
        let step = strata_pq_lut_u8(table, m, &lut)
        XCTAssertGreaterThan(step, 0)
        for s in 0..<m {
            let slice = table[(s * 256)..<((s + 1) * 256)]
            let lo = slice.min()!
            for j in 0..<256 {
                XCTAssertEqual(Double(lut[s * 256 + j]), Double((table[s * 256 + j] - lo) / step), accuracy: 0.5001)
            }
        }
        let sums = (0..<5000).map { _ in UInt16(rng.int(20000)) }
        for keep in [1, 10, 64, 4999, 5000, 6000] {
            var out = [UInt32](repeating: 0, count: sums.count)
            let count = strata_select_smallest_u16(sums, sums.count, keep, &out)
            XCTAssertGreaterThanOrEqual(count, min(keep, sums.count))
            let picked = Set(out[0..<count].map(Int.init))
            let threshold = out[0..<count].map { sums[Int($0)] }.max()!
            // Every sum strictly below the largest picked one is picked.
            for (i, v) in sums.enumerated() where v < threshold { XCTAssertTrue(picked.contains(i)) }
            let kth = sums.sorted()[min(keep, sums.count) - 1]
            XCTAssertGreaterThanOrEqual(threshold, kth)
        }
    }
}
