// The one CPU dispatcher of the C kernels (CStrataKernels/strata_dispatch.c): the level chosen from
// the CPU, STRATA_KERNELS and strata_kernels_force reaches every kernel family (distances, index,
// filter), and the index and filter kernels give identical results at every level on data for which
// every summation order is exact.

import CStrataKernels
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

#if canImport(Glibc)
import Glibc
#endif

final class KernelDispatchTests: XCTestCase {
    static let levels = ["scalar", "avx2", "avx512"]

    override func tearDown() {
        _ = strata_kernels_force(nil)
        super.tearDown()
    }

    /// Forces `name` for every family; returns the level now in use (a lower one where the CPU lacks it).
    @discardableResult
    func force(_ name: String?) -> String? {
        let result = name.map { n in n.withCString { strata_kernels_force($0) } } ?? strata_kernels_force(nil)
        return result.map { String(cString: $0) }
    }

    /// The level each family reports: distances, index, and whether the filter's vector path runs.
    func familyLevels() -> (distance: String, index: String, filterVector: Bool) {
        (String(cString: strata_kernels_isa()), String(cString: strata_index_kernels_isa()), strata_pq_scan_u8_isa() == 2)
    }

    /// Runs `body` once per level (forced; an unsupported one falls back to a lower level, which is
    /// then run again), with the name of the level in use.
    func forEachLevel(_ body: (String) throws -> Void) throws {
        defer { force(nil) }
        for level in Self.levels {
            let active = try XCTUnwrap(force(level), "cannot select \(level)")
            try body(active)
        }
    }

    // MARK: One choice for every family

    func testForcedLevelReachesEveryFamily() throws {
        // The filter's vector path also needs VBMI; whether this CPU has it shows at the avx512 level.
        let top = try XCTUnwrap(force("avx512"))
        let vbmi = familyLevels().filterVector
        XCTAssertTrue(!vbmi || top == "avx512", "the VBMI path only at the avx512 level")
        try forEachLevel { active in
            let got = familyLevels()
            XCTAssertEqual(got.distance, active)
            XCTAssertEqual(got.index, active, "index kernels at \(active)")
            XCTAssertEqual(got.filterVector, active == "avx512" && vbmi, "filter kernels at \(active)")
        }
    }

    #if canImport(Glibc)
    func testEnvironmentCapReachesEveryFamily() throws {
        // The default choice (read at start-up, and again when force(nil) restores it) honours
        // STRATA_KERNELS for every family.
        let saved = getenv("STRATA_KERNELS").map { String(cString: $0) }
        defer {
            if let saved { setenv("STRATA_KERNELS", saved, 1) } else { unsetenv("STRATA_KERNELS") }
            force(nil)
        }
        let best = try XCTUnwrap(force("avx512"))
        for level in Self.levels {
            setenv("STRATA_KERNELS", level, 1)
            let active = try XCTUnwrap(force(nil))
            let want = Self.levels[min(Self.levels.firstIndex(of: level)!, Self.levels.firstIndex(of: best)!)]
            XCTAssertEqual(active, want)
            let got = familyLevels()
            XCTAssertEqual(got.distance, want)
            XCTAssertEqual(got.index, want, "index kernels under STRATA_KERNELS=\(level)")
            if want != "avx512" { XCTAssertFalse(got.filterVector, "filter kernels under STRATA_KERNELS=\(level)") }
        }
        setenv("STRATA_KERNELS", "bogus", 1)
        XCTAssertEqual(force(nil), best, "an unknown name is ignored")
        XCTAssertEqual(familyLevels().index, best)
    }

    func testEnvironmentCapIsReadAtProcessStart() throws {
        // A fresh process: the dispatcher's constructor reads STRATA_KERNELS before any kernel runs.
        guard let exe = strataExecutable() else { throw XCTSkip("strata executable not built (run swift build first)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-dispatch-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let process = Process()
        process.executableURL = exe
        process.arguments = ["gen", "--rows", "64", "--dim", "8", "--clusters", "2", "--queries", "2", "--gt-k", "1",
                             "--out", dir.path, "--json"]
        var environment = ProcessInfo.processInfo.environment
        environment["STRATA_KERNELS"] = "scalar"
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(doc["kernels"] as? String, "scalar")
    }
    #endif

    // MARK: Same results at every level

    /// Small integers (and sums of their squares) are exact in float, so every level must agree bit
    /// for bit, whatever its summation order or use of FMA.
    func smallIntegers(_ n: Int, using rng: inout KernelTestRNG) -> [Float] {
        (0..<n).map { _ in Float(Int.random(in: -8...8, using: &rng)) }
    }

    func testIndexKernelsAgreeAcrossLevels() throws {
        var rng = KernelTestRNG(seed: 0x5eed_d15c)
        // One centroid count with vector tails (l2 to transposed, nearest), one a multiple of 16 (block).
        let d = 12, k = 53, blockK = 48, rows = 9
        let x = smallIntegers(rows * d, using: &rng)
        let ct = smallIntegers(d * k, using: &rng)
        let blockCt = smallIntegers(d * blockK, using: &rng)
        // PQ: m sub-spaces of dsub dimensions, 256 centroids each, transposed.
        let m = 20, dsub = 3
        let q = smallIntegers(m * dsub, using: &rng)
        let pqCentroids = smallIntegers(m * dsub * 256, using: &rng)
        let codes = (0..<(rows * m)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let ids = (0..<40).map { _ in UInt32.random(in: 0..<UInt32(rows), using: &rng) }

        var first: [String: [Float]]?
        try forEachLevel { level in
            var got: [String: [Float]] = [:]
            var out = [Float](repeating: 0, count: k)
            strata_l2_to_transposed_f32(x, ct, d, k, &out)
            got["l2 to transposed"] = out
            var block = [Float](repeating: 0, count: rows * blockK)
            strata_l2_block_transposed_f32(x, d, rows, blockCt, d, blockK, &block)
            got["l2 block"] = block
            var nearest: [Float] = []
            for r in 0..<rows {
                var dist: Float = 0
                let index = x.withUnsafeBufferPointer { strata_nearest_transposed_f32($0.baseAddress! + r * d, ct, d, k, &dist) }
                nearest += [Float(index), dist]
            }
            got["nearest"] = nearest
            for kind: Int32 in [0, 1] {
                var table = [Float](repeating: 0, count: m * 256)
                strata_pq_table_f32(q, pqCentroids, m, dsub, kind, &table)
                got["pq table \(kind)"] = table
                var adc = [Float](repeating: 0, count: ids.count)
                strata_pq_adc_f32(table, codes, m, ids, ids.count, &adc)
                got["adc \(kind)"] = adc
            }
            // The reference for the first row: plain sums in Double.
            for c in 0..<k {
                let want = (0..<d).reduce(0.0) { s, j in let t = Double(x[j] - ct[j * k + c]); return s + t * t }
                XCTAssertEqual(Double(out[c]), want, "\(level) l2 to centroid \(c)")
            }
            if let first {
                for (name, values) in got { XCTAssertEqual(values, first[name], "\(name) at \(level)") }
            } else {
                first = got
            }
        }
    }

    func testQuantisedScanAgreesAcrossLevels() throws {
        var rng = KernelTestRNG(seed: 0x5eed_5ca7)
        let rows = 300
        for m in [4, 12, 64, 132] {
            let codes = (0..<(rows * m)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let lut = (0..<(m * 256)).map { _ in UInt8(Int.random(in: 0..<min(256, 65535 / m), using: &rng)) }
            let ids = (0..<130).map { _ in UInt32.random(in: 0..<UInt32(rows), using: &rng) }
            let want = ids.map { id in UInt16((0..<m).reduce(0) { $0 + Int(lut[$1 * 256 + Int(codes[Int(id) * m + $1])]) }) }
            try forEachLevel { level in
                var out = [UInt16](repeating: 0, count: ids.count)
                strata_pq_scan_u8(lut, codes, m, ids, ids.count, &out)
                XCTAssertEqual(out, want, "m \(m) at \(level), vector path \(strata_pq_scan_u8_isa() == 2)")
            }
        }
    }
}
