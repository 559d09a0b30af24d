// Which pages of a file are in the page cache now: `mincore(2)` on a read-only mapping of the file,
// taken once at construction into a bitset (one bit per page) and unmapped at once; what
// `strata stats --parts` shows beside each part's size.
import StrataFormat
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The page-cache residency of one file at one moment. Mapping the file reads nothing: `mincore`
/// only reports the page cache's state, so taking it does not change what it measures.
package struct PageResidency: Sendable {
    /// The file's size when measured.
    package let length: UInt64
    /// The system page size.
    package let pageSize: Int
    /// Bit p set: page p was resident.
    private var bits: [UInt64]
    /// Pages asked per `mincore` call (its vector stays 64 KiB whatever the file's size).
    private static let pagesPerCall = 65_536

    /// Measures `path`. Throws `.io` when it cannot be opened or mapped.
    package init(path: String) throws(StrataError) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        pageSize = page
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StrataError(.io, "cannot open for mincore", path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StrataError(.io, "cannot stat", path: path, errno: errno) }
        let size = Int(st.st_size)
        length = UInt64(size)
        let pages = (size + page - 1) / page
        bits = [UInt64](repeating: 0, count: (pages + 63) / 64)
        guard size > 0 else { return }
        let mapped = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0)
        guard let mapped, mapped != MAP_FAILED else { throw StrataError(.io, "cannot map for mincore", path: path, errno: errno) }
        defer { munmap(mapped, size) }
        var vec = [UInt8](repeating: 0, count: min(Self.pagesPerCall, pages))
        var first = 0
        while first < pages {
            let n = min(Self.pagesPerCall, pages - first)
            let rc = vec.withUnsafeMutableBufferPointer { mincore(mapped + first * page, min(n * page, size - first * page), $0.baseAddress) }
            guard rc == 0 else { throw StrataError(.io, "mincore failed", path: path, errno: errno) }
            for i in 0..<n where vec[i] & 1 != 0 { bits[(first + i) >> 6] |= 1 << UInt64((first + i) & 63) }
            first += n
        }
    }

    /// Bytes of `range` (clamped to the file) whose pages were resident: each resident page counts
    /// for the part of it inside the range, so the residency of ranges that split the file adds up
    /// to the file's.
    package func residentBytes(_ range: Range<UInt64>) -> UInt64 {
        let lo = min(range.lowerBound, length), hi = min(range.upperBound, length)
        guard hi > lo else { return 0 }
        let page = UInt64(pageSize)
        var total: UInt64 = 0
        for p in Int(lo / page)...Int((hi - 1) / page) where bits[p >> 6] & (1 << UInt64(p & 63)) != 0 {
            let start = UInt64(p) * page
            total += min(hi, start + page) - max(lo, start)
        }
        return total
    }
}
