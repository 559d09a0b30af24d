// `strata scrub DIR`: a background check of a live collection. Search does not check section
// checksums (open is O(1) in the data size; docs/SEGMENT-FORMAT.md section 10), so damage to a sealed
// segment is found by whoever reads it with checks: compaction and flush refuse it, `search
// --verify` reports it, and scrub, run from cron, finds it before either. It takes no lock and
// changes nothing: it reads the current manifest and checks every live segment (every section
// checksum, every payload block, every invariant: ``Segment/verify(progress:)``), every delete bitmap
// against its segment and manifest entry, and the WAL the manifest names, reading at most
// `bytesPerSecond`.
import StrataFormat
import StrataIndex
#if canImport(Glibc)
import Glibc
#endif

/// What ``StrataCollection/scrub(path:bytesPerSecond:progress:)`` found.
public struct CollectionScrubReport: Sendable {
    /// Damage and broken invariants, each naming the file (and section and offset where known).
    public var problems: [StrataError]
    /// Facts that are not damage: a torn WAL tail, files removed by a compaction while scrubbing.
    public var notes: [String]
    /// Manifest generation scrubbed.
    public var generation: UInt64
    /// Live segments checked.
    public var segmentsChecked: Int
    /// Delete bitmaps checked.
    public var bitmapsChecked: Int
    /// Whether the WAL was read to its end.
    public var walChecked: Bool
    /// Bytes read and checked.
    public var bytesChecked: UInt64
    /// Whether no problem was found.
    public var isSound: Bool { problems.isEmpty }
}

extension StrataCollection {
    /// Checks every live segment, bitmap and the WAL of the collection at `path` without a lock and
    /// without changing anything, reading segment data at no more than `bytesPerSecond` on average
    /// (nil: no limit). Safe next to a writer, readers and a compactor: a file that a compaction
    /// removes during the scrub (after its grace period) is skipped with a note when the current
    /// manifest no longer names it. `progress` hears the bytes of the manifest's segment files
    /// checked so far (``VerifyProgress``); bitmaps and the WAL are not counted.
    ///
    /// Throws `.io` when `path` is not a directory or a file cannot be read for a reason other than
    /// damage (permissions); every finding about the bytes (a missing or damaged MANIFEST included)
    /// is a problem in the report.
    public static func scrub(path: String, bytesPerSecond: Double? = nil,
                             progress: VerifyProgress? = nil) throws(StrataError) -> CollectionScrubReport {
        guard FileSystem.isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
        var report = CollectionScrubReport(problems: [], notes: [], generation: 0, segmentsChecked: 0, bitmapsChecked: 0,
                                           walChecked: false, bytesChecked: 0)
        let manifest: Manifest
        do { manifest = try Manifest.read(directory: path) } catch {
            if error.code == .io { throw error }
            report.problems.append(error)
            return report
        }
        report.generation = manifest.generation
        let limiter = ByteRateLimiter(bytesPerSecond: bytesPerSecond)

        /// Whether a file that vanished was dropped by a newer manifest (not damage).
        func droppedSince(_ name: String) -> Bool {
            guard let now = try? Manifest.read(directory: path) else { return false }
            return now.generation != manifest.generation && !now.referencedFiles.contains(name)
        }
        func vanished(_ error: StrataError, _ name: String) -> Bool {
            guard error.code == .io, error.errno == ENOENT, droppedSince(name) else { return false }
            report.notes.append("\(name) was removed by a newer manifest while scrubbing (skipped)")
            return true
        }

        var bytes = SegmentFileProgress(manifest: manifest, directory: path, progress: progress)
        for entry in manifest.segments {
            let segPath = "\(path)/\(entry.name)"
            defer { bytes.finished(entry.name) }
            let seg: Segment
            do { seg = try Segment.open(path: segPath, options: SegmentOpenOptions(cacheBudgetBytes: 0)) } catch {
                if vanished(error, entry.name) { continue }
                if error.code == .io, error.errno != ENOENT { throw error }
                report.problems.append(error.inFile(segPath))
                continue
            }
            let r = seg.verify(pacedBy: limiter, progress: bytes.within(entry.name))
            report.problems += r.problems
            report.bytesChecked += r.bytesChecked
            report.segmentsChecked += 1
            if UInt64(seg.rowCount) != entry.rowCount || !manifest.fits(seg.schema, entry: entry) {
                report.problems.append(StrataError(.corrupt, "segment does not match its manifest entry (rows, dimension, metric or "
                                                   + "columns: the manifest schema's first \(entry.columns(of: manifest.schema)))",
                                                   path: segPath, section: "manifest"))
            }
            guard let d = entry.deleteFile else { continue }
            let bitmapPath = "\(path)/\(d)"
            do {
                let bitmap = try DeleteBitmap.read(path: bitmapPath)
                report.bitmapsChecked += 1
                report.bytesChecked += UInt64(DeleteBitmap.headerLength + DeleteBitmap.footerLength + (bitmap.rowCount + 63) / 64 * 8)
                if bitmap.rowCount != seg.rowCount || UInt64(bitmap.deletedCount) != entry.deletedCount {
                    report.problems.append(StrataError(.corrupt, "delete bitmap has \(bitmap.rowCount) rows and \(bitmap.deletedCount) deleted; "
                                                       + "segment \(entry.name) has \(seg.rowCount), the manifest says \(entry.deletedCount) deleted",
                                                       path: bitmapPath, section: "delete_bitmap"))
                }
            } catch {
                if vanished(error, d) { continue }
                if error.code == .io, error.errno != ENOENT { throw error }
                report.problems.append(error.inFile(bitmapPath))
            }
        }

        let walName = CollectionFiles.walName(manifest.walSequence)
        do {
            let read = try WALReader.read(path: "\(path)/\(walName)", sequence: manifest.walSequence, schema: manifest.schema)
            report.walChecked = true
            report.bytesChecked += read.validLength
            if read.droppedBytes > 0 {
                report.notes.append("\(walName): \(read.droppedBytes) bytes after offset \(read.validLength) are a torn tail "
                                    + "(or a record being appended now); replay skips them and the next read-write open moves them "
                                    + "to \(walName).torn-\(read.validLength)")
            }
        } catch {
            if !vanished(error, walName) {
                if error.code == .io, error.errno != ENOENT { throw error }
                report.problems.append(error.inFile("\(path)/\(walName)"))
            }
        }
        return report
    }
}
