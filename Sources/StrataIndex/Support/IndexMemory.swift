// Returning a finished build's heap to the kernel.
import CStrataKernels

/// Process memory housekeeping around index builds.
package enum IndexMemory {
    /// Returns the heap memory freed by a finished build to the kernel (glibc `malloc_trim`), so that a
    /// process that builds and then serves (like `strata bench`) reports the anonymous memory that
    /// serving needs. The corresponding C function is `malloc_trim`.
    /// - Returns: whether any memory was released.
    @discardableResult
    public static func trimHeap() -> Bool { strata_trim_heap() != 0 }
}
