// Paces a background reader (`strata scrub`) to a byte rate, so that a check of a whole collection
// run from cron leaves the disk to the searches and writes it shares it with.
#if canImport(Glibc)
import Glibc
#endif

/// Sleeps as needed so that bytes reported through ``consume(_:)`` arrive at no more than
/// `bytesPerSecond` on average since the limiter was made. Not thread-safe: one reader.
package final class ByteRateLimiter {
    /// The rate; nil or not positive: no limit.
    let bytesPerSecond: Double?
    private let start = monotonicSeconds()
    private var consumed: Double = 0

    package init(bytesPerSecond: Double?) {
        self.bytesPerSecond = bytesPerSecond.flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
    }

    /// Records `bytes` read and sleeps until the average rate is back at the limit.
    package func consume(_ bytes: Int) {
        guard let rate = bytesPerSecond else { return }
        consumed += Double(bytes)
        var due = consumed / rate - (monotonicSeconds() - start)
        while due > 0 {
            // At most an hour per sleep: a tiny rate gives a huge `due`, which must not overflow
            // the conversion to whole seconds.
            let step = min(due, 3600)
            var request = timespec(tv_sec: Int(step), tv_nsec: Int((step - step.rounded(.down)) * 1e9))
            var remaining = timespec()
            while nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
            due = consumed / rate - (monotonicSeconds() - start)
        }
    }
}
