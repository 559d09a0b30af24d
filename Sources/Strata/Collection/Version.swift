// A version: one manifest, opened (its segments mapped, its delete bitmaps read). Snapshots and the
// compactor hold versions; while one is alive, the files it references are not removed by this
// process (FileReferences.swift).
import StrataFormat
import StrataIndex

/// A segment of a version, opened, with its delete bitmap.
package struct OpenSegment: Sendable {
    package var entry: ManifestSegment
    package var segment: Segment
    package var bitmap: DeleteBitmap?

    @inline(__always) func isDeleted(row: Int) -> Bool { bitmap?.contains(row) ?? false }
}

/// One manifest version, opened. Holds references on its files while alive.
package final class Version: Sendable {
    let directory: String
    package let manifest: Manifest
    package let segments: [OpenSegment]
    private let paths: [String]

    init(directory: String, manifest: Manifest, segments: [OpenSegment]) {
        self.directory = directory
        self.manifest = manifest
        self.segments = segments
        paths = manifest.referencedFiles.map { "\(directory)/\($0)" }
        FileReferences.shared.retain(paths)
    }

    deinit { FileReferences.shared.release(paths) }

    /// Opens the segments and bitmaps of `manifest`, reusing those already open in `previous`.
    package static func open(directory: String, manifest: Manifest, reusing previous: Version?,
                     options: SegmentOpenOptions = SegmentOpenOptions()) throws(StrataError) -> Version {
        var bySegment: [String: OpenSegment] = [:]
        for s in previous?.segments ?? [] { bySegment[s.entry.name] = s }
        var list: [OpenSegment] = []
        for entry in manifest.segments {
            let segment: Segment
            if let old = bySegment[entry.name] { segment = old.segment } else {
                segment = try Segment.open(path: "\(directory)/\(entry.name)", options: options)
                // Replay and writes look ids up in every segment and treat a failed look-up as "not
                // there": with verified reads, check those sections now so that damage throws.
                if options.verify { try segment.checkSectionChecksums([.schema, .ids, .idIndex]) }
            }
            // A segment holds the manifest schema's first columns (all of them, or those there were
            // when it was written: the rest are nullable and read as null).
            guard UInt64(segment.rowCount) == entry.rowCount, manifest.fits(segment.schema, entry: entry) else {
                throw StrataError(.corrupt, "segment \(entry.name) does not match its manifest entry (rows, dimension, metric or columns: "
                                  + "its columns must be the manifest schema's first \(entry.columns(of: manifest.schema)), in order)",
                                  path: CollectionFiles.manifest(directory), section: "manifest")
            }
            var bitmap: DeleteBitmap? = nil
            if let d = entry.deleteFile {
                if let old = bySegment[entry.name], old.entry.deleteFile == d { bitmap = old.bitmap } else {
                    bitmap = try DeleteBitmap.read(path: "\(directory)/\(d)")
                }
                guard bitmap!.rowCount == segment.rowCount, UInt64(bitmap!.deletedCount) == entry.deletedCount else {
                    throw StrataError(.corrupt, "delete bitmap \(d) does not match segment \(entry.name)", path: "\(directory)/\(d)", section: "delete_bitmap")
                }
            }
            list.append(OpenSegment(entry: entry, segment: segment, bitmap: bitmap))
        }
        return Version(directory: directory, manifest: manifest, segments: list)
    }

    /// Where `id` lives among the sealed segments, ignoring rows deleted by bitmaps (newest first).
    func locate(_ id: UInt64) -> (segment: Int, row: Int)? {
        for i in segments.indices.reversed() {
            if let row = try? segments[i].segment.row(forId: id), !segments[i].isDeleted(row: row) { return (i, row) }
        }
        return nil
    }
}
