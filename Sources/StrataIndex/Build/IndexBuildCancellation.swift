// Stopping an index build early: the builders ask a caller's `shouldStop` closure once per batch
// of inserted rows (and between partitions and phases), never per distance, and throw the error
// below when it answers true. A collection's background builder uses it so that `close()` does not
// wait for, or publish, a build of many seconds; the writer then removes its temporary file.
import StrataFormat

/// The error of a cancelled index build.
public enum IndexBuildCancellation {
    /// The message of the error (no code means "cancelled": `.busy`, the code of work that the
    /// caller may run again later, with this message).
    public static let message = "index build cancelled"

    /// The error a build stopped by its `shouldStop` throws: `.busy`, ``message``.
    public static func error() -> StrataError { StrataError(.busy, message) }

    /// Whether `error` is the one a cancelled build throws.
    public static func isCancellation(_ error: StrataError) -> Bool { error.code == .busy && error.message == message }

    /// Throws ``error()`` when `shouldStop` answers true.
    @inline(__always)
    static func check(_ shouldStop: (@Sendable () -> Bool)?) throws(StrataError) {
        if let shouldStop, shouldStop() { throw error() }
    }
}
