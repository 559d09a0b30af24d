// The one way Strata publishes a file: write it under a temporary name in the destination's
// directory, fsync it, rename it over the destination, fsync the directory. A crash leaves either
// the old file or the new one at the destination (plus, at worst, a `.<name>.tmp-*` file that the
// next cleanup removes), never a partial one.

/// A file written under a temporary name next to ``path`` and published there by ``publish()``.
/// Released unpublished, it removes its temporary file.
package final class AtomicFileWriter {
    /// The destination.
    package let path: String
    /// Where the bytes are written until ``publish()``.
    package let temporaryPath: String
    /// The temporary file, open for writing until ``publish()`` or ``abandon()``.
    package let file: any WritableFile
    private var state = State.writing

    private enum State { case writing, published, abandoned }

    /// Creates the temporary file for `path` (through the current ``FileLayer``).
    package init(publishingAt path: String) throws(StrataError) {
        self.path = path
        temporaryPath = FileSystem.temporaryPath(for: path)
        file = try FileSystem.create(temporaryPath)
    }

    deinit { abandon() }

    /// Fsyncs the temporary file, renames it to ``path`` and fsyncs the directory. Before the rename
    /// a failure removes the temporary file; after it (the directory fsync failed) the new file may
    /// be the one on disk, and the caller must treat the destination as possibly replaced.
    package func publish() throws(StrataError) {
        guard state == .writing else { throw StrataError(.invalidArgument, "file already published or abandoned", path: path) }
        do {
            try file.sync()
            file.close()
            try FileSystem.rename(temporaryPath, to: path)
        } catch {
            abandon()
            throw error
        }
        state = .published
        try FileSystem.syncParentDirectory(of: path)
    }

    /// Closes and removes the temporary file unless published (idempotent).
    package func abandon() {
        guard state == .writing else { return }
        state = .abandoned
        file.close()
        FileSystem.removeIfPresent(temporaryPath)
    }
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory
/// (see ``AtomicFileWriter/publish()`` for what a failure leaves).
package func publishAtomically(_ bytes: [UInt8], to path: String) throws(StrataError) {
    let writer = try AtomicFileWriter(publishingAt: path)
    do {
        try bytes.withBytes { (raw) throws(StrataError) in try writer.file.write(raw, atAbsoluteOffset: 0) }
    } catch {
        writer.abandon()
        throw error
    }
    try writer.publish()
}
