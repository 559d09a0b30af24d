// The tests' and fixture generators' PRNG: the package's one generator, IndexRandom (SplitMix64),
// with the draws the fixtures use.
import Foundation
import Strata
import StrataIndex

/// SplitMix64: tiny, fast, fully deterministic across platforms (integer arithmetic only). The same
/// generator as the index builds' (``IndexRandom``): `SplitMix64(seed:)` gives the same numbers.
package typealias SplitMix64 = IndexRandom

extension IndexRandom {
    /// Uniform in [0, 1) with 24 bits (exactly representable as Float).
    package mutating func unitFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in 0..<n (by modulo: the fixtures' sequences depend on it); 0 when n < 1.
    package mutating func int(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }

    /// Approximately normal(0, 1) from four uniforms (Irwin-Hall); +, * only, so bit-reproducible.
    package mutating func gaussianish() -> Float {
        (unitFloat() + unitFloat() + unitFloat() + unitFloat() - 2) * 1.7320508
    }
}
