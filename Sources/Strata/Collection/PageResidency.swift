// How much of a file's byte range is in the page cache now (`mincore(2)` on a fresh read-only
// mapping of the file): what `strata stats --parts` shows beside each part's size.
import StrataFormat
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only mapping of one file, asked which of its pages are resident. The mapping itself
/// reads nothing: `mincore` only reports the page cache's state.
package final class PageResidency {
    private let base: UnsafeMutableRawPointer?
    private let length: Int
    /// The system page size.
    package let pageSize: Int
    /// Pages asked per `mincore` call (the residency vector stays 64 KiB whatever the file's size).
    private static let pagesPerCall = 65_536

    /// Maps `path` read-only. Throws `.io` when it cannot be opened or mapped.
    package init(path: String) throws(StrataError) {
        pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StrataError(.io, "cannot open for mincore", path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StrataError(.io, "cannot stat", path: path, errno: errno) }
        length = Int(st.st_size)
        guard length > 0 else { base = nil; return }
        let p = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else { throw StrataError(.io, "cannot map for mincore", path: path, errno: errno) }
        base = p
    }

    deinit {
        if let base { munmap(base, length) }
    }

    /// Bytes of `range` (clamped to the file) whose pages are resident: each resident page counts
    /// for the part of it that lies in the range, so the residency of ranges that split the file
    /// adds up to the file's.
    package func residentBytes(_ range: Range<UInt64>) -> UInt64 {
        guard let base else { return 0 }
        let lo = Int(min(range.lowerBound, UInt64(length))), hi = Int(min(range.upperBound, UInt64(length)))
        guard hi > lo else { return 0 }
        var total: UInt64 = 0
        var page = lo / pageSize
        let lastPage = (hi - 1) / pageSize
        var vec = [UInt8](repeating: 0, count: min(Self.pagesPerCall, lastPage - page + 1))
        while page <= lastPage {
            let n = min(Self.pagesPerCall, lastPage - page + 1)
            let rc = vec.withUnsafeMutableBufferPointer { mincore(base + page * pageSize, min(n * pageSize, length - page * pageSize), $0.baseAddress) }
            if rc == 0 {
                for i in 0..<n where vec[i] & 1 != 0 {
                    let start = (page + i) * pageSize
                    total += UInt64(min(hi, start + pageSize) - max(lo, start))
                }
            }
            page += n
        }
        return total
    }
}
