// Paces a background reader (`strata scrub`) to a byte rate, so that a check of a whole collection
// run from cron leaves the disk to the searches and writes it shares it with.
#if canImport(Glibc)
import Glibc
#endif

/// Sleeps as needed so that bytes reported through ``consume(_:)`` arrive at no more than
/// `bytesPerSecond` on average since the limiter was made. Not thread-safe: one reader.
final class ByteRateLimiter {
    /// The rate; nil or not positive: no limit.
    let bytesPerSecond: Double?
    private let start = monotonicSeconds()
    private var consumed: Double = 0

    init(bytesPerSecond: Double?) {
        self.bytesPerSecond = bytesPerSecond.flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
    }

    /// Records `bytes` read and sleeps until the average rate is back at the limit.
    func consume(_ bytes: Int) {
        guard let rate = bytesPerSecond else { return }
        consumed += Double(bytes)
        let due = consumed / rate - (monotonicSeconds() - start)
        guard due > 0 else { return }
        var request = timespec(tv_sec: Int(due), tv_nsec: Int((due - Double(Int(due))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
    }
}
