// A raw pointer that may be captured by the worker closures of IndexParallel.

/// A pointer wrapper that may cross into the worker closures of ``IndexParallel``.
@usableFromInline
// @unchecked Sendable: a pointer carries no ownership; every use site writes disjoint slots from
// different workers (or only reads), and IndexParallel.forEach returns only after all workers end.
package struct SendablePointer<T>: @unchecked Sendable {
    @usableFromInline package let base: UnsafeMutablePointer<T>
    @inlinable package init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}
