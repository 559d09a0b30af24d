#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory mapping of a whole file. The mapping lives as long as this object; it is
/// shared by every reader of one `Segment`, so it is `Sendable` (the bytes never change).
///
/// Unchecked `Sendable`: the buffer pointer is set once and the pages are mapped read-only (`PROT_READ`);
/// `munmap` happens only in `deinit`.
package final class MappedFile: @unchecked Sendable {
    /// The mapped bytes (empty for an empty file).
    package let bytes: UnsafeRawBufferPointer
    /// The path, for error messages.
    package let path: String

    /// Maps `path` read-only (`mmap(PROT_READ, MAP_SHARED)`).
    package init(path: String) throws(StrataError) {
        let file = try SystemFile.openForReading(path)
        defer { file.close() }
        let size = try file.size()
        self.path = path
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard size <= UInt64(Int.max) else {
            throw StrataError(.unsupportedFeature, "file too large to map", path: path)
        }
        let address = mmap(nil, Int(size), PROT_READ, MAP_SHARED, file.descriptor, 0)
        guard let address, address != MAP_FAILED else { throw SystemFile.ioError("mmap failed", path: path) }
        bytes = UnsafeRawBufferPointer(start: address, count: Int(size))
    }

    /// Tells the kernel how a byte range will be accessed (`madvise`). Failures are ignored: advice only.
    package func advise(_ advice: MemoryAdvice, range: Range<Int>? = nil) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let page = 4096
        let r = range ?? 0..<bytes.count
        let start = r.lowerBound / page * page
        let end = min(bytes.count, r.upperBound)
        guard end > start else { return }
        advice.apply(to: UnsafeMutableRawPointer(mutating: base + start), length: end - start)
    }

    deinit {
        if let base = bytes.baseAddress, bytes.count > 0 {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}
