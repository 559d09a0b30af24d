// Advice to the kernel about ranges of memory (`madvise(2)`): mapped files (MappedFile.swift) and
// large anonymous buffers. Advice only: failures are ignored, and a range is trimmed to whole pages.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `madvise` advice values.
package enum MemoryAdvice {
    /// Pages will be touched in random order (no read-ahead).
    case random
    /// Pages will be read once, in order (aggressive read-ahead).
    case sequential
    /// Pages will be needed soon: start reading them now, without waiting.
    case willNeed
    /// No particular pattern (the default).
    case normal
    /// The pages are not needed: drop them from this process (a shared file mapping keeps them in
    /// the page cache; anonymous memory reads back as zeros).
    case dontNeed
    /// Back the range with transparent huge pages where possible (anonymous memory).
    case hugePage

    @usableFromInline var rawValue: Int32 {
        switch self {
        case .random: return MADV_RANDOM
        case .sequential: return MADV_SEQUENTIAL
        case .willNeed: return MADV_WILLNEED
        case .normal: return MADV_NORMAL
        case .dontNeed: return MADV_DONTNEED
        case .hugePage: return 14 // MADV_HUGEPAGE (Linux)
        }
    }

    /// Gives this advice for the `length` bytes at `address`, which must be page-aligned.
    /// Inlinable: the node cache calls it on the search path.
    @inlinable @inline(__always)
    package func apply(to address: UnsafeMutableRawPointer?, length: Int) {
        _ = madvise(address, length, rawValue)
    }

    /// Gives this advice for the whole pages inside the byte range `from..<to` (addresses).
    /// `from` is rounded up and `to` down to a page boundary; nothing is done when no whole page remains.
    package func applyToWholePages(from: Int, to: Int) {
        let page = 4096
        let start = (from + page - 1) / page * page
        let end = to / page * page
        guard end > start else { return }
        apply(to: UnsafeMutableRawPointer(bitPattern: start), length: end - start)
    }
}
