// Tests of the C distance kernels (CStrataKernels) against the Swift references in ReferenceKernels,
// at every instruction-set level this CPU has (scalar, avx2, avx512; forced in-process).
//
// Distances: every length 0...70 (all vector tails of 8 and 16 lanes, and the 32/64-element unrolled
// loops) plus 384, 1000 and 4096, at misaligned addresses, with a relative tolerance against a
// Double reference; and small-integer data for which every summation order is exact, compared for
// equality. Conversions: float16 -> float32 for all 65536 bit patterns, float32 -> float16 for every
// float16 value, every rounding tie and its neighbours, and random bit patterns, all bit-exact.
// Over-reads: vectors that end at a PROT_NONE guard page.

import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

#if canImport(Glibc)
import Glibc
#endif

/// The package's one generator (SplitMix64, seeded), so that failures reproduce.
typealias KernelTestRNG = IndexRandom

final class DistanceKernelTests: XCTestCase {
    static let levels = ["scalar", "avx2", "avx512"]
    static let lengths = Array(0...70) + [384, 1000, 4096]

    override func tearDown() {
        DistanceKernels.overrideInstructionSet(nil)
        super.tearDown()
    }

    /// Runs `body` once per instruction-set level (forced; an unsupported one falls back to a lower
    /// level, which is then tested again), with the name of the level in use.
    func forEachLevel(_ body: (String) -> Void) {
        defer { DistanceKernels.overrideInstructionSet(nil) }
        for level in Self.levels {
            guard let active = DistanceKernels.overrideInstructionSet(level) else {
                XCTFail("cannot select \(level)")
                continue
            }
            XCTAssertEqual(DistanceKernels.instructionSet, active)
            body(active)
        }
    }

    func randomFloats(_ n: Int, in range: ClosedRange<Float> = -1...1, using rng: inout KernelTestRNG) -> [Float] {
        (0..<n).map { _ in Float.random(in: range, using: &rng) }
    }

    /// Calls `body` with pointers to copies of `a` and `b` that start `offset` elements into their
    /// buffers (so vector loads are misaligned when offset > 0).
    func withShifted<A, B, R>(
        _ a: [A], _ b: [B], offset: Int,
        _ body: (UnsafePointer<A>, UnsafePointer<B>) -> R
    ) -> R where A: Numeric, B: Numeric {
        let pa = [A](repeating: 0, count: offset) + a + [0]
        let pb = [B](repeating: 0, count: offset) + b + [0]
        return pa.withUnsafeBufferPointer { ba in
            pb.withUnsafeBufferPointer { bb in body(ba.baseAddress! + offset, bb.baseAddress! + offset) }
        }
    }

    // MARK: Distances

    func testFloat32KernelsMatchReference() throws {
        forEachLevel { level in
            var rng = KernelTestRNG(seed: 0x5eed_0001)
            for n in Self.lengths {
                let a = randomFloats(n, using: &rng), b = randomFloats(n, using: &rng)
                let offset = Int.random(in: 0...3, using: &rng)
                let (dot, l2) = withShifted(a, b, offset: offset) { pa, pb in
                    (DistanceKernels.unsafeDot(pa, pb, count: n), DistanceKernels.unsafeL2Squared(pa, pb, count: n))
                }
                let refDot = ReferenceKernels.dot(a, b), scale = ReferenceKernels.absoluteDot(a, b)
                let refL2 = ReferenceKernels.l2Squared(a, b)
                XCTAssertLessThanOrEqual(abs(Double(dot) - refDot), 1e-6 * scale, "\(level) dot n=\(n)")
                XCTAssertLessThanOrEqual(abs(Double(l2) - refL2), 1e-6 * refL2, "\(level) l2 n=\(n)")
                let (bufDot, bufL2) = a.withUnsafeBufferPointer { ba in
                    b.withUnsafeBufferPointer { bb in (DistanceKernels.dot(ba, bb), DistanceKernels.l2Squared(ba, bb)) }
                }
                XCTAssertLessThanOrEqual(abs(Double(bufDot) - refDot), 1e-6 * scale, "\(level) buffer dot n=\(n)")
                XCTAssertLessThanOrEqual(abs(Double(bufL2) - refL2), 1e-6 * refL2, "\(level) buffer l2 n=\(n)")
            }
        }
    }

    func testFloat16KernelsMatchReference() throws {
        forEachLevel { level in
            var rng = KernelTestRNG(seed: 0x5eed_0002)
            for n in Self.lengths {
                let a = randomFloats(n, using: &rng)
                let b = randomFloats(n, in: -2...2, using: &rng).map { ReferenceKernels.halfBits(from: $0) }
                let offset = Int.random(in: 0...3, using: &rng)
                let (dot, l2) = withShifted(a, b, offset: offset) { pa, pb in
                    (DistanceKernels.unsafeDot(pa, pb, count: n), DistanceKernels.unsafeL2Squared(pa, pb, count: n))
                }
                let wide = ReferenceKernels.floats(fromHalfBits: b)
                let refDot = ReferenceKernels.dot(a, wide), scale = ReferenceKernels.absoluteDot(a, wide)
                let refL2 = ReferenceKernels.l2Squared(a, wide)
                XCTAssertLessThanOrEqual(abs(Double(dot) - refDot), 1e-6 * scale, "\(level) f16 dot n=\(n)")
                XCTAssertLessThanOrEqual(abs(Double(l2) - refL2), 1e-6 * refL2, "\(level) f16 l2 n=\(n)")
            }
        }
    }

    /// Small integers: every product and partial sum is exact in float32, so any summation order gives
    /// the exact result, and a dropped, repeated or misplaced element shows as an inequality.
    func testSmallIntegerDataIsExact() throws {
        forEachLevel { level in
            for n in Self.lengths {
                let a = (0..<n).map { Float($0 % 5) - 2 }
                let b = (0..<n).map { Float(($0 * 3) % 7) - 3 }
                let bh = b.map { ReferenceKernels.halfBits(from: $0) }
                let (dot, l2) = withShifted(a, b, offset: n % 3) { pa, pb in
                    (DistanceKernels.unsafeDot(pa, pb, count: n), DistanceKernels.unsafeL2Squared(pa, pb, count: n))
                }
                let (d16, l16) = withShifted(a, bh, offset: n % 3) { pa, pb in
                    (DistanceKernels.unsafeDot(pa, pb, count: n), DistanceKernels.unsafeL2Squared(pa, pb, count: n))
                }
                XCTAssertEqual(Double(dot), ReferenceKernels.dot(a, b), "\(level) dot n=\(n)")
                XCTAssertEqual(Double(l2), ReferenceKernels.l2Squared(a, b), "\(level) l2 n=\(n)")
                XCTAssertEqual(Double(d16), ReferenceKernels.dot(a, b), "\(level) f16 dot n=\(n)")
                XCTAssertEqual(Double(l16), ReferenceKernels.l2Squared(a, b), "\(level) f16 l2 n=\(n)")
            }
        }
    }

    /// The kernels read `count` elements and not one more: each vector ends at an inaccessible page,
    /// so an over-read (a full-width load in a tail) crashes the test.
    func testNoReadsOrWritesPastTheEnd() throws {
        #if canImport(Glibc)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let maxCount = 70
        // Three regions (a, b as float, b as half / conversion output), each followed by a guard page.
        let regionSize = page * 2
        let total = 3 * (regionSize + page)
        let raw = try XCTUnwrap(mmap(nil, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        XCTAssertNotEqual(raw, MAP_FAILED)
        defer { munmap(raw, total) }
        var ends: [UnsafeMutableRawPointer] = []
        for r in 0..<3 {
            let start = raw + r * (regionSize + page)
            XCTAssertEqual(mprotect(start + regionSize, page, PROT_NONE), 0)
            ends.append(start + regionSize)
        }
        var rng = KernelTestRNG(seed: 0x5eed_0003)
        forEachLevel { level in
            for n in 0...maxCount {
                let a = (ends[0] - n * 4).bindMemory(to: Float.self, capacity: n)
                let b = (ends[1] - n * 4).bindMemory(to: Float.self, capacity: n)
                for i in 0..<n {
                    a[i] = Float.random(in: -1...1, using: &rng)
                    b[i] = Float.random(in: -1...1, using: &rng)
                }
                let h = (ends[2] - n * 2).bindMemory(to: UInt16.self, capacity: n)
                DistanceKernels.unsafeConvertToHalf(b, into: h, count: n)
                let refDot = (0..<n).reduce(0.0) { $0 + Double(a[$1]) * Double(b[$1]) }
                XCTAssertEqual(Double(DistanceKernels.unsafeDot(a, b, count: n)), refDot, accuracy: 1e-4, "\(level) n=\(n)")
                _ = DistanceKernels.unsafeL2Squared(a, b, count: n)
                _ = DistanceKernels.unsafeDot(a, h, count: n)
                _ = DistanceKernels.unsafeL2Squared(a, h, count: n)
                // Conversions whose source and destination both end at a guard page.
                let f = (ends[0] - n * 4).bindMemory(to: Float.self, capacity: n)
                DistanceKernels.unsafeConvertToFloat(halfBits: h, into: f, count: n)
                for i in 0..<n {
                    XCTAssertEqual(f[i], ReferenceKernels.float(fromHalfBits: h[i]), "\(level) n=\(n) i=\(i)")
                }
            }
        }
        #endif
    }

    // MARK: Conversions

    func assertSameFloat(_ got: Float, _ want: Float, _ message: @autoclosure () -> String,
                         file: StaticString = #filePath, line: UInt = #line) {
        if want.isNaN {
            XCTAssertTrue(got.isNaN, message(), file: file, line: line)
            XCTAssertEqual(got.sign, want.sign, message(), file: file, line: line)
        } else {
            XCTAssertEqual(got.bitPattern, want.bitPattern, message(), file: file, line: line)
        }
    }

    func assertSameHalf(_ got: UInt16, _ want: UInt16, _ message: @autoclosure () -> String,
                        file: StaticString = #filePath, line: UInt = #line) {
        if Float16(bitPattern: want).isNaN {
            XCTAssertTrue(Float16(bitPattern: got).isNaN, message(), file: file, line: line)
            XCTAssertEqual(got & 0x8000, want & 0x8000, message(), file: file, line: line)
        } else {
            XCTAssertEqual(got, want, message(), file: file, line: line)
        }
    }

    func testHalfToFloatIsExactForAllBitPatterns() throws {
        let all = (0...UInt16.max).map { $0 }
        let want = all.map { ReferenceKernels.float(fromHalfBits: $0) }
        for i in all.indices {
            assertSameFloat(DistanceKernels.float(fromHalfBits: all[i]), want[i], String(format: "single %04x", i))
        }
        forEachLevel { level in
            let got = DistanceKernels.floats(fromHalfBits: all)
            var failures = 0
            for i in all.indices where failures < 10 {
                let ok = want[i].isNaN ? got[i].isNaN && got[i].sign == want[i].sign : got[i].bitPattern == want[i].bitPattern
                if !ok {
                    failures += 1
                    XCTFail(String(format: "%@: %04x -> %08x, want %08x", level, i, got[i].bitPattern, want[i].bitPattern))
                }
            }
            // Every tail length and misalignment of the bulk conversion.
            for n in 0...40 {
                let offset = n % 4
                let src = Array(all[(0x3c00 + offset)..<(0x3c00 + offset + n)])
                XCTAssertEqual(DistanceKernels.floats(fromHalfBits: src).map(\.bitPattern),
                               src.map { ReferenceKernels.float(fromHalfBits: $0).bitPattern }, "\(level) n=\(n)")
            }
        }
    }

    /// float32 inputs that decide float16 rounding: every float16 value, every tie half-way between
    /// neighbours (including 65520, the tie between the largest finite value and infinity), the floats
    /// just below and above each tie, both signs; special values; random bit patterns.
    func floatToHalfCases() -> [Float] {
        var cases: [Float] = []
        for h in UInt16(0)...0x7c00 {
            let x = ReferenceKernels.float(fromHalfBits: h)
            cases.append(x)
            if h < 0x7c00 {
                let next = h + 1 < 0x7c00 ? Double(ReferenceKernels.float(fromHalfBits: h + 1)) : 65536.0
                let tie = Float((Double(x) + next) / 2)  // 12 significant bits: exact in float32
                cases += [tie, tie.nextDown, tie.nextUp]
            }
        }
        cases += cases.map { -$0 }
        cases += [.nan, -.nan, .signalingNaN, .infinity, -.infinity, .greatestFiniteMagnitude,
                  .leastNormalMagnitude, .leastNonzeroMagnitude, 65519.99, 65520, 1e-8, 2.9802322e-08]
        cases.append(Float(bitPattern: 0x7fc0_1234))
        cases.append(Float(bitPattern: 0xffa0_0001))  // signalling NaN with a low payload
        var rng = KernelTestRNG(seed: 0x5eed_0004)
        for _ in 0..<100_000 { cases.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
        return cases
    }

    func testFloatToHalfIsExact() throws {
        let cases = floatToHalfCases()
        let want = cases.map { ReferenceKernels.halfBits(from: $0) }
        for i in cases.indices {
            assertSameHalf(DistanceKernels.halfBits(from: cases[i]), want[i],
                           String(format: "single %08x", cases[i].bitPattern))
        }
        forEachLevel { level in
            let got = DistanceKernels.halfBits(from: cases)
            var failures = 0
            for i in cases.indices where failures < 10 {
                let ok = Float16(bitPattern: want[i]).isNaN
                    ? Float16(bitPattern: got[i]).isNaN && got[i] & 0x8000 == want[i] & 0x8000
                    : got[i] == want[i]
                if !ok {
                    failures += 1
                    XCTFail(String(format: "%@: %08x -> %04x, want %04x", level, cases[i].bitPattern, got[i], want[i]))
                }
            }
            // Round trip of every finite float16 value, and every tail length of the bulk conversion.
            for h in UInt16(0)...UInt16.max where !Float16(bitPattern: h).isNaN {
                XCTAssertEqual(DistanceKernels.halfBits(from: DistanceKernels.float(fromHalfBits: h)), h)
            }
            for n in 0...40 {
                let src = Array(cases[(1000 + n)..<(1000 + 2 * n)])
                XCTAssertEqual(DistanceKernels.halfBits(from: src), src.map { ReferenceKernels.halfBits(from: $0) },
                               "\(level) n=\(n)")
            }
        }
    }

    // MARK: Dispatch

    func testInstructionSetSelection() throws {
        #if canImport(Glibc)
        // STRATA_KERNELS caps the default choice; it is read again whenever the default is restored.
        let saved = getenv("STRATA_KERNELS").map { String(cString: $0) }
        defer {
            if let saved { setenv("STRATA_KERNELS", saved, 1) } else { unsetenv("STRATA_KERNELS") }
            DistanceKernels.overrideInstructionSet(nil)
        }
        unsetenv("STRATA_KERNELS")
        #endif
        let best = try XCTUnwrap(DistanceKernels.overrideInstructionSet(nil))
        XCTAssertTrue(Self.levels.contains(best))
        XCTAssertNil(DistanceKernels.overrideInstructionSet("sse9"))
        XCTAssertEqual(DistanceKernels.instructionSet, best, "an unknown name changes nothing")
        // Forcing never goes above what the CPU has, and falls back to the best level below.
        let bestRank = try XCTUnwrap(Self.levels.firstIndex(of: best))
        for (rank, level) in Self.levels.enumerated() {
            XCTAssertEqual(DistanceKernels.overrideInstructionSet(level), Self.levels[min(rank, bestRank)])
        }
        #if canImport(Glibc)
        setenv("STRATA_KERNELS", "scalar", 1)
        XCTAssertEqual(DistanceKernels.overrideInstructionSet(nil), "scalar")
        setenv("STRATA_KERNELS", "avx512", 1)
        XCTAssertEqual(DistanceKernels.overrideInstructionSet(nil), best, "a cap above the CPU's level")
        setenv("STRATA_KERNELS", "bogus", 1)
        XCTAssertEqual(DistanceKernels.overrideInstructionSet(nil), best, "an unknown name is ignored")
        #endif
    }
}
