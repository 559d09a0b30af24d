// Cache prefetch hints for the search loops (the C kernels' inline helpers, strata_index_kernels.h).
import CStrataKernels

/// Hints the CPU to bring memory into cache before a loop needs it. A hint never faults, whatever
/// the address, so these are safe to call with any pointer.
package enum Prefetch {
    /// Brings the cache line holding `p` into every cache level.
    @inlinable @inline(__always)
    package static func line(_ p: UnsafeRawPointer) { strata_prefetch(p) }

    /// Brings `bytes` bytes from `p` into every cache level, one hint per 64-byte line.
    @inlinable @inline(__always)
    package static func range(_ p: UnsafeRawPointer, bytes: Int) { strata_prefetch_range(p, bytes) }

    /// Brings `bytes` bytes from `p` into L2 only (not L1), one hint per 64-byte line: for many rows
    /// requested at once, so that their memory reads overlap without evicting L1.
    @inlinable @inline(__always)
    package static func rangeL2(_ p: UnsafeRawPointer, bytes: Int) { strata_prefetch_range_l2(p, bytes) }
}
