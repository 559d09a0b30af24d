// A value (typically a non-Sendable closure or pointer) carried into IndexParallel's workers.

/// Carries a value that is not `Sendable` into the worker closures of ``IndexParallel``.
@usableFromInline
// @unchecked Sendable: the boxed value is only read by the workers (a closure whose captures are
// read-only or written at disjoint per-item slots, or a pointer to data frozen for the loop), and
// IndexParallel.forEach does not return before every worker has finished with it.
package struct UncheckedBox<T>: @unchecked Sendable {
    @usableFromInline package let value: T
    @inlinable package init(_ value: T) { self.value = value }
}
