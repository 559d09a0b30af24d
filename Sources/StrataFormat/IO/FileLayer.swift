// The file layer: the few operations a durable write is made of (create, write, sync, rename,
// sync the directory, remove), behind a small protocol so that tests can put a fault-injecting
// twin (short writes, EIO, ENOSPC, a crash that loses a rename) under the collection's real code.
//
// Production code never names a layer: it calls ``FileSystem`` and ``publishAtomically(_:to:)``,
// which use ``FileLayerScope/current`` (the POSIX layer unless a test bound another for the
// duration of a call). The indirection is one existential call per file operation (open, write
// of a buffer, fsync, rename), never per byte, and nothing on a read path goes through it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file open for writing through a ``FileLayer``.
package protocol WritableFile: AnyObject {
    /// The path it was opened with, for error messages.
    var path: String { get }
    /// Writes all of `bytes` at `offset`.
    func write(_ bytes: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(StrataError)
    /// Flushes data and metadata to stable storage (`fsync`).
    func sync() throws(StrataError)
    /// Flushes data and the metadata needed to read it back (`fdatasync`).
    func syncData() throws(StrataError)
    /// Sets the file length.
    func truncate(to length: UInt64) throws(StrataError)
    /// The file size in bytes.
    func size() throws(StrataError) -> UInt64
    /// Closes the file (idempotent).
    func close()
}

extension SystemFile: WritableFile {}

/// The file operations of Strata's durable writes. ``POSIXFileLayer`` is the one the product uses.
package protocol FileLayer: Sendable {
    /// Creates (or truncates) `path` for writing.
    func create(_ path: String) throws(StrataError) -> any WritableFile
    /// Opens the existing regular file `path` for writing (no create, no truncate).
    func openForWriting(_ path: String) throws(StrataError) -> any WritableFile
    /// Atomically renames `from` to `to` (replacing `to`).
    func rename(_ from: String, to: String) throws(StrataError)
    /// Fsyncs `directory`, making the renames and creations in it durable.
    func syncDirectory(_ directory: String) throws(StrataError)
    /// Removes `path`, ignoring "does not exist".
    func remove(_ path: String)
}

/// The file layer over the POSIX calls.
package struct POSIXFileLayer: FileLayer {
    package init() {}

    package func create(_ path: String) throws(StrataError) -> any WritableFile {
        try SystemFile.create(path)
    }

    package func openForWriting(_ path: String) throws(StrataError) -> any WritableFile {
        try SystemFile.openForWriting(path)
    }

    /// The C function is `rename(2)`.
    package func rename(_ from: String, to: String) throws(StrataError) {
        let rc = from.withCString { f in to.withCString { t in Glibc.rename(f, t) } }
        guard rc == 0 else { throw SystemFile.ioError("rename to \(to) failed", path: from) }
    }

    /// The C functions are `open(2)` (`O_DIRECTORY`) and `fsync(2)`.
    package func syncDirectory(_ directory: String) throws(StrataError) {
        let handle = try SystemFile.openDirectory(directory)
        defer { handle.close() }
        try handle.sync()
    }

    /// The C function is `unlink(2)`.
    package func remove(_ path: String) {
        _ = path.withCString { unlink($0) }
    }
}

/// Which ``FileLayer`` the durable writes of the current task (or thread) use.
package enum FileLayerScope {
    /// The layer in effect: ``POSIXFileLayer`` unless bound with `FileLayerScope.$current.withValue`.
    /// A file opened through a layer keeps using it after the binding ends (a WAL opened under a
    /// fault-injecting layer stays under it).
    @TaskLocal package static var current: any FileLayer = POSIXFileLayer()
}
