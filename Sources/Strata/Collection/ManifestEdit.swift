// A change to the collection manifest as a value (LevelDB's VersionEdit is the model): delete
// bitmaps replaced, segments removed and added, the WAL rotated, the schema grown. A flush and a compaction task each
// describe what they did as an edit; `ManifestEdit.commit` applies it, under MANIFEST.lock, to the
// manifest current at that moment (another process may have published since they started) and
// publishes the next generation. Every manifest change goes through it, so that the generation
// bump, the obsolete-file list and the garbage collection are written down once.
import StrataFormat

/// What one publish changes in the manifest.
package struct ManifestEdit {
    /// A new delete bitmap for a live segment (its old bitmap, if any, becomes obsolete).
    package struct BitmapChange {
        /// Segment file name.
        var segment: String
        /// The new bitmap file.
        var file: String
        /// Rows the new bitmap marks deleted.
        var deletedCount: UInt64

        /// A change of `segment`'s bitmap to `file`.
        package init(segment: String, file: String, deletedCount: UInt64) {
            self.segment = segment
            self.file = file
            self.deletedCount = deletedCount
        }
    }

    /// New bitmaps, in the order their old files are listed as obsolete.
    package var bitmaps: [BitmapChange] = []
    /// Segments leaving the live set; they and their bitmaps become obsolete.
    package var removedSegments: Set<String> = []
    /// A new segment: in the place of the first removed segment, or after the last one.
    package var addedSegment: ManifestSegment? = nil
    /// A segment replaced by a copy of the same rows in the same order (the background index
    /// builder's output): the copy takes the old file's place and keeps the delete bitmap the
    /// manifest names for it *now* (rows deleted during the build stay deleted, since row numbers
    /// are the same); only the old segment file becomes obsolete.
    package var reindexed: (old: String, new: ManifestSegment)? = nil
    /// New segments appended after all others, in this order (a bulk import's).
    package var appendedSegments: [ManifestSegment] = []
    /// The WAL that receives records from now on (the current one becomes obsolete); nil: unchanged.
    package var walSequence: UInt64? = nil
    /// The schema from now on: the current one with nullable columns appended (WAL records are
    /// encoded against one schema, so this comes with a new WAL); nil: unchanged.
    package var schema: SegmentSchema? = nil

    /// An edit of these changes (by default none).
    package init(bitmaps: [BitmapChange] = [], removedSegments: Set<String> = [], addedSegment: ManifestSegment? = nil,
                 walSequence: UInt64? = nil, schema: SegmentSchema? = nil) {
        self.bitmaps = bitmaps
        self.walSequence = walSequence
        self.removedSegments = removedSegments
        self.addedSegment = addedSegment
        self.schema = schema
    }

    /// Whether the edit changes nothing (only garbage collection may then publish).
    var isEmpty: Bool {
        bitmaps.isEmpty && removedSegments.isEmpty && addedSegment == nil && reindexed == nil && appendedSegments.isEmpty
            && walSequence == nil && schema == nil
    }

    /// `current` with this edit applied: the next generation, created at `now`, with the files
    /// the edit retires listed as obsolete since `now` (old bitmaps, then removed segments with
    /// their bitmaps in manifest order, then the old WAL; a reindexed segment's old file comes
    /// after the old bitmaps). Throws `.invalidArgument` when the edit
    /// names a segment that `current` does not list, a schema that does not extend `current`'s with
    /// nullable columns, or a segment with more columns than the schema (nothing is published then).
    package func applied(to current: Manifest, now: UInt64) throws(StrataError) -> Manifest {
        var next = current
        next.generation = current.generation + 1
        next.createdMilliseconds = now
        if let schema {
            guard schema.extends(current.schema) else {
                throw StrataError(.invalidArgument, "a manifest edit changes the schema other than by appending nullable columns")
            }
            // The segments keep the columns they have: say how many before the schema grows.
            for i in next.segments.indices { next.segments[i].columnCount = next.segments[i].columns(of: current.schema) }
            next.schema = schema
        }
        if let c = addedSegment?.columnCount, c > next.schema.columns.count {
            throw StrataError(.invalidArgument, "a manifest edit adds segment \(addedSegment!.name) with \(c) columns, the schema has \(next.schema.columns.count)")
        }
        for added in appendedSegments {
            guard added.columnCount ?? 0 <= next.schema.columns.count else {
                throw StrataError(.invalidArgument, "a manifest edit adds segment \(added.name) with \(added.columnCount!) columns, the schema has \(next.schema.columns.count)")
            }
            guard !current.segments.contains(where: { $0.name == added.name }) else {
                throw StrataError(.invalidArgument, "a manifest edit adds segment \(added.name), which the manifest already lists")
            }
        }
        for change in bitmaps {
            guard let i = next.segments.firstIndex(where: { $0.name == change.segment }) else {
                throw StrataError(.invalidArgument, "a manifest edit names segment \(change.segment), which the manifest does not list")
            }
            if let old = next.segments[i].deleteFile { next.obsolete.append(ObsoleteFile(name: old, sinceMilliseconds: now)) }
            next.segments[i].deleteFile = change.file
            next.segments[i].deletedCount = change.deletedCount
        }
        if let reindexed {
            guard let i = next.segments.firstIndex(where: { $0.name == reindexed.old }) else {
                throw StrataError(.invalidArgument, "a manifest edit reindexes segment \(reindexed.old), which the manifest does not list")
            }
            guard reindexed.new.rowCount == next.segments[i].rowCount, reindexed.new.columns(of: next.schema) <= next.schema.columns.count else {
                throw StrataError(.invalidArgument, "a manifest edit reindexes segment \(reindexed.old) with a copy of another shape")
            }
            var entry = reindexed.new
            entry.deleteFile = next.segments[i].deleteFile
            entry.deletedCount = next.segments[i].deletedCount
            next.obsolete.append(ObsoleteFile(name: reindexed.old, sinceMilliseconds: now))
            next.segments[i] = entry
        }
        if !removedSegments.isEmpty || addedSegment != nil {
            let missing = removedSegments.subtracting(current.segments.map(\.name))
            guard missing.isEmpty else {
                throw StrataError(.invalidArgument, "a manifest edit removes segments that the manifest does not list: "
                                  + missing.sorted().joined(separator: ", "))
            }
            var segments: [ManifestSegment] = []
            var placed = false
            for s in next.segments {
                guard removedSegments.contains(s.name) else {
                    segments.append(s)
                    continue
                }
                if !placed, let addedSegment { segments.append(addedSegment) }
                placed = true
                next.obsolete.append(ObsoleteFile(name: s.name, sinceMilliseconds: now))
                if let d = s.deleteFile { next.obsolete.append(ObsoleteFile(name: d, sinceMilliseconds: now)) }
            }
            if !placed, let addedSegment { segments.append(addedSegment) }
            next.segments = segments
        }
        next.segments += appendedSegments
        if let walSequence {
            next.obsolete.append(ObsoleteFile(name: CollectionFiles.walName(current.walSequence), sinceMilliseconds: now))
            next.walSequence = walSequence
        }
        // A segment with all of the schema's columns is written without a count (format 1.0 when all are).
        for i in next.segments.indices where next.segments[i].columnCount == next.schema.columns.count {
            next.segments[i].columnCount = nil
        }
        return next
    }

    /// Why ``commit(directory:graceSeconds:_:)`` failed.
    enum Failure: Error {
        /// Before the publish: no manifest names anything the edit added.
        case notPublished(StrataError)
        /// In the publish: the rename may have happened (the directory fsync comes after it), so
        /// the MANIFEST on disk may name what the edit added. Keep those files: unreferenced, they
        /// are leftovers that the next cleanup removes.
        case publishUncertain(StrataError)

        /// The underlying error.
        var error: StrataError {
            switch self {
            case .notPublished(let e), .publishUncertain(let e): return e
            }
        }
    }

    /// Under MANIFEST.lock: reads the current manifest, asks `prepare` for the edit to make to it
    /// (given the manifest and the time the edit is stamped with; nil: publish nothing), applies
    /// it, removes obsolete files whose grace period has ended, that no version of this process
    /// holds and that `current` no longer names (a file the edit retires waits for a later
    /// publish), and publishes the result. Returns the published manifest, or nil when nothing was
    /// published (`prepare` returned nil, or an empty edit found no garbage to collect).
    static func commit(directory: String, graceSeconds: Double,
                       _ prepare: (_ current: Manifest, _ now: UInt64) throws(StrataError) -> ManifestEdit?) throws(Failure) -> Manifest? {
        var publishing = false
        do throws(StrataError) {
            let lock = try lockManifest(directory: directory)
            defer { lock.unlock() }
            let current = try Manifest.read(directory: directory)
            let now = WallClock.milliseconds()
            guard let edit = try prepare(current, now) else { return nil }
            var next = try edit.applied(to: current, now: now)
            let obsolete = next.obsolete.count
            // What this edit retires is still named by the MANIFEST on disk until the rename below:
            // it waits for a later publish, whatever the grace period (a kill -9 between its removal
            // and the rename would leave the standing manifest naming a missing file).
            Maintenance.collectGarbage(&next, directory: directory, graceSeconds: graceSeconds, now: now,
                                       keeping: current.referencedFiles)
            if edit.isEmpty, next.obsolete.count == obsolete { return nil }
            publishing = true
            try next.publish(directory: directory)
            return next
        } catch {
            throw publishing ? .publishUncertain(error) : .notPublished(error)
        }
    }

    /// Takes MANIFEST.lock, waiting for it. Every read-modify-publish of the manifest holds it, and
    /// so does a reader that must not see a file of the version it read removed before it opens it.
    static func lockManifest(directory: String) throws(StrataError) -> FileLock {
        guard let lock = try FileLock.acquire(CollectionFiles.manifestLock(directory), wait: true) else {
            throw StrataError(.io, "cannot lock the manifest", path: directory)
        }
        return lock
    }
}
