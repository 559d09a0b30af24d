// A consistent image of a collection directory, for copying it elsewhere (`strata push`): one
// manifest version, opened, and the records of the WAL that version names, exactly as they were
// written (the raw inputs, not the buffer's stored form, so that a copy replays to the same rows).
import StrataFormat
#if canImport(Glibc)
import Glibc
#endif

/// One manifest version of a collection directory and the records of its WAL.
package struct CollectionImage {
    /// The manifest version, opened (its files stay in use while the image is held).
    package let version: Version
    /// The records of the version's WAL, in order, up to its last complete record.
    package let records: [WALRecord]

    /// The manifest.
    package var manifest: Manifest { version.manifest }

    /// Reads the current manifest of the collection at `path`, opens it and reads its WAL, taking no
    /// lock and changing nothing (as a read-only open does). A flush or compaction that removes a file
    /// between the manifest read and the opens makes it start again.
    package static func read(path: String, options: SegmentOpenOptions = SegmentOpenOptions()) throws(StrataError) -> CollectionImage {
        guard FileSystem.isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
        var attempt = 0
        while true {
            do {
                let manifest = try Manifest.read(directory: path)
                let version = try Version.open(directory: path, manifest: manifest, reusing: nil, options: options)
                let walPath = "\(path)/\(CollectionFiles.walName(manifest.walSequence))"
                let scan = try WALReader.read(path: walPath, sequence: manifest.walSequence, schema: manifest.schema)
                return CollectionImage(version: version, records: scan.records)
            } catch {
                attempt += 1
                if error.code == .io, error.errno == ENOENT, attempt < 20 { continue }
                throw error
            }
        }
    }
}
