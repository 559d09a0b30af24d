// The test oracle for the distance kernels (moved out of StrataIndex: the product does not ship it).

/// Plain Swift reference implementations of ``DistanceKernels``, which the tests compare the C
/// kernels against.
///
/// Written for obviousness, not speed: one loop each, sums accumulated in `Double` so that a test
/// can bound the kernels' rounding error (use ``absoluteDot(_:_:)`` as the scale), and float16
/// conversion through the standard library's `Float16` (IEEE 754, round to nearest even), an
/// implementation independent of the C code. Not for production paths.
package enum ReferenceKernels {
    /// `Σ a[i] * b[i]` in `Double`.
    package static func dot(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var sum = 0.0
        for i in a.indices { sum += Double(a[i]) * Double(b[i]) }
        return sum
    }

    /// `Σ |a[i] * b[i]|` in `Double`: the scale of the rounding error of any summation order of
    /// ``dot(_:_:)``.
    package static func absoluteDot(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var sum = 0.0
        for i in a.indices { sum += abs(Double(a[i]) * Double(b[i])) }
        return sum
    }

    /// `Σ (a[i] - b[i])²` in `Double`.
    package static func l2Squared(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var sum = 0.0
        for i in a.indices {
            let d = Double(a[i]) - Double(b[i])
            sum += d * d
        }
        return sum
    }

    /// The float32 value of a float16 bit pattern, through `Float16`.
    package static func float(fromHalfBits bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    /// The float16 bit pattern nearest to `value` (ties to even), through `Float16`.
    package static func halfBits(from value: Float) -> UInt16 {
        Float16(value).bitPattern
    }

    /// The float16 vector `b` widened to float32, for the float16 kernels' references.
    package static func floats(fromHalfBits b: [UInt16]) -> [Float] {
        b.map { float(fromHalfBits: $0) }
    }
}
