// `StrataCollection.stats()` and what replay found at open (`recovery`).

import StrataFormat
import StrataIndex

extension StrataCollection {
    /// Segments, rows, deletes and bytes, the WAL's format and the WAL side files in the directory.
    public func stats() throws(StrataError) -> CollectionStats {
        var stats = CollectionStats(snapshot: try snapshot(), walSideFiles: try FileSystem.list(path).filter(WALSideFile.isSideFile).sorted())
        stats.backgroundIndex = backgroundIndexStats
        return stats
    }
}

extension CollectionStats {
    /// The stats of one snapshot (a local or a remote collection's); `walSideFiles` as found beside it.
    package init(snapshot snap: CollectionSnapshot, walSideFiles: [String]) {
        self.init(generation: snap.version.manifest.generation, walSequence: snap.version.manifest.walSequence,
                  segments: [], bufferedRows: snap.mem.index.count, pendingDeletes: snap.mem.sealedDeletes.count,
                  liveRows: snap.count, totalRows: 0, deletedRows: 0, segmentBytes: 0, bitmapBytes: 0,
                  walBytes: snap.mem.walOffset, obsoleteFiles: snap.version.manifest.obsolete.count,
                  walFormat: snap.mem.walVersion.description, walSideFiles: walSideFiles)
        for seg in snap.version.segments {
            segments.append(.init(name: seg.entry.name, rows: Int(seg.entry.rowCount), deletedRows: Int(seg.entry.deletedCount),
                                  bytes: seg.entry.fileBytes, indexed: seg.entry.indexed, deleteFile: seg.entry.deleteFile,
                                  columns: seg.entry.columns(of: snap.schema)))
            totalRows += Int(seg.entry.rowCount)
            deletedRows += Int(seg.entry.deletedCount)
            segmentBytes += seg.entry.fileBytes
            if let b = seg.bitmap { bitmapBytes += UInt64(DeleteBitmap.headerLength + DeleteBitmap.footerLength + (b.rowCount + 63) / 64 * 8) }
        }
    }
}

/// What `strata stats` shows.
public struct CollectionStats: Sendable {
    /// One segment.
    public struct SegmentStats: Sendable {
        /// The segment's file name.
        public var name: String
        /// Rows in the file, live and deleted.
        public var rows: Int
        /// Rows marked deleted in its bitmap.
        public var deletedRows: Int
        /// Size of the segment file.
        public var bytes: UInt64
        /// Whether the segment has an ANN index.
        public var indexed: Bool
        /// The file name of its delete bitmap, if it has one.
        public var deleteFile: String?
        /// How many of the collection's payload columns the segment holds: all of them, or fewer when
        /// columns were added after it was written (its rows read those as null).
        public var columns: Int
        /// Deleted rows / rows.
        public var deletedFraction: Double { rows == 0 ? 0 : Double(deletedRows) / Double(rows) }
    }
    /// Generation of the manifest read.
    public var generation: UInt64
    /// Sequence number of the current WAL (`wal-<seq>.log`).
    public var walSequence: UInt64
    /// The live segments, oldest first.
    public var segments: [SegmentStats]
    /// Live rows in the write buffer.
    public var bufferedRows: Int
    /// Deletes of sealed rows waiting for the next flush.
    public var pendingDeletes: Int
    /// Live rows in total.
    public var liveRows: Int
    /// Rows in segment files (live and deleted).
    public var totalRows: Int
    /// Rows deleted by bitmaps.
    public var deletedRows: Int
    /// Bytes of the live segment files.
    public var segmentBytes: UInt64
    /// Bytes of their delete bitmaps.
    public var bitmapBytes: UInt64
    /// Bytes of the current WAL that replay applied (its header and good records).
    public var walBytes: UInt64
    /// Files awaiting removal after their grace period.
    public var obsoleteFiles: Int
    /// Format of the current WAL ("2.0"; "1.0" for a WAL written by an older Strata, until the next flush).
    public var walFormat: String
    /// WAL side files in the directory: `wal-<seq>.log.torn-<offset>` (a torn tail the writer moved
    /// out at open) and `wal-<seq>.log.damaged-<offset>` (a WAL as it was before `strata recover`).
    /// Never replayed and never removed by Strata.
    public var walSideFiles: [String]
    /// The background index builder of this handle (the build in progress, the segments queued):
    /// nil when the handle has none (read-only, or background indexing off). In-process only: another
    /// process sees the unindexed segments (``SegmentStats/indexed``), not the builder.
    public var backgroundIndex: BackgroundIndexStats? = nil
}

/// What replay of the WAL found when a collection was opened (``StrataCollection/recovery``).
public struct WALReplaySummary: Sendable, Equatable {
    /// Records applied.
    public var records: Int = 0
    /// Bytes of torn tail after the last good record (a record cut short by a crash mid-append),
    /// not replayed.
    public var droppedBytes: UInt64 = 0
    /// Format of the WAL ("1.0" or "2.0").
    public var walFormat: String = "2.0"
    /// Read-write open only: the side file that now holds the torn tail's bytes
    /// (`wal-<seq>.log.torn-<offset>`), nil when there was none.
    public var tornTailFile: String? = nil

    /// Creates a summary.
    public init(records: Int = 0, droppedBytes: UInt64 = 0, walFormat: String = "2.0", tornTailFile: String? = nil) {
        self.records = records
        self.droppedBytes = droppedBytes
        self.walFormat = walFormat
        self.tornTailFile = tornTailFile
    }
}
