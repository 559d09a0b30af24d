// Thin typed wrappers over the POSIX calls on one open file (open, pread, pwrite, fsync, fdatasync,
// ftruncate, fstat, posix_fadvise), in the style of swift-system: Swift names, EINTR retried, every
// failure turned into a `StrataError` with code `.io`, the path and errno. Calls on paths are in
// FileSystem.swift, locks in FileLock.swift, mappings in MappedFile.swift and MemoryAdvice.swift.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open file descriptor with typed, EINTR-safe I/O. Closed by ``close()`` or when released.
package final class SystemFile {
    /// The descriptor (-1 once closed).
    private(set) var descriptor: Int32
    /// The path it was opened with, for error messages.
    package let path: String

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    /// Opens an existing regular file read-only. The corresponding C function is `open(2)`.
    ///
    /// `O_NONBLOCK` makes opening a FIFO return at once instead of waiting for a writer (forever,
    /// if none comes); the file is then refused unless it is a regular file, since a pipe, a
    /// device or a directory cannot be mapped or read twice. O_NONBLOCK has no effect on regular files.
    package static func openForReading(_ path: String) throws(StrataError) -> SystemFile {
        let file = try open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC, failure: "cannot open for reading")
        try file.requireRegularFile()
        return file
    }

    /// Creates (or truncates) a file for writing with mode 0644.
    package static func create(_ path: String) throws(StrataError) -> SystemFile {
        try open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o644, failure: "cannot create")
    }

    /// Opens an existing regular file for reading and writing (no create, no truncate).
    package static func openForWriting(_ path: String) throws(StrataError) -> SystemFile {
        let file = try open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC, failure: "cannot open for writing")
        try file.requireRegularFile()
        return file
    }

    /// Opens a directory so it can be fsynced after a rename.
    package static func openDirectory(_ path: String) throws(StrataError) -> SystemFile {
        try open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, failure: "cannot open directory")
    }

    /// `open(2)` with `flags` (and `mode` when they create), EINTR retried; throws `.io` saying
    /// `failure` when the call fails.
    private static func open(_ path: String, _ flags: Int32, mode: mode_t = 0, failure: String) throws(StrataError) -> SystemFile {
        let fd = path.withCString { p in retryOnInterrupt { Glibc.open(p, flags, mode) } }
        guard fd >= 0 else { throw ioError(failure, path: path) }
        return SystemFile(descriptor: fd, path: path)
    }

    /// Closes the descriptor (idempotent).
    package func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }

    deinit { close() }

    /// The file size in bytes. The corresponding C function is `fstat(2)`.
    package func size() throws(StrataError) -> UInt64 {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw SystemFile.ioError("fstat failed", path: path) }
        return UInt64(info.st_size)
    }

    /// Throws `.io` naming the kind of file unless the descriptor refers to a regular file.
    /// The corresponding C function is `fstat(2)`.
    func requireRegularFile() throws(StrataError) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw SystemFile.ioError("fstat failed", path: path) }
        let kind = info.st_mode & mode_t(S_IFMT)
        guard kind != mode_t(S_IFREG) else { return }
        let what: String
        switch kind {
        case mode_t(S_IFDIR): what = "a directory"
        case mode_t(S_IFIFO): what = "a FIFO or pipe"
        case mode_t(S_IFCHR): what = "a character device"
        case mode_t(S_IFBLK): what = "a block device"
        case mode_t(S_IFSOCK): what = "a socket"
        default: what = "an unknown kind of file"
        }
        throw StrataError(.io, "\(what), not a regular file: Strata reads inputs and segments by mapping them, so they must be regular files", path: path)
    }

    /// Writes all of `bytes` at `offset`, looping over short writes. The C function is `pwrite(2)`.
    package func write(_ bytes: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(StrataError) {
        var done = 0
        while done < bytes.count {
            let n = retryOnInterrupt {
                pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            }
            guard n > 0 else { throw SystemFile.ioError("write failed", path: path, offset: offset + UInt64(done)) }
            done += n
        }
    }

    /// Reads exactly `buffer.count` bytes at `offset`; throws `.truncated` at end of file.
    package func read(into buffer: UnsafeMutableRawBufferPointer, fromAbsoluteOffset offset: UInt64) throws(StrataError) {
        var done = 0
        while done < buffer.count {
            let n = retryOnInterrupt {
                pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            }
            if n == 0 {
                throw StrataError(.truncated, "unexpected end of file", path: path, offset: offset + UInt64(done))
            }
            guard n > 0 else { throw SystemFile.ioError("read failed", path: path, offset: offset + UInt64(done)) }
            done += n
        }
    }

    /// Copies bytes `0..<count` of this file to `file` at `offset`, 1 MiB at a time, feeding each
    /// piece read to `checksum` (a spool copied into a segment: what is written is what is hashed).
    package func copyPrefix(_ count: UInt64, into file: any WritableFile, at offset: UInt64, hashing checksum: Checksum.Streaming) throws(StrataError) {
        var buffer = [UInt8](repeating: 0, count: Int(min(count, 1 << 20)))
        var copied: UInt64 = 0
        while copied < count {
            let n = Int(min(UInt64(buffer.count), count - copied))
            try buffer.withMutableBytes { (raw) throws(StrataError) in
                let chunk = UnsafeMutableRawBufferPointer(rebasing: raw[0..<n])
                try read(into: chunk, fromAbsoluteOffset: copied)
                checksum.update(UnsafeRawBufferPointer(chunk))
                try file.write(UnsafeRawBufferPointer(chunk), atAbsoluteOffset: offset + copied)
            }
            copied += UInt64(n)
        }
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns how many were read (0 at end of file).
    func readSome(into buffer: UnsafeMutableRawBufferPointer, fromAbsoluteOffset offset: UInt64) throws(StrataError) -> Int {
        let n = retryOnInterrupt { pread(descriptor, buffer.baseAddress!, buffer.count, off_t(offset)) }
        guard n >= 0 else { throw SystemFile.ioError("read failed", path: path, offset: offset) }
        return n
    }

    /// Flushes data and metadata to stable storage. The C function is `fsync(2)`.
    package func sync() throws(StrataError) {
        guard retryOnInterrupt({ fsync(descriptor) }) == 0 else { throw SystemFile.ioError("fsync failed", path: path) }
    }

    /// Flushes data (and the metadata needed to read it back, such as the length) to stable
    /// storage. The C function is `fdatasync(2)`.
    package func syncData() throws(StrataError) {
        guard retryOnInterrupt({ fdatasync(descriptor) }) == 0 else { throw SystemFile.ioError("fdatasync failed", path: path) }
    }

    /// Sets the file length. The C function is `ftruncate(2)`.
    package func truncate(to length: UInt64) throws(StrataError) {
        guard retryOnInterrupt({ ftruncate(descriptor, off_t(length)) }) == 0 else {
            throw SystemFile.ioError("ftruncate failed", path: path)
        }
    }

    /// Drops the file's clean pages from the page cache (`posix_fadvise(POSIX_FADV_DONTNEED)`), for
    /// cold benchmarks. Advice only: failures are ignored.
    package func evictFromPageCache() {
        _ = posix_fadvise(descriptor, 0, 0, Int32(POSIX_FADV_DONTNEED))
    }

    package static func ioError(_ what: String, path: String, offset: UInt64? = nil) -> StrataError {
        let code = Glibc.errno
        let text = String(cString: strerror(code))
        return StrataError(.io, "\(what): \(text)", path: path, offset: offset, errno: code)
    }
}

/// Retries a system call while it fails with EINTR.
@inline(__always)
package func retryOnInterrupt<T: BinaryInteger>(_ call: () -> T) -> T {
    while true {
        let result = call()
        if result < 0 && Glibc.errno == EINTR { continue }
        return result
    }
}
