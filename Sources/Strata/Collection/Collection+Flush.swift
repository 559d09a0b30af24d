// Flush: seals the buffer into a new segment, turns pending deletes of sealed rows into delete
// bitmaps, starts a new WAL and publishes all of it as one manifest edit (ManifestEdit.swift).
import StrataFormat
import StrataIndex
import Synchronization

extension StrataCollection {
    /// What a flush did.
    public struct FlushSummary: Sendable {
        /// The new segment (nil when only deletes were flushed).
        public var segment: String?
        /// Rows sealed into it.
        public var rows: Int
        /// Its size in bytes.
        public var bytes: UInt64
        /// Delete bitmaps written.
        public var bitmapsWritten: Int
        /// Pending deletes of sealed rows turned into bitmap bits.
        public var deletesApplied: Int
        /// Manifest generation published.
        public var generation: UInt64
        /// Wall time.
        public var seconds: Double

        /// A summary.
        package init(segment: String?, rows: Int, bytes: UInt64, bitmapsWritten: Int, deletesApplied: Int, generation: UInt64, seconds: Double) {
            self.segment = segment
            self.rows = rows
            self.bytes = bytes
            self.bitmapsWritten = bitmapsWritten
            self.deletesApplied = deletesApplied
            self.generation = generation
            self.seconds = seconds
        }
    }

    /// Seals the buffer into a new segment (with an index when it has enough rows), writes delete
    /// bitmaps for pending deletes of sealed rows, starts a new WAL and publishes a manifest.
    /// Returns nil when there was nothing to flush.
    @discardableResult
    public func flush() throws(StrataError) -> FlushSummary? {
        try writeLock.locked { () throws(StrataError) -> FlushSummary? in
            try checkWritable()
            return try flushLocked()
        }
    }

    /// The flush, with writeLock held. With `schema` (the current one with nullable columns
    /// appended), the same manifest publish also changes the schema, and it publishes even when
    /// the buffer is empty: the new WAL is the first whose records carry the new columns. With
    /// `sparseWAL`, likewise, to start a WAL of format 3.0 (one that can hold sparse vectors) when
    /// the current one is older.
    func flushLocked(growingTo schema: SegmentSchema? = nil, sparseWAL: Bool = false) throws(StrataError) -> FlushSummary? {
        let start = monotonicSeconds()
        let (m, oldVersion) = stateLock.locked { (mem, version) }
        guard !m.isEmpty || schema != nil || sparseWAL, let oldWAL = wal else { return nil }
        let nextWALVersion = WALVersion.forNewLog(after: oldWAL.version, sparse: sparseWAL)
        var created: [String] = []
        do throws(StrataError) {
            // 1. The buffer's live rows into a new segment (durable, not yet referenced).
            var newEntry: ManifestSegment? = nil
            if !m.index.isEmpty {
                let name = CollectionFiles.newSegmentName(.writer)
                created.append(name)
                newEntry = try m.sealSegment(path: "\(path)/\(name)", name: name, schema: oldVersion.manifest.schema,
                                             options: options.segmentWriterOptions.sealing(oldVersion.manifest.schema, growingTo: schema))
            }
            // 2. The next WAL (durable, not yet referenced).
            let nextSequence = oldVersion.manifest.walSequence + 1
            let nextWALName = CollectionFiles.walName(nextSequence)
            // Creating it renames over any file of that name. Open removed an empty leftover; one that
            // is still here holds records no manifest of ours accounts for: refuse, never overwrite.
            guard !FileSystem.exists("\(path)/\(nextWALName)") else {
                throw StrataError(.alreadyExists, "\(nextWALName) already exists and holds records the manifest (WAL \(oldVersion.manifest.walSequence)) "
                                  + "does not account for (an older MANIFEST put back?); flush refuses to overwrite it: move it away",
                                  path: "\(path)/\(nextWALName)")
            }
            try WALReader.create(directory: path, sequence: nextSequence, version: nextWALVersion)
            created.append(nextWALName)
            // 3. One manifest edit, made against the manifest current under MANIFEST.lock (a compactor
            //    may have published): bitmaps for pending deletes, the new segment, the new WAL.
            var fresh = oldVersion
            var changed: [Int: DeleteBitmap] = [:]
            var applied = 0
            var newSegment: OpenSegment? = nil
            var nextWAL: WALWriter? = nil
            let published: Manifest?
            do throws(ManifestEdit.Failure) {
                published = try ManifestEdit.commit(directory: path, graceSeconds: options.obsoleteFileGraceSeconds) { (current, _) throws(StrataError) -> ManifestEdit? in
                    guard current.walSequence == oldVersion.manifest.walSequence else {
                        throw StrataError(.corrupt, "the manifest names WAL \(current.walSequence), this writer holds \(oldVersion.manifest.walSequence)",
                                          path: CollectionFiles.manifest(path), section: "manifest")
                    }
                    if current.generation != oldVersion.manifest.generation {
                        fresh = try Version.open(directory: path, manifest: current, reusing: oldVersion, options: options.segmentOpenOptions)
                    }
                    (changed, applied) = try fresh.deleteBitmaps(applying: m.sealedDeletes)
                    var edit = ManifestEdit(walSequence: nextSequence, schema: schema)
                    for (s, bitmap) in changed.sorted(by: { $0.key < $1.key }) {
                        let name = CollectionFiles.newBitmapName(.writer)
                        try bitmap.write(to: "\(path)/\(name)")
                        created.append(name)
                        edit.bitmaps.append(ManifestEdit.BitmapChange(segment: fresh.segments[s].entry.name, file: name,
                                                                      deletedCount: UInt64(bitmap.deletedCount)))
                    }
                    if let newEntry {
                        edit.addedSegment = newEntry
                        newSegment = OpenSegment(entry: newEntry, segment: try Segment.open(path: "\(path)/\(newEntry.name)", options: options.segmentOpenOptions),
                                                 bitmap: nil)
                    }
                    nextWAL = try WALWriter(path: "\(path)/\(nextWALName)", sequence: nextSequence, version: nextWALVersion,
                                            validLength: UInt64(WALFormat.headerLength), nextRecordNumber: 1)
                    return edit
                }
            } catch {
                nextWAL?.close()
                if case .publishUncertain(let e) = error {
                    // The MANIFEST on disk may name the new segment, bitmaps and WAL: keep them
                    // (unreferenced, they are leftovers the next open removes) and refuse further
                    // writes, since this handle cannot know which WAL the disk names.
                    created = []
                    failed = e
                }
                throw error.error
            }
            guard let published, let nextWAL else { throw StrataError(.invalidArgument, "flush published no manifest", path: path) }
            // Published: from here on nothing may fail. The edit kept the segments' order and
            // appended the new one.
            created = []
            var segments = fresh.segments
            for i in segments.indices { segments[i].entry = published.segments[i] }
            for (s, bitmap) in changed { segments[s].bitmap = bitmap }
            if let newSegment { segments.append(newSegment) }
            let nextVersion = Version(directory: path, manifest: published, segments: segments)
            stateLock.locked {
                version = nextVersion
                mem = MemTable()
                mem.walVersion = nextWALVersion
                wal = nextWAL
            }
            oldWAL.close()
            return options.observer.flushed(indexed: newEntry?.indexed ?? false, FlushSummary(segment: newEntry?.name, rows: newEntry.map { Int($0.rowCount) } ?? 0, bytes: newEntry?.fileBytes ?? 0,
                                bitmapsWritten: changed.count, deletesApplied: applied, generation: published.generation,
                                seconds: monotonicSeconds() - start))
        } catch {
            for name in created { FileSystem.removeIfPresent("\(path)/\(name)") }
            throw error
        }
    }
}

extension CollectionOptions {
    /// How a flush writes its segment.
    package var segmentWriterOptions: SegmentWriterOptions {
        var wo = SegmentWriterOptions()
        wo.rowsPerBlock = rowsPerBlock
        wo.index = index
        wo.search = search
        return wo
    }
}

extension MemTable {
    /// Writes the buffer's live rows, in insertion order, into a new segment file at `path` (named
    /// `name` in the manifest); returns its manifest entry. The file is durable, not yet referenced.
    package func sealSegment(path: String, name: String, schema: SegmentSchema, options: SegmentWriterOptions) throws(StrataError) -> ManifestSegment {
        let writer = try SegmentWriter(path: path, schema: schema, options: options)
        try forEachLiveRow { (chunk, r) throws(StrataError) in
            try chunk.vectors.withBytes { (raw) throws(StrataError) in
                let v = UnsafeBufferPointer(rebasing: raw.bindMemory(to: Float.self)[(r * schema.dimension)..<((r + 1) * schema.dimension)])
                try writer.appendAdmitted(id: chunk.ids[r], vector: v, values: chunk.values[r], sparse: chunk.sparse(r))
            }
        }
        let summary = try writer.finish()
        return ManifestSegment(name: name, deleteFile: nil, rowCount: UInt64(summary.rowCount), deletedCount: 0,
                               fileBytes: summary.fileBytes, indexed: summary.sections.contains { $0.kind == .graph },
                               columnCount: schema.columns.count)
    }
}

extension Version {
    /// The delete bitmaps that pending deletes of sealed rows (`ids`) make: for each segment that
    /// holds one of them, its current bitmap (or an empty one) with those rows added, by segment
    /// position; and how many rows that marks. Ids resolve to rows through every sealed segment's
    /// id_index and ids (newest first), here and when the WAL's records were applied (an upsert or
    /// delete whose id the look-up missed is no pending delete at all), so those sections are
    /// checked first (once per open segment): damage throws before a bitmap that depends on them
    /// is written or a WAL retired.
    package func deleteBitmaps(applying ids: Set<UInt64>) throws(StrataError) -> (changed: [Int: DeleteBitmap], applied: Int) {
        for s in segments { try s.segment.checkSectionChecksums([.ids, .idIndex]) }
        var changed: [Int: DeleteBitmap] = [:]
        var applied = 0
        for id in ids {
            guard let (s, row) = locate(id) else { continue }
            if changed[s] == nil { changed[s] = segments[s].bitmap ?? DeleteBitmap(rowCount: segments[s].segment.rowCount) }
            if changed[s]!.insert(row) { applied += 1 }
        }
        return (changed, applied)
    }
}
