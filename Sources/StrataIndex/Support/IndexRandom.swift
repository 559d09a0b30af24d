// The one random number generator of the package: every random choice of an index build, of the
// synthetic data generator and of the tests' data goes through it, seeded, so results repeat bit
// for bit.

/// SplitMix64: a tiny, fast, seedable generator. Every random choice in index building goes through
/// one of these, seeded from the user's seed (and, for per-item streams, the item number), so builds
/// are reproducible bit for bit.
@usableFromInline
package struct IndexRandom: RandomNumberGenerator {
    @usableFromInline var state: UInt64

    /// A generator whose state starts at `seed` (one stream; see ``init(seed:stream:)`` for many).
    @inlinable package init(seed: UInt64) { state = seed }

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
