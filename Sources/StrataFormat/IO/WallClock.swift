// Wall-clock time, for timestamps stored in files (manifest creation time, when a file became
// obsolete). Durations are measured with `monotonicSeconds()` (MonotonicClock.swift) instead.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The system's real-time clock.
package enum WallClock {
    /// Milliseconds since the Unix epoch (`clock_gettime(CLOCK_REALTIME)`). May step back.
    package static func milliseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return UInt64(t.tv_sec) * 1000 + UInt64(t.tv_nsec) / 1_000_000
    }
}
