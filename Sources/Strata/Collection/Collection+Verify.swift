// `strata verify DIR` and `strata dump DIR` for a collection: every segment's checksums and
// invariants, the bitmaps against their segments, the WAL, and that no id is live twice.

import StrataFormat
import StrataIndex

extension CollectionSnapshot {
    /// The manifest version this snapshot reads.
    package var manifest: Manifest { version.manifest }
    /// Live rows in the write buffer.
    public var bufferedRows: Int { mem.index.count }
    /// Deletes of sealed rows not yet in a bitmap.
    public var pendingDeletes: Int { mem.sealedDeletes.count }
    /// The open segment called `name` (a manifest file name), if live in this snapshot.
    public func segment(named name: String) -> Segment? { version.segments.first { $0.entry.name == name }?.segment }
}

/// What ``StrataCollection/verify(path:progress:)`` found.
public struct CollectionVerifyReport: Sendable {
    /// Problems: corruption or broken invariants (each names the file).
    public var problems: [StrataError]
    /// Facts worth knowing that are not corruption (a torn WAL tail, WAL side files, leftover files).
    public var notes: [String]
    /// Segment files checked.
    public var segmentsChecked: Int
    /// Bytes read and checked.
    public var bytesChecked: UInt64
    /// Live rows the collection holds.
    public var liveRows: Int
    /// Whether no problem was found.
    public var isSound: Bool { problems.isEmpty }

    /// An empty report.
    package init(problems: [StrataError] = [], notes: [String] = [], segmentsChecked: Int = 0, bytesChecked: UInt64 = 0, liveRows: Int = 0) {
        self.problems = problems
        self.notes = notes
        self.segmentsChecked = segmentsChecked
        self.bytesChecked = bytesChecked
        self.liveRows = liveRows
    }
}

extension StrataCollection {
    /// Checks a collection without changing it: manifest, every segment (``Segment/verify(progress:)``),
    /// every delete bitmap, the WAL (a damaged record is a problem, a torn tail and WAL side files
    /// are notes), and uniqueness of live ids. Throws only for I/O errors on the directory itself;
    /// everything else is reported. `progress` hears the bytes of the manifest's segment files
    /// checked so far, within each segment and after it (``VerifyProgress``); the bitmaps, the WAL
    /// and the id check after the segments are not counted.
    public static func verify(path: String, progress: VerifyProgress? = nil) throws(StrataError) -> CollectionVerifyReport {
        var report = CollectionVerifyReport()
        guard FileSystem.isDirectory(path) else { throw StrataError(.io, "not a directory", path: path) }
        let manifest: Manifest
        do { manifest = try Manifest.read(directory: path) } catch {
            if error.code == .io { throw error }
            report.problems.append(error)
            return report
        }
        verifyFiles(of: manifest, in: path, report: &report, progress: progress)
        do {
            let walName = CollectionFiles.walName(manifest.walSequence)
            let scan = try WALReader.scan(path: "\(path)/\(walName)", sequence: manifest.walSequence, schema: manifest.schema)
            report.bytesChecked += scan.validLength
            if let damage = scan.damage {
                report.problems.append(damage)
            } else if case .torn(let why) = scan.end {
                report.notes.append("WAL \(walName): \(scan.droppedBytes) bytes of torn tail after offset \(scan.validLength) (\(why): a record "
                                    + "cut short by a crash mid-append, never acknowledged; not replayed, and the next read-write open moves "
                                    + "it to \(walName).torn-\(scan.validLength))")
            }
        } catch {
            report.problems.append(error)
        }
        for name in try FileSystem.list(path).filter(WALSideFile.isSideFile).sorted() {
            report.notes.append(name.contains(WALSideFile.tornMarker)
                ? "WAL side file \(name): a torn tail moved out of the WAL (never replayed; delete it once checked)"
                : "WAL side file \(name): the whole WAL as it was before `strata recover` cut it (delete it once checked)")
        }
        guard report.problems.isEmpty else { return report }
        do {
            let c = try StrataCollection.open(path: path, access: .readOnly)
            let snap = try c.snapshot()
            if let problem = snap.duplicateLiveIds(path: path) { report.problems.append(problem) }
            report.liveRows = snap.count
        } catch {
            report.problems.append(error)
        }
        var keep = manifest.referencedFiles
        for o in manifest.obsolete { keep.insert(o.name) }
        for name in try FileSystem.list(path) where !keep.contains(name) {
            if CollectionFiles.isWAL(name), let size = try? FileSystem.fileSize("\(path)/\(name)"), size > UInt64(WALFormat.headerLength) {
                // Never a leftover of this collection's own protocol (a new WAL holds only its header
                // until the manifest names it): acknowledged records of another manifest, kept by
                // cleanup, and a flush to that sequence refuses to overwrite it.
                report.problems.append(StrataError(.corrupt, "stray WAL \(name) holds \(size - UInt64(WALFormat.headerLength)) bytes of records but the "
                                                   + "manifest does not name it (an older MANIFEST put back?); it is kept, and a flush "
                                                   + "to its sequence refuses to overwrite it: check it and move it away",
                                                   path: "\(path)/\(name)", section: "wal"))
            } else if CollectionFiles.owner(of: name) != nil || CollectionFiles.isWAL(name) || CollectionFiles.isTemporary(name) {
                report.notes.append("leftover file \(name) (removed by the next writer open or compaction)")
            }
        }
        return report
    }

    /// Checks every segment of `manifest` in `directory` (``Segment/verify(progress:)``, its row count) and
    /// its delete bitmap against it. Problems name `address(name)` (default: the file's path; a
    /// remote collection names the object).
    package static func verifyFiles(of manifest: Manifest, in directory: String, address: ((String) -> String)? = nil,
                                    report: inout CollectionVerifyReport, progress: VerifyProgress? = nil) {
        let name = { (file: String) in address?(file) ?? "\(directory)/\(file)" }
        var bytes = SegmentFileProgress(manifest: manifest, directory: directory, progress: progress)
        for entry in manifest.segments {
            let segPath = "\(directory)/\(entry.name)"
            defer { bytes.finished(entry.name) }
            do {
                let seg = try Segment.open(path: segPath)
                let r = seg.verify(progress: bytes.within(entry.name))
                report.problems += r.problems.map { $0.inFile(name(entry.name)) }
                report.bytesChecked += r.bytesChecked
                report.segmentsChecked += 1
                if UInt64(seg.rowCount) != entry.rowCount {
                    report.problems.append(StrataError(.corrupt, "segment has \(seg.rowCount) rows, manifest says \(entry.rowCount)", path: name(entry.name)))
                }
                if !manifest.fits(seg.schema, entry: entry) {
                    report.problems.append(StrataError(.corrupt, "segment's dimension, metric or columns do not match the manifest (its columns must be "
                                                       + "the manifest schema's first \(entry.columns(of: manifest.schema)))", path: name(entry.name)))
                }
                if let d = entry.deleteFile {
                    let b = try DeleteBitmap.read(path: "\(directory)/\(d)")
                    if b.rowCount != seg.rowCount || UInt64(b.deletedCount) != entry.deletedCount {
                        report.problems.append(StrataError(.corrupt, "bitmap does not match segment \(entry.name)", path: name(d)))
                    }
                }
            } catch {
                var e = error
                if address != nil, let p = e.path, p.hasPrefix(directory + "/") { e.path = name(String(p.dropFirst(directory.count + 1))) }
                report.problems.append(e)
            }
        }
    }
}

extension CollectionSnapshot {
    /// A problem when an id is live in more than one sealed segment (`path` names the collection).
    package func duplicateLiveIds(path: String) -> StrataError? {
        var ids = Set<UInt64>()
        var duplicates = 0
        for s in version.segments {
            for row in 0..<s.segment.rowCount where !s.isDeleted(row: row) {
                if !ids.insert(s.segment.unsafeId(ofRow: row)).inserted { duplicates += 1 }
            }
        }
        guard duplicates > 0 else { return nil }
        return StrataError(.duplicateId, "\(duplicates) ids are live in more than one segment", path: path)
    }
}

/// Progress in bytes of a collection's segment files (``VerifyProgress``), for verify and scrub:
/// the total is the files' sizes when the check begins (a missing file counts 0); a segment's own
/// progress moves within its share, and its end adds its whole size.
struct SegmentFileProgress {
    private let progress: VerifyProgress?
    private let sizes: [String: Int]
    private let total: Int
    private var done = 0

    init(manifest: Manifest, directory: String, progress: VerifyProgress?) {
        self.progress = progress
        var sizes: [String: Int] = [:]
        if progress != nil {
            for e in manifest.segments { sizes[e.name] = (try? FileSystem.fileSize("\(directory)/\(e.name)")).map { Int($0) } ?? 0 }
        }
        self.sizes = sizes
        total = sizes.values.reduce(0, +)
        progress?(0, total)
    }

    /// The progress of segment `name`'s own verification, mapped into the collection's bytes.
    func within(_ name: String) -> VerifyProgress? {
        guard let progress else { return nil }
        let (base, size, total) = (done, sizes[name] ?? 0, total)
        return { d, _ in progress(base + min(max(0, d), size), total) }
    }

    /// Segment `name` is checked (or skipped): its whole size is done.
    mutating func finished(_ name: String) {
        guard let progress else { return }
        done += sizes[name] ?? 0
        progress(done, total)
    }
}
