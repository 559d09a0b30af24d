// Advisory file locks (flock) and the few file operations the collection layer needs beyond
// IO/SystemFile.swift: open-existing-for-append, directory listing, mtime-free existence checks.
//
// Three lock files live in a collection directory (docs/COLLECTION-FORMAT.md C.1):
//   LOCK           held exclusively by the one writer process for as long as it has the collection open
//   COMPACT.lock   held exclusively by a compaction run (a second cron run sees it busy and exits 0)
//   MANIFEST.lock  held briefly around read-modify-publish of MANIFEST, by the writer and the compactor
// flock locks belong to the open file description, so they are released by the kernel when a
// process dies (kill -9 included): a crashed writer or compactor never leaves a stale lock.
import StrataFormat
import StrataIndex
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock on a file (`flock(LOCK_EX)`), released by ``unlock()``, on deinit, or
/// by the kernel when the process exits.
final class FileLock {
    let path: String
    private var descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Takes the lock on `path` (created if missing). With `wait` false, returns nil when another
    /// open file description holds it. The corresponding C function is `flock(2)`.
    static func acquire(_ path: String, wait: Bool) throws(StrataError) -> FileLock? {
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
    func unlock() {
        if descriptor >= 0 {
            _ = flock(descriptor, LOCK_UN)
            _ = close(descriptor)
            descriptor = -1
        }
    }

    deinit { unlock() }
}

/// File helpers for collection directories.
enum CollectionFS {
    /// Opens an existing file read-write without truncating it; the caller owns the descriptor.
    static func openReadWrite(_ path: String) throws(StrataError) -> Int32 {
        let fd = path.withCString { p in retryOnInterrupt { open(p, O_RDWR | O_CLOEXEC) } }
        guard fd >= 0 else { throw SystemFile.ioError("cannot open for writing", path: path) }
        return fd
    }

    /// The names in directory `path` (without `.` and `..`).
    static func list(_ path: String) throws(StrataError) -> [String] {
        guard let dir = path.withCString({ opendir($0) }) else { throw SystemFile.ioError("cannot list directory", path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    /// The size of file `path` in bytes.
    static func fileSize(_ path: String) throws(StrataError) -> UInt64 {
        let file = try SystemFile.openForReading(path)
        defer { file.close() }
        return try file.size()
    }

    /// Whether `path` is a directory.
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        guard path.withCString({ stat($0, &info) }) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates directory `path` (mode 0755) and, when it made it, fsyncs the parent so that the new
    /// entry survives a crash (later fsyncs of the directory itself do not cover its own name); an
    /// existing directory is fine.
    static func makeDirectory(_ path: String) throws(StrataError) {
        if path.withCString({ mkdir($0, 0o755) }) != 0 {
            guard errno == EEXIST else { throw SystemFile.ioError("cannot create directory", path: path) }
            return
        }
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        try FileSystem.syncParentDirectory(of: String(trimmed))
    }

    /// Reads a whole (small) file.
    static func readAll(_ path: String) throws(StrataError) -> [UInt8] {
        let file = try SystemFile.openForReading(path)
        defer { file.close() }
        let size = try file.size()
        guard size <= 1 << 34 else { throw StrataError(.corrupt, "file too large (\(size) bytes)", path: path) }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        if size > 0 {
            try bytes.withMutableBytes { (raw) throws(StrataError) in try file.read(into: raw, fromAbsoluteOffset: 0) }
        }
        return bytes
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
    /// fsync of the directory. A crash leaves either the old file or the new one (plus, at worst, a
    /// `.<name>.tmp-*` file that the next cleanup removes).
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(StrataError) {
        let dir = FileSystem.parentDirectory(of: path)
        let base = path.split(separator: "/").last.map(String.init) ?? path
        let temp = "\(dir)/.\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            let file = try SystemFile.create(temp)
            defer { file.close() }
            try bytes.withBytes { (raw) throws(StrataError) in try file.write(raw, atAbsoluteOffset: 0) }
            try file.sync()
        } catch {
            FileSystem.removeIfPresent(temp)
            throw error
        }
        do {
            try FileSystem.rename(temp, to: path)
        } catch {
            FileSystem.removeIfPresent(temp)
            throw error
        }
        // From here on the new file may be the one on disk, even when this throws.
        if let fault = faultLock.locked({ faultAfterRename }), let error = fault(path) { throw error }
        try FileSystem.syncParentDirectory(of: path)
    }

    private static let faultLock = PThreadLock()
    nonisolated(unsafe) private static var faultAfterRename: (@Sendable (String) -> StrataError?)? = nil

    /// Test seam (fault injection): `fault` is called with the destination path after each rename in
    /// ``writeAtomically(_:to:)``; an error it returns is thrown as if the directory fsync had failed.
    static func setFaultAfterRename(_ fault: (@Sendable (String) -> StrataError?)?) {
        faultLock.locked { faultAfterRename = fault }
    }

    /// Seconds since the Unix epoch, in milliseconds.
    static func nowMilliseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return UInt64(t.tv_sec) * 1000 + UInt64(t.tv_nsec) / 1_000_000
    }

    /// A random 64-bit value as 16 lower-case hex digits (file names).
    static func randomHex() -> String {
        let v = UInt64.random(in: 0...UInt64.max)
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
