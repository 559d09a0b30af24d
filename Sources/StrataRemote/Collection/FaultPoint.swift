// Named crash points for the failure tests: a process started with STRATA_FAULT_EXIT_AT=<name>
// exits at once (exit code 86, no clean-up, like a kill -9) when it reaches that step. Nothing
// happens when the variable is unset, which is always the case outside the tests.
#if canImport(Glibc)
import Glibc
#endif

/// The steps of the remote commit protocol a test can crash at.
package enum FaultPoint: String, Sendable {
    /// A flush or compaction uploaded its segment, before anything else.
    case afterSegmentUpload = "after-segment-upload"
    /// The new manifest object is in the store; the etcd transaction has not run.
    case afterManifestPut = "after-manifest-put"
    /// The etcd transaction committed; local state is not updated.
    case afterCommit = "after-commit"
    /// A WAL object is in the store; the writer has not acknowledged it.
    case afterWALPut = "after-wal-put"

    private static let armed: String? = {
        guard let v = getenv("STRATA_FAULT_EXIT_AT") else { return nil }
        return String(cString: v)
    }()

    /// Exits the process when this point is the armed one.
    func reach() {
        if Self.armed == rawValue { _exit(86) }
    }
}
