// Swift face of the C distance kernels (Sources/CStrataKernels/strata_kernels.c); the plain Swift
// reference implementations that the tests compare them against are in StrataTestSupport (ReferenceKernels).
//
// The C target exists because a plain `swift build` targets baseline x86-64: generic Swift SIMD code
// with FMA becomes a libm call per lane, and nothing wider than SSE is emitted (STYLE.md, practice 11).
// The C kernels pick AVX-512, AVX2+FMA+F16C or a portable path once at run time, without compiler
// flags. Everything here is a thin, inlinable call; no allocation, no dispatch in Swift.

import StrataFormat
import CStrataKernels

/// Distance kernels over float32 and float16 vectors, dispatched once at run time to the best
/// instruction set of the CPU (AVX-512, AVX2 + FMA + F16C, or a portable path).
///
/// Results of the distance kernels differ between instruction sets only by floating-point summation
/// order (relative differences of about 1e-7 of the sum of the absolute products). Conversions
/// between float16 and float32 are bit-exact on every instruction set.
///
/// Float16 values are passed as their raw IEEE 754 binary16 bit patterns (`UInt16`), which is how
/// Strata stores them on disk (little-endian).
///
/// The pointer-taking functions (named `unsafe…`) read exactly `count` elements from each pointer
/// and nothing beyond; the caller guarantees that those elements are readable. The buffer- and
/// array-taking functions check their lengths.
public enum DistanceKernels {
    // MARK: Float32

    /// The inner product `Σ a[i] * b[i]` of two float32 vectors.
    ///
    /// The corresponding C function is `strata_dot_f32`.
    /// - Parameters:
    ///   - a: The first vector; `count` elements are read.
    ///   - b: The second vector; `count` elements are read.
    ///   - count: The number of elements, at least 0.
    /// - Returns: The inner product; 0 when `count` is 0.
    /// - Complexity: O(`count`).
    @inlinable
    public static func unsafeDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        precondition(count >= 0, "negative count")
        return strata_dot_f32(a, b, count)
    }

    /// The squared Euclidean distance `Σ (a[i] - b[i])²` of two float32 vectors.
    ///
    /// The corresponding C function is `strata_l2sq_f32`.
    /// - Parameters:
    ///   - a: The first vector; `count` elements are read.
    ///   - b: The second vector; `count` elements are read.
    ///   - count: The number of elements, at least 0.
    /// - Returns: The squared distance; 0 when `count` is 0.
    /// - Complexity: O(`count`).
    @inlinable
    public static func unsafeL2Squared(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        precondition(count >= 0, "negative count")
        return strata_l2sq_f32(a, b, count)
    }

    /// The inner product of two float32 vectors of the same length.
    ///
    /// - Parameters:
    ///   - a: The first vector.
    ///   - b: The second vector; must have as many elements as `a`.
    /// - Returns: The inner product; 0 for empty buffers.
    /// - Complexity: O(`a.count`).
    @inlinable
    public static func dot(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        precondition(a.count == b.count, "vectors of different lengths")
        guard let pa = a.baseAddress, let pb = b.baseAddress else { return 0 }
        return strata_dot_f32(pa, pb, a.count)
    }

    /// The squared Euclidean distance of two float32 vectors of the same length.
    ///
    /// - Parameters:
    ///   - a: The first vector.
    ///   - b: The second vector; must have as many elements as `a`.
    /// - Returns: The squared distance; 0 for empty buffers.
    /// - Complexity: O(`a.count`).
    @inlinable
    public static func l2Squared(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Float {
        precondition(a.count == b.count, "vectors of different lengths")
        guard let pa = a.baseAddress, let pb = b.baseAddress else { return 0 }
        return strata_l2sq_f32(pa, pb, a.count)
    }

    // MARK: Float32 query against float16 data

    /// The inner product of a float32 vector and a float16 vector (raw binary16 bits).
    ///
    /// The float16 values are widened exactly; products and sums are in float32.
    /// The corresponding C function is `strata_dot_f16`.
    /// - Parameters:
    ///   - a: The float32 vector (typically the query); `count` elements are read.
    ///   - b: The float16 vector as bit patterns (typically stored data); `count` elements are read.
    ///   - count: The number of elements, at least 0.
    /// - Returns: The inner product; 0 when `count` is 0.
    /// - Complexity: O(`count`).
    @inlinable
    public static func unsafeDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<UInt16>, count: Int) -> Float {
        precondition(count >= 0, "negative count")
        return strata_dot_f16(a, b, count)
    }

    /// The squared Euclidean distance of a float32 vector and a float16 vector (raw binary16 bits).
    ///
    /// The corresponding C function is `strata_l2sq_f16`.
    /// - Parameters:
    ///   - a: The float32 vector (typically the query); `count` elements are read.
    ///   - b: The float16 vector as bit patterns (typically stored data); `count` elements are read.
    ///   - count: The number of elements, at least 0.
    /// - Returns: The squared distance; 0 when `count` is 0.
    /// - Complexity: O(`count`).
    @inlinable
    public static func unsafeL2Squared(_ a: UnsafePointer<Float>, _ b: UnsafePointer<UInt16>, count: Int) -> Float {
        precondition(count >= 0, "negative count")
        return strata_l2sq_f16(a, b, count)
    }

    // MARK: Conversions

    /// Converts `count` float16 values (raw binary16 bits) to float32. Exact: every float16 value is
    /// a float32 value; NaNs stay NaN (quieted).
    ///
    /// The corresponding C function is `strata_f16_to_f32`.
    /// - Parameters:
    ///   - source: The float16 bit patterns; `count` elements are read.
    ///   - destination: Where the floats go; `count` elements are written. May not overlap `source`.
    ///   - count: The number of elements, at least 0.
    /// - Complexity: O(`count`).
    @inlinable
    public static func unsafeConvertToFloat(
        halfBits source: UnsafePointer<UInt16>, into destination: UnsafeMutablePointer<Float>, count: Int
    ) {
        precondition(count >= 0, "negative count")
        strata_f16_to_f32(source, destination, count)
    }

    /// Converts `count` float32 values to float16 bit patterns, rounding to nearest, ties to even.
    ///
    /// Values beyond the float16 range (magnitude at least 65520) become infinities; tiny values
    /// become float16 subnormals or signed zeros; NaNs stay NaN (quieted, payload truncated).
    /// The corresponding C function is `strata_f32_to_f16`.
    /// - Parameters:
    ///   - source: The floats; `count` elements are read.
    ///   - destination: Where the float16 bit patterns go; `count` elements are written.
    ///   - count: The number of elements, at least 0.
    /// - Complexity: O(`count`).
    @inlinable
    public static func unsafeConvertToHalf(
        _ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<UInt16>, count: Int
    ) {
        precondition(count >= 0, "negative count")
        strata_f32_to_f16(source, destination, count)
    }

    /// The float32 value of one float16 bit pattern (exact).
    ///
    /// The corresponding C function is `strata_half_to_float`.
    /// - Parameter bits: An IEEE 754 binary16 bit pattern.
    /// - Returns: The same value as a float32; NaN (quieted) for NaN patterns.
    @inlinable
    public static func float(fromHalfBits bits: UInt16) -> Float {
        strata_half_to_float(bits)
    }

    /// The float16 bit pattern nearest to a float32 value (ties to even).
    ///
    /// The corresponding C function is `strata_float_to_half`.
    /// - Parameter value: Any float32 value.
    /// - Returns: The IEEE 754 binary16 bit pattern; see ``unsafeConvertToHalf(_:into:count:)`` for ranges.
    @inlinable
    public static func halfBits(from value: Float) -> UInt16 {
        strata_float_to_half(value)
    }

    /// Converts float32 values to float16 bit patterns (ties to even).
    ///
    /// - Parameter values: The floats.
    /// - Returns: One bit pattern per value.
    /// - Complexity: O(`values.count`).
    public static func halfBits(from values: [Float]) -> [UInt16] {
        [UInt16](unsafeUninitializedCapacity: values.count) { out, initialized in
            values.withUnsafeBufferPointer { src in
                if let s = src.baseAddress, let d = out.baseAddress { strata_f32_to_f16(s, d, src.count) }
            }
            initialized = values.count
        }
    }

    /// Converts float16 bit patterns to float32 values (exact).
    ///
    /// - Parameter bits: The float16 bit patterns.
    /// - Returns: One float per bit pattern.
    /// - Complexity: O(`bits.count`).
    public static func floats(fromHalfBits bits: [UInt16]) -> [Float] {
        [Float](unsafeUninitializedCapacity: bits.count) { out, initialized in
            bits.withUnsafeBufferPointer { src in
                if let s = src.baseAddress, let d = out.baseAddress { strata_f16_to_f32(s, d, src.count) }
            }
            initialized = bits.count
        }
    }

    // MARK: Many rows against many columns

    /// Squared L2 distances of `count` float32 rows to `width` columns stored transposed
    /// (`transposed[j * width + c]` is coordinate j of column c), for exact ground truth: row r starts
    /// at `rows + r * rowStride` (`dimension` floats; `rowStride >= dimension`), and
    /// `out[r * width + c]` receives its distance to column c. `width` must be a multiple of 16 (pad
    /// the columns). Each distance is summed in the same order whatever `count`, so splitting rows
    /// into blocks or threads changes no result. Unchecked: the caller guarantees the extents.
    ///
    /// The corresponding C function is `strata_l2_block_transposed_f32`.
    @inlinable
    package static func unsafeL2BlockTransposed(
        rows: UnsafePointer<Float>, rowStride: Int, count: Int, transposed: UnsafePointer<Float>,
        dimension: Int, width: Int, into out: UnsafeMutablePointer<Float>
    ) {
        precondition(count >= 0 && rowStride >= dimension && width % 16 == 0, "bad block shape")
        strata_l2_block_transposed_f32(rows, rowStride, count, transposed, dimension, width, out)
    }

    // MARK: Instruction set

    /// The instruction set the kernels use: `"avx512"`, `"avx2"` or `"scalar"` (the portable path),
    /// for `strata dump`, `strata bench` and logs.
    ///
    /// The choice is made once per process, for every C kernel family: the best level the CPU and OS
    /// support, capped by the environment variable `STRATA_KERNELS` (`scalar`, `avx2` or `avx512`)
    /// if set, or as last set by ``overrideInstructionSet(_:)``.
    /// The corresponding C function is `strata_kernels_isa`.
    public static var instructionSet: String {
        String(cString: strata_kernels_isa())
    }

    /// Forces the instruction set of these kernels, and of the index and filter kernels (one C
    /// dispatcher chooses for all), for the whole process, for tests and benchmarks.
    ///
    /// A level the CPU lacks falls back to the best supported level below it, so the returned name
    /// may differ from the requested one. Thread-safe: calls already running finish on the level they
    /// started with, and every level computes the same distances up to rounding.
    /// The corresponding C function is `strata_kernels_force`.
    /// - Parameter name: `"scalar"`, `"avx2"` or `"avx512"`; `nil` restores the default choice
    ///   (see ``instructionSet``).
    /// - Returns: The instruction set now in use, or `nil` (and nothing changes) if `name` is not
    ///   one of the names above.
    @discardableResult
    public static func overrideInstructionSet(_ name: String?) -> String? {
        let result: UnsafePointer<CChar>?
        if let name {
            result = name.withCString { strata_kernels_force($0) }
        } else {
            result = strata_kernels_force(nil)
        }
        return result.map { String(cString: $0) }
    }
}
