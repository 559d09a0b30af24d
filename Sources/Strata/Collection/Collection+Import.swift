// Bulk import: sealed (indexed) segments built straight from the caller's rows, in parallel, and
// published all at once by ONE manifest edit that appends them after the existing segments. The
// rows never pass through the WAL or the buffer.
//
// Why a method of an open collection under its write lock (and not a tool that takes LOCK itself):
// the writer's state (its version, buffer and WAL) must agree with what the import publishes, and
// the lock is how every other write is kept out meanwhile. Writes from this process wait for the
// import; other processes cannot open the collection for writing (LOCK), readers and the
// compactor go on (MANIFEST.lock serialises the one publish).
//
// All or nothing: the segments are written under their final `seg-w*` names (through temporary
// files), not referenced by any manifest until the edit; a failure removes them, a kill leaves them
// as unreferenced leftovers that the next read-write open removes (as for a flush).
import StrataFormat
import StrataIndex

extension StrataCollection {
    /// What ``importSegments(count:threads:writerOptions:describe:fill:)`` published.
    public struct ImportSummary: Sendable {
        /// The new segments' file names, in input order (they follow the existing segments).
        public var segments: [String]
        /// Rows imported.
        public var rows: Int
        /// Bytes of the new segment files.
        public var bytes: UInt64
        /// Segments that got an ANN index.
        public var indexedSegments: Int
        /// Manifest generation published.
        public var generation: UInt64
        /// Wall seconds, lock wait included.
        public var seconds: Double

        package init(segments: [String], rows: Int, bytes: UInt64, indexedSegments: Int, generation: UInt64, seconds: Double) {
            self.segments = segments
            self.rows = rows
            self.bytes = bytes
            self.indexedSegments = indexedSegments
            self.generation = generation
            self.seconds = seconds
        }
    }

    /// Imports `count` segments in one manifest edit, bypassing the WAL: `fill(k, writer)` appends
    /// the rows of segment k (k = 0..<count, in input order) to a fresh writer of the collection's
    /// schema; up to `threads` segments are filled and finished (index built) at once. Holds the
    /// write lock throughout; a non-empty buffer (or a WAL with records) is flushed first, so that
    /// the WAL never replays over imported rows and the imported segments are the newest.
    ///
    /// Before anything is published, ids are checked across the new segments (unique) and against
    /// the collection's live rows (absent), with memory independent of the row count (a merge of
    /// the new segments' id indexes); errors name the row by `describe(k, row)` (row `row` of
    /// segment k). Any error (from `fill`, a segment write, a check, the publish) removes every
    /// file the import made and leaves the collection as it was. After a publish whose outcome is
    /// unknown the handle refuses further writes, as after a failed flush.
    /// - Parameters:
    ///   - count: segments to build (0 publishes nothing).
    ///   - threads: segments filled and finished at once (at least 1).
    ///   - writerOptions: options of the segment writers (index, search sections, id-sort memory).
    ///   - describe: how errors name row `row` of segment k, e.g. `row 75 of base.fvecs (id 75)`.
    ///   - fill: appends the rows of segment k to the writer it is given.
    /// - Throws: `.duplicateId`, what `fill` throws, and the writer's and publish's errors.
    public func importSegments(count: Int, threads: Int = 1, writerOptions: SegmentWriterOptions,
                               describe: @escaping @Sendable (_ segment: Int, _ row: Int) -> String,
                               fill: @escaping @Sendable (_ segment: Int, _ writer: SegmentWriter) throws(StrataError) -> Void)
        throws(StrataError) -> ImportSummary {
        guard count >= 0, threads >= 1 else { throw StrataError(.invalidArgument, "import needs count >= 0 and threads >= 1", path: path) }
        let start = monotonicSeconds()
        return try writeLock.locked { () throws(StrataError) -> ImportSummary in
            try checkWritable()
            if !stateLock.locked({ mem.isEmpty }) || (wal?.length ?? 0) > UInt64(WALFormat.headerLength) {
                _ = try flushLocked(growingTo: stateLock.locked { version.manifest.schema })
            }
            let old = stateLock.locked { version }
            let schema = old.manifest.schema
            let built = SegmentImportBuild(directory: path, schema: schema, options: writerOptions, describe: describe)
            var published: Manifest? = nil
            do throws(StrataError) {
                let entries = try built.run(count: count, threads: threads, fill: fill)
                guard !entries.isEmpty else {
                    return ImportSummary(segments: [], rows: 0, bytes: 0, indexedSegments: 0, generation: old.manifest.generation,
                                         seconds: monotonicSeconds() - start)
                }
                var opened: [OpenSegment] = []
                for e in entries {
                    opened.append(OpenSegment(entry: e, segment: try Segment.open(path: "\(path)/\(e.name)", options: options.segmentOpenOptions),
                                              bitmap: nil))
                }
                try Self.checkImportedIds(opened.map(\.segment), against: old, describe: describe)
                var fresh = old
                do throws(ManifestEdit.Failure) {
                    published = try ManifestEdit.commit(directory: path, graceSeconds: options.obsoleteFileGraceSeconds) { (current, _) throws(StrataError) -> ManifestEdit? in
                        if current.generation != old.manifest.generation {
                            fresh = try Version.open(directory: path, manifest: current, reusing: old, options: options.segmentOpenOptions)
                        }
                        var edit = ManifestEdit()
                        edit.appendedSegments = entries
                        return edit
                    }
                } catch {
                    if case .publishUncertain(let e) = error {
                        // The MANIFEST on disk may name the new segments: keep them, refuse writes.
                        built.keepFiles()
                        failed = e
                    }
                    throw error.error
                }
                guard let manifest = published else { throw StrataError(.invalidArgument, "import published no manifest", path: path) }
                // Published: from here on nothing may fail. The edit kept the segments and appended ours.
                built.keepFiles()
                var segments = fresh.segments
                for i in segments.indices { segments[i].entry = manifest.segments[i] }
                segments += opened
                let next = Version(directory: path, manifest: manifest, segments: segments)
                stateLock.locked { version = next }
                return ImportSummary(segments: entries.map(\.name), rows: entries.reduce(0) { $0 + Int($1.rowCount) },
                                     bytes: entries.reduce(0) { $0 + $1.fileBytes }, indexedSegments: entries.filter(\.indexed).count,
                                     generation: manifest.generation, seconds: monotonicSeconds() - start)
            } catch {
                built.removeFiles()
                throw error
            }
        }
    }

    /// Throws `.duplicateId` for an id that two rows of `segments` share, or that is live in
    /// `version` (whose buffer is empty). One pass over the segments' id indexes in id order (a
    /// heap merge), so memory does not grow with the rows.
    package static func checkImportedIds(_ segments: [Segment], against version: Version,
                                 describe: (_ segment: Int, _ row: Int) -> String) throws(StrataError) {
        for s in segments { try s.checkSectionChecksums([.idIndex]) }
        func pair(_ s: Int, _ i: Int) -> (id: UInt64, row: UInt64) {
            let b = segments[s].idIndexBytes
            return (UInt64(littleEndian: b.loadUnaligned(fromByteOffset: i * 16, as: UInt64.self)),
                    UInt64(littleEndian: b.loadUnaligned(fromByteOffset: i * 16 + 8, as: UInt64.self)))
        }
        var heap = PairHeap()
        var next = [Int](repeating: 1, count: segments.count)
        for (s, segment) in segments.enumerated() where segment.rowCount > 0 { heap.push(pair(s, 0), run: s) }
        var previous: (id: UInt64, row: UInt64, run: Int)? = nil
        while let top = heap.pop() {
            if let p = previous, p.id == top.id {
                throw StrataError(.duplicateId, "\(describe(top.run, Int(top.row))): id \(top.id) was already given to \(describe(p.run, Int(p.row)))")
            }
            if version.locate(top.id) != nil {
                throw StrataError(.duplicateId, "\(describe(top.run, Int(top.row))): id \(top.id) already exists in the collection")
            }
            previous = top
            if next[top.run] < segments[top.run].rowCount {
                heap.push(pair(top.run, next[top.run]), run: top.run)
                next[top.run] += 1
            }
        }
    }
}
