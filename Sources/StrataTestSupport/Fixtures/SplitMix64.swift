// A deterministic PRNG for tests and fixture generators.
import Foundation
import Strata

/// SplitMix64: tiny, fast, fully deterministic across platforms (integer arithmetic only).
package struct SplitMix64 {
    package var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 bits (exactly representable as Float).
    package mutating func unitFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in 0..<n.
    package mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Approximately normal(0, 1) from four uniforms (Irwin-Hall); +, * only, so bit-reproducible.
    package mutating func gaussianish() -> Float {
        (unitFloat() + unitFloat() + unitFloat() + unitFloat() - 2) * 1.7320508
    }
}
