// The one clock Strata measures durations with (build, flush and compaction times, rate limits).
#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the monotonic clock (`CLOCK_MONOTONIC`): only differences mean anything.
package func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
