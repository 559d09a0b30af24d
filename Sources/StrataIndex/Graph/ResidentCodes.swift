// The PQ codes a beam search reads, held in anonymous memory.
import StrataFormat
#if canImport(Glibc)
import Glibc
#endif

/// PQ codes held resident in anonymous memory: 2 MiB-aligned and advised for transparent huge pages,
/// because every hop of a search reads ~R random codes and 4 KiB pages make each a TLB miss. Share one
/// store between the per-thread searchers.
// @unchecked Sendable: the storage is written only in `init` and freed in `deinit`; every other
// access is a read, so any number of threads may read the codes at once.
package final class ResidentCodes: @unchecked Sendable {
    /// Bytes per code (M).
    package let codeSize: Int
    /// Number of codes.
    package let count: Int
    let storage: UnsafeMutableRawPointer
    let capacity: Int

    /// Copies `count x codeSize` code bytes.
    /// - Throws: `StrataError.Code.invalidArgument` when the length is not `count * codeSize`.
    package init(copying codes: UnsafeRawBufferPointer, count: Int, codeSize: Int) throws(StrataError) {
        let (need, o) = count.multipliedReportingOverflow(by: codeSize)
        if o || codeSize < 1 || count < 0 || codes.count != need {
            throw StrataError(.invalidArgument, "codes hold \(codes.count) bytes, \(count) rows of \(codeSize) need \(need)")
        }
        self.codeSize = codeSize
        self.count = count
        let huge = 2 << 20
        capacity = max(huge, (need + huge - 1) / huge * huge)
        storage = .allocate(byteCount: capacity, alignment: huge)
        MemoryAdvice.hugePage.apply(to: storage, length: capacity)
        if need > 0 { storage.copyMemory(from: codes.baseAddress!, byteCount: need) }
    }

    deinit { storage.deallocate() }

    /// The codes, `count x codeSize` bytes.
    package var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: count * codeSize) }

    /// Bytes of anonymous memory held (rounded up to whole huge pages).
    package var residentBytes: Int { capacity }
}
