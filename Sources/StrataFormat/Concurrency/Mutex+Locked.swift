// Strata's one lock type is `Mutex` from the Synchronization module. A lock that guards several
// stored properties of a class (rather than a value inside it) is a `Mutex<Void>`, taken with
// `locked { ... }`.
import Synchronization

extension Mutex where Value == Void {
    /// Runs `body` with the mutex held and returns its result.
    @inline(__always)
    package borrowing func locked<R: Sendable, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        try withLock { (_: inout sending Void) throws(E) -> R in try body() }
    }
}
