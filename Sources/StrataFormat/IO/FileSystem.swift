// Operations on paths, in the style of swift-system: Swift names, EINTR retried, failures turned
// into a `StrataError` with code `.io`, the path and errno.
//
// The operations that a durable write is made of (create, open for writing, rename, fsync of a
// directory, remove) go through ``FileLayerScope/current`` (FileLayer.swift), which is the POSIX
// file layer unless a test has bound a fault-injecting one; the others call the system directly.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File-system operations on paths.
package enum FileSystem {
    // MARK: Durable-write operations (through the file layer)

    /// Creates (or truncates) a file for writing, through the current file layer.
    package static func create(_ path: String) throws(StrataError) -> any WritableFile {
        try FileLayerScope.current.create(path)
    }

    /// Opens an existing regular file for writing (no create, no truncate), through the current
    /// file layer.
    package static func openForWriting(_ path: String) throws(StrataError) -> any WritableFile {
        try FileLayerScope.current.openForWriting(path)
    }

    /// Atomically renames `from` to `to`, through the current file layer. The C function is `rename(2)`.
    package static func rename(_ from: String, to: String) throws(StrataError) {
        try FileLayerScope.current.rename(from, to: to)
    }

    /// Removes a file, ignoring "does not exist", through the current file layer.
    package static func removeIfPresent(_ path: String) {
        FileLayerScope.current.remove(path)
    }

    /// Fsyncs the directory that holds `path`, so that a rename into it survives a crash; through
    /// the current file layer.
    package static func syncParentDirectory(of path: String) throws(StrataError) {
        try FileLayerScope.current.syncDirectory(parentDirectory(of: path))
    }

    // MARK: Other operations (direct system calls)

    /// The directory part of `path` ("." when it has none).
    package static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    /// A fresh temporary name next to `path`: `<dir>/.<name>.tmp-<pid>-<random>`. Collection
    /// cleanup recognises the `.tmp-` infix (`CollectionFiles.isTemporary`).
    package static func temporaryPath(for path: String) -> String {
        let dir = parentDirectory(of: path)
        let base = path.split(separator: "/").last.map(String.init) ?? path
        return "\(dir)/.\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Whether a file exists at `path`. The C function is `stat(2)`.
    package static func exists(_ path: String) -> Bool {
        var info = stat()
        return path.withCString { stat($0, &info) } == 0
    }

    /// Whether `path` is a directory. The C function is `stat(2)`.
    package static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        guard path.withCString({ stat($0, &info) }) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The size of file `path` in bytes.
    package static func fileSize(_ path: String) throws(StrataError) -> UInt64 {
        let file = try SystemFile.openForReading(path)
        defer { file.close() }
        return try file.size()
    }

    /// The names in directory `path` (without `.` and `..`). The C functions are `opendir(3)` and
    /// `readdir(3)`.
    package static func list(_ path: String) throws(StrataError) -> [String] {
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

    /// Creates directory `path` (mode 0755) and, when it made it, fsyncs the parent so that the new
    /// entry survives a crash (later fsyncs of the directory itself do not cover its own name). An
    /// existing directory is fine; an existing file of another kind throws `.io` ("not a directory").
    /// The C function is `mkdir(2)`.
    package static func makeDirectory(_ path: String) throws(StrataError) {
        if path.withCString({ mkdir($0, 0o755) }) != 0 {
            guard errno == EEXIST else { throw SystemFile.ioError("cannot create directory", path: path) }
            guard isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
            return
        }
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        try syncParentDirectory(of: String(trimmed))
    }

    /// Reads a whole (small) file.
    package static func readAll(_ path: String) throws(StrataError) -> [UInt8] {
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

    /// Writes back the file's dirty pages, then drops its pages from the page cache
    /// (`fdatasync(2)`, `posix_fadvise(POSIX_FADV_DONTNEED)`), so that the next reads come from the
    /// disk (cold benchmarks). Best effort: a file that cannot be opened is left as it is.
    package static func evictFromPageCache(_ path: String) {
        guard let file = try? SystemFile.openForReading(path) else { return }
        defer { file.close() }
        try? file.syncData()
        file.evictFromPageCache()
    }
}
