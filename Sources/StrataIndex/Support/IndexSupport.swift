// Shared helpers for the approximate-search index: a seeded RNG, a deterministic parallel loop,
// little-endian byte writing/reading with bounds checks, and full-precision distance dispatch.
import StrataFormat
import CStrataKernels
import Dispatch
import Synchronization
#if os(Linux)
import Glibc
#else
import Foundation
#endif

/// SplitMix64: a tiny, fast, seedable generator. Every random choice in index building goes through
/// one of these, seeded from the user's seed (and, for per-item streams, the item number), so builds
/// are reproducible bit for bit.
@usableFromInline
package struct IndexRandom: RandomNumberGenerator {
    @usableFromInline var state: UInt64

    @inlinable init(seed: UInt64) { state = seed }

    /// A generator for item `stream` of a computation seeded with `seed`, independent of thread order.
    @inlinable package init(seed: UInt64, stream: UInt64) {
        state = seed ^ (stream &* 0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03
        _ = next()
    }

    @inlinable package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<bound` (bound > 0), by multiply-shift (Lemire, without the rejection step:
    /// the bias is below 2^-32 for the bounds used here).
    @inlinable package mutating func below(_ bound: Int) -> Int {
        let r = next() >> 32
        return Int((r &* UInt64(bound)) >> 32)
    }
}

/// A pointer wrapper that may cross into the worker closures of ``IndexParallel``. Every use writes
/// disjoint slots (or only reads), which is what makes the `@unchecked Sendable` sound.
@usableFromInline
package struct SendablePointer<T>: @unchecked Sendable {
    @usableFromInline package let base: UnsafeMutablePointer<T>
    @inlinable package init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// Deterministic data-parallel loops. Work items are handed out dynamically, but each item's result
/// depends only on its index and on data frozen for the loop, so the outcome does not depend on the
/// number of threads or on scheduling.
package enum IndexParallel {
    /// The number of worker threads to use when the caller does not say: the active processor count.
    package static var defaultThreadCount: Int {
        #if os(Linux)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
        #endif
    }

    /// Runs `body(worker, item)` for every item in `0..<count` on up to `threads` workers.
    /// `worker` is in `0..<threads` and identifies per-thread scratch; `chunk` items are claimed at a time.
    package static func forEach(count: Int, threads: Int, chunk: Int = 1,
                        _ body: (_ worker: Int, _ item: Int) -> Void) {
        if count <= 0 { return }
        let workers = max(1, min(threads, (count + chunk - 1) / chunk))
        if workers == 1 {
            for i in 0..<count { body(0, i) }
            return
        }
        let nextItem = Atomic<Int>(0)
        withoutActuallyEscaping(body) { body in
            let box = UncheckedBox(body)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                while true {
                    let start = nextItem.wrappingAdd(chunk, ordering: .relaxed).oldValue
                    if start >= count { break }
                    for i in start..<min(count, start + chunk) { box.value(worker, i) }
                }
            }
        }
    }
}

@usableFromInline
package struct UncheckedBox<T>: @unchecked Sendable {
    @usableFromInline package let value: T
    @inlinable package init(_ value: T) { self.value = value }
}

/// Little-endian serialisation into a growing byte array.
struct IndexByteWriter {
    var bytes: [UInt8] = []

    mutating func append(_ s: String) { bytes.append(contentsOf: Array(s.utf8)) }
    mutating func append(_ v: UInt8) { bytes.append(v) }
    mutating func append(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func append(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func append(_ v: Float) { append(v.bitPattern) }
    mutating func append(floats: [Float]) {
        bytes.reserveCapacity(bytes.count + floats.count * 4)
        for f in floats { append(f.bitPattern) }
    }
}

/// Bounds-checked little-endian reader over untrusted bytes: every read checks the remaining length
/// first and throws `StrataError.Code.corrupt` (with the section name and offset) instead of trapping.
struct IndexByteReader {
    let bytes: UnsafeRawBufferPointer
    let section: String
    var offset: Int = 0

    init(_ bytes: UnsafeRawBufferPointer, section: String) {
        self.bytes = bytes
        self.section = section
    }

    var remaining: Int { bytes.count - offset }

    func fail(_ message: String) -> StrataError {
        StrataError(.corrupt, message, section: section, offset: UInt64(offset))
    }

    mutating func need(_ n: Int, _ what: String) throws(StrataError) {
        if n < 0 || n > remaining { throw fail("truncated \(what): need \(n) bytes, \(remaining) left") }
    }

    mutating func expectMagic(_ magic: String) throws(StrataError) {
        let m = Array(magic.utf8)
        try need(m.count, "magic")
        for i in 0..<m.count where bytes[offset + i] != m[i] { throw fail("bad magic, expected \(magic)") }
        offset += m.count
    }

    mutating func readU8() throws(StrataError) -> UInt8 {
        try need(1, "u8")
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readU32() throws(StrataError) -> UInt32 {
        try need(4, "u32")
        defer { offset += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    mutating func readU64() throws(StrataError) -> UInt64 {
        try need(8, "u64")
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Reads `count` little-endian floats; the length is checked (overflow-safe) before allocating.
    mutating func readFloats(_ count: Int, _ what: String) throws(StrataError) -> [Float] {
        let (n, overflow) = count.multipliedReportingOverflow(by: 4)
        if overflow || count < 0 { throw fail("\(what): count \(count) too large") }
        try need(n, what)
        var out = [Float](repeating: 0, count: count)
        let base = offset
        for i in 0..<count {
            out[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: base + i * 4, as: UInt32.self)))
        }
        offset += n
        return out
    }

    func expectEnd() throws(StrataError) {
        if remaining != 0 { throw fail("\(remaining) trailing bytes") }
    }
}

/// Full-precision distances in Strata's convention (smaller is closer), through the C kernels.
@usableFromInline
package enum IndexDistance {
    /// Distance between two float32 vectors of length `n` under `metric`.
    @inlinable @inline(__always)
    package static func f32(_ metric: DistanceMetric, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        switch metric {
        case .l2: return strata_l2sq_f32(a, b, n)
        case .innerProduct: return -strata_dot_f32(a, b, n)
        case .cosine: return 1 - strata_dot_f32(a, b, n)
        }
    }

    /// Distance between a float32 query and a float16 (raw bits) vector of length `n`.
    @inlinable @inline(__always)
    package static func f16(_ metric: DistanceMetric, _ a: UnsafePointer<Float>, _ b: UnsafePointer<UInt16>, _ n: Int) -> Float {
        switch metric {
        case .l2: return strata_l2sq_f16(a, b, n)
        case .innerProduct: return -strata_dot_f16(a, b, n)
        case .cosine: return 1 - strata_dot_f16(a, b, n)
        }
    }
}

/// Process memory housekeeping around index builds.
public enum IndexMemory {
    /// Returns the heap memory freed by a finished build to the kernel (glibc `malloc_trim`), so that a
    /// process that builds and then serves (like `strata bench`) reports the anonymous memory that
    /// serving needs. The corresponding C function is `malloc_trim`.
    /// - Returns: whether any memory was released.
    @discardableResult
    public static func trimHeap() -> Bool { strata_trim_heap() != 0 }
}

/// Checks that a row-major float buffer holds `count` rows of `dimension` floats `rowStride` apart.
func checkVectorBuffer(_ vectors: UnsafeBufferPointer<Float>, count: Int, dimension: Int, rowStride: Int) throws(StrataError) {
    if count < 0 { throw StrataError(.invalidArgument, "row count \(count) is negative") }
    if dimension <= 0 { throw StrataError(.invalidArgument, "dimension \(dimension) must be positive") }
    if rowStride < dimension { throw StrataError(.invalidArgument, "row stride \(rowStride) is below the dimension \(dimension)") }
    if count == 0 { return }
    let (a, o1) = (count - 1).multipliedReportingOverflow(by: rowStride)
    let (need, o2) = a.addingReportingOverflow(dimension)
    if o1 || o2 || need > vectors.count {
        throw StrataError(.invalidArgument, "vector buffer holds \(vectors.count) floats, \(count) rows of stride \(rowStride) need more")
    }
    if vectors.baseAddress == nil { throw StrataError(.invalidArgument, "vector buffer has no storage") }
}
