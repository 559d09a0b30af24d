// Advisory file locks (`flock(2)`). A lock belongs to the open file description, so the kernel
// releases it when the process dies (kill -9 included): a crashed holder never leaves a stale lock.
// The collection's three lock files are described in docs/COLLECTION-FORMAT.md C.1.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive advisory lock on a file (`flock(LOCK_EX)`), released by ``unlock()``, on deinit, or
/// by the kernel when the process exits.
package final class FileLock {
    /// The lock file.
    package let path: String
    private var descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock on `path` (created if missing). With `wait` false, returns nil when another
    /// open file description holds it. The corresponding C functions are `open(2)` and `flock(2)`.
    package static func acquire(_ path: String, wait: Bool) throws(StrataError) -> FileLock? {
        let fd = path.withCString { p in retryOnInterrupt { open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) } }
        guard fd >= 0 else { throw SystemFile.ioError("cannot open lock file", path: path) }
        let rc = retryOnInterrupt { flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) }
        if rc != 0 {
            let code = errno
            _ = close(fd)
            if code == EWOULDBLOCK { return nil }
            errno = code
            throw SystemFile.ioError("flock failed", path: path)
        }
        return FileLock(path: path, descriptor: fd)
    }

    /// Releases the lock (idempotent).
    package func unlock() {
        if descriptor >= 0 {
            _ = flock(descriptor, LOCK_UN)
            _ = close(descriptor)
            descriptor = -1
        }
    }

    deinit { unlock() }
}
