// The collection manifest: the one file that says which segments, delete bitmaps and WAL make up
// the collection. Immutable once written; a new version replaces `MANIFEST` by rename
// (publishAtomically: temp, fsync, rename, fsync directory), so a reader that opens
// `MANIFEST` gets one whole version, old or new. Layout (docs/COLLECTION-FORMAT.md C.3):
//
//   header (64 B) | schema | segment entries | obsolete-file entries | footer (16 B)
//
//   header: magic "STRATMAN", u16 major, u16 minor, u16 min reader major, u16 reserved 0,
//           u64 generation, u64 WAL sequence, u64 created (Unix ms), u32 segment count,
//           u32 obsolete count, u32 dimension, u8 element type, u8 metric, u16 reserved 0,
//           u64 file length
//   schema: u32 length + SchemaCodec bytes (as in a segment's schema section)
//   segment entry: u16 name length, name, u16 bitmap name length (0: no deletes), bitmap name,
//           u64 rows, u64 deleted rows, u64 file bytes, u8 flags (bit 0 indexed), 7 reserved 0
//           (format 2.0: u8 flags, 3 reserved 0, u32 column count)
//
// Format 1.0 is written whenever every segment has all of the schema's columns (byte-identical to
// manifests written before schema growth); format 2.0 (min reader major 2) only when some segment
// has fewer: its entries then say how many of the schema's leading columns the segment holds.
//   obsolete entry: u16 name length, name, u64 obsolete since (Unix ms)
//   footer: u64 XXH3-64 of every byte before it, magic "STRATMEN"
import StrataFormat
import StrataIndex
#if canImport(Glibc)
import Glibc
#endif

/// One live segment as the manifest lists it.
package struct ManifestSegment: Sendable, Equatable {
    /// File name inside the collection directory (`seg-<owner><16 hex>.seg`).
    public var name: String
    /// Delete bitmap file name (`del-<owner><16 hex>.del`), nil when no row is deleted.
    public var deleteFile: String?
    /// Rows in the segment file.
    public var rowCount: UInt64
    /// Rows marked deleted in the bitmap.
    public var deletedCount: UInt64
    /// Segment file size in bytes.
    public var fileBytes: UInt64
    /// Whether the segment carries an ANN index.
    public var indexed: Bool
    /// How many of the manifest schema's leading columns the segment holds; nil: all of them. A
    /// segment written before columns were added to the collection holds fewer (its rows read the
    /// others as null).
    public var columnCount: Int? = nil

    /// The columns of `schema` (the manifest's) that the segment holds.
    package func columns(of schema: SegmentSchema) -> Int { columnCount ?? schema.columns.count }
}

/// A file no longer referenced, kept until its grace period ends (other processes may still be
/// opening it).
package struct ObsoleteFile: Sendable, Equatable {
    /// File name inside the collection directory.
    public var name: String
    /// When it stopped being referenced (Unix milliseconds).
    public var sinceMilliseconds: UInt64
}

/// One decoded manifest version.
package struct Manifest: Sendable, Equatable {
    /// Increases by one with every published version.
    public var generation: UInt64
    /// Sequence number of the WAL file whose records are not yet in segments (`wal-<seq>.log`).
    public var walSequence: UInt64
    /// When this version was written (Unix milliseconds).
    public var createdMilliseconds: UInt64
    /// Vector shape, metric and payload columns of every segment.
    public var schema: SegmentSchema
    /// Live segments, oldest first.
    public var segments: [ManifestSegment]
    /// Files waiting for their grace period to end before removal.
    public var obsolete: [ObsoleteFile]

    /// A manifest.
    package init(generation: UInt64, walSequence: UInt64, createdMilliseconds: UInt64, schema: SegmentSchema,
                 segments: [ManifestSegment], obsolete: [ObsoleteFile]) {
        self.generation = generation
        self.walSequence = walSequence
        self.createdMilliseconds = createdMilliseconds
        self.schema = schema
        self.segments = segments
        self.obsolete = obsolete
    }

    static let magic: [UInt8] = Array("STRATMAN".utf8)
    static let footerMagic: [UInt8] = Array("STRATMEN".utf8)
    static let major: UInt16 = 1
    static let minor: UInt16 = 0
    static let minReaderMajor: UInt16 = 1
    /// The format of a manifest with a segment narrower than its schema (entries carry column counts).
    static let narrowMajor: UInt16 = 2
    /// Highest major this build reads.
    static let readerMajor: UInt16 = 2

    /// Whether some segment holds fewer columns than the schema (the manifest is then written as 2.0).
    package var hasNarrowSegments: Bool { segments.contains { $0.columns(of: schema) < schema.columns.count } }
    static let headerLength = 64
    static let footerLength = 16

    /// The bytes of this version.
    package func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 4096)
        let narrow = hasNarrowSegments
        let major = narrow ? Self.narrowMajor : Self.major
        w.raw(Self.magic); w.u16(major); w.u16(Self.minor); w.u16(narrow ? Self.narrowMajor : Self.minReaderMajor); w.u16(0)
        w.u64(generation); w.u64(walSequence); w.u64(createdMilliseconds)
        w.u32(UInt32(segments.count)); w.u32(UInt32(obsolete.count))
        w.u32(UInt32(schema.dimension)); w.u8(schema.elementType.rawValue); w.u8(schema.metric.rawValue); w.u16(0)
        w.u64(0) // file length, patched below
        let schemaBytes = SchemaCodec.encode(schema.columns)
        w.u32(UInt32(schemaBytes.count)); w.raw(schemaBytes)
        func name(_ s: String?) {
            let b = Array((s ?? "").utf8)
            w.u16(UInt16(b.count)); w.raw(b)
        }
        for s in segments {
            name(s.name); name(s.deleteFile)
            w.u64(s.rowCount); w.u64(s.deletedCount); w.u64(s.fileBytes)
            w.u8(s.indexed ? 1 : 0)
            if narrow {
                w.zeros(3); w.u32(UInt32(s.columns(of: schema)))
            } else {
                w.zeros(7)
            }
        }
        for o in obsolete {
            name(o.name); w.u64(o.sinceMilliseconds)
        }
        let length = UInt64(w.count + Self.footerLength)
        var bytes = w.bytes
        withUnsafeBytes(of: length.littleEndian) { for i in 0..<8 { bytes[56 + i] = $0[i] } }
        let checksum = bytes.withUnsafeBytes { Checksum.xxh3($0) }
        withUnsafeBytes(of: checksum.littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Self.footerMagic)
        return bytes
    }

    /// Decodes and validates a manifest. Throws `.badMagic`, `.truncated`, `.checksumMismatch`,
    /// `.unsupportedVersion` or `.corrupt`, with `section` "manifest" and the offset.
    package static func decode(_ bytes: UnsafeRawBufferPointer, path: String? = nil) throws(StrataError) -> Manifest {
        func fail(_ code: StrataError.Code, _ message: String, _ offset: Int) -> StrataError {
            StrataError(code, message, path: path, section: "manifest", offset: UInt64(offset))
        }
        guard bytes.count >= 8, bytes[0..<8].elementsEqual(magic) else {
            throw fail(.badMagic, "not a Strata manifest (magic is not STRATMAN)", 0)
        }
        guard bytes.count >= headerLength + footerLength else {
            throw fail(.truncated, "manifest is \(bytes.count) bytes, at least \(headerLength + footerLength) needed", bytes.count)
        }
        let footerAt = bytes.count - footerLength
        guard bytes[(footerAt + 8)...].elementsEqual(footerMagic) else {
            throw fail(.truncated, "manifest footer magic missing (torn write?)", footerAt + 8)
        }
        guard Checksum.trailerMatches(bytes, at: footerAt) else {
            throw fail(.checksumMismatch, "manifest checksum mismatch", footerAt)
        }
        var r = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[0..<footerAt]), baseOffset: 0, section: "manifest")
        do throws(StrataError) {
            try r.skip(8)
            let major = try r.u16(), _ = try r.u16(), minReader = try r.u16()
            guard minReader <= readerMajor else {
                throw fail(.unsupportedVersion, "manifest format \(major) needs a reader of major version \(minReader); this build reads \(readerMajor): upgrade Strata", 8)
            }
            // Entries carry column counts from major 2 on (a 1.x manifest that asks only for a
            // major-1 reader has none).
            let hasColumnCounts = major >= Self.narrowMajor
            try r.reservedZeros(2)
            let generation = try r.u64(), walSequence = try r.u64(), created = try r.u64()
            let segmentCount = try r.u32(), obsoleteCount = try r.u32()
            let dimension = try r.u32(), elementRaw = try r.u8(), metricRaw = try r.u8()
            try r.reservedZeros(2)
            let length = try r.u64()
            guard length == UInt64(bytes.count) else {
                throw fail(.truncated, "manifest is \(bytes.count) bytes, header says \(length)", 56)
            }
            guard (1...SegmentSchema.maximumDimension).contains(Int(dimension)),
                  let elementType = VectorElementType(rawValue: elementRaw), let metric = DistanceMetric(rawValue: metricRaw) else {
                throw fail(.corrupt, "bad dimension, element type or metric", 48)
            }
            let schemaLength = try r.u32()
            let schemaAt = r.absoluteOffset
            let columns = try SchemaCodec.decode(try r.slice(Int(schemaLength)), fileOffset: schemaAt)
            func name(optional: Bool) throws(StrataError) -> String? {
                let at = r.absoluteOffset
                let n = try r.u16()
                if n == 0 {
                    if optional { return nil }
                    throw fail(.corrupt, "empty file name", Int(at))
                }
                guard let s = String(validating: try r.slice(Int(n)), as: UTF8.self), CollectionFiles.isSafeName(s) else {
                    throw fail(.corrupt, "bad file name", Int(at))
                }
                return s
            }
            // Each entry takes at least 34 (segment) or 10 (obsolete) bytes: check counts before allocating.
            guard UInt64(segmentCount) * 36 + UInt64(obsoleteCount) * 10 <= UInt64(r.remaining) else {
                throw fail(.corrupt, "entry counts \(segmentCount)/\(obsoleteCount) exceed the manifest", 40)
            }
            var segments: [ManifestSegment] = []
            var seen = Set<String>()
            // Totals stay below 2^62, so rows and bytes convert to Int and add up without overflow.
            let maximumTotal: UInt64 = 1 << 62
            var totalRows: UInt64 = 0, totalBytes: UInt64 = 0
            for _ in 0..<segmentCount {
                let at = r.absoluteOffset
                let n = try name(optional: false)!
                let d = try name(optional: true)
                let rows = try r.u64(), deleted = try r.u64(), fileBytes = try r.u64()
                let flags = try r.u8()
                var columnCount: Int? = nil
                if hasColumnCounts {
                    try r.reservedZeros(3)
                    let c = Int(try r.u32())
                    guard c <= columns.count else {
                        throw fail(.corrupt, "segment entry for \(n) names \(c) columns, the schema has \(columns.count)", Int(at))
                    }
                    if c < columns.count { columnCount = c }
                } else {
                    try r.reservedZeros(7)
                }
                guard flags & ~1 == 0, deleted <= rows, (deleted == 0) == (d == nil), seen.insert(n).inserted else {
                    throw fail(.corrupt, "bad segment entry for \(n)", Int(at))
                }
                guard rows <= maximumTotal - totalRows, fileBytes <= maximumTotal - totalBytes else {
                    throw fail(.corrupt, "row or byte counts of \(n) exceed 2^62 in total", Int(at))
                }
                totalRows += rows
                totalBytes += fileBytes
                segments.append(ManifestSegment(name: n, deleteFile: d, rowCount: rows, deletedCount: deleted,
                                                fileBytes: fileBytes, indexed: flags & 1 != 0, columnCount: columnCount))
            }
            var obsolete: [ObsoleteFile] = []
            for _ in 0..<obsoleteCount {
                let n = try name(optional: false)!
                obsolete.append(ObsoleteFile(name: n, sinceMilliseconds: try r.u64()))
            }
            guard r.remaining == 0 else { throw fail(.corrupt, "trailing bytes in manifest", Int(r.absoluteOffset)) }
            return Manifest(generation: generation, walSequence: walSequence, createdMilliseconds: created,
                            schema: SegmentSchema(dimension: Int(dimension), elementType: elementType, metric: metric, columns: columns),
                            segments: segments, obsolete: obsolete)
        } catch {
            var e = error
            if e.path == nil { e.path = path }
            throw e
        }
    }

    /// Reads `<dir>/MANIFEST`. A missing manifest is `.io` (errno ENOENT, "not a collection") in a
    /// directory without collection data files, and `.corrupt` (section "manifest") in one that
    /// holds segments, bitmaps or WALs: the manifest was moved or lost, and every caller (open,
    /// cleanup, compaction, create) must then refuse rather than treat the files as leftovers.
    static func read(directory: String) throws(StrataError) -> Manifest {
        let path = CollectionFiles.manifest(directory)
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readAll(path)
        } catch {
            if error.code == .io, error.errno == ENOENT { throw missingError(directory: directory) }
            throw error
        }
        return try bytes.withBytes { (raw) throws(StrataError) in try decode(raw, path: path) }
    }

    /// Why `<dir>/MANIFEST` is missing, as an error (see ``read(directory:)``).
    static func missingError(directory: String) -> StrataError {
        let path = CollectionFiles.manifest(directory)
        let found = ((try? FileSystem.list(directory)) ?? []).filter(CollectionFiles.isDataFile).sorted()
        guard !found.isEmpty else {
            return StrataError(.io, "not a collection directory (no MANIFEST)", path: path, errno: ENOENT)
        }
        let shown = found.prefix(5).joined(separator: ", ") + (found.count > 5 ? ", ..." : "")
        return StrataError(.corrupt, "MANIFEST is missing but the directory holds \(found.count) collection files (\(shown)): "
                           + "the manifest was moved or lost; refusing to open, clean up or overwrite them "
                           + "(restore MANIFEST, or move the files away)", path: path, section: "manifest")
    }

    /// Publishes this version as `<dir>/MANIFEST` (atomic replace). Call with MANIFEST.lock held.
    func publish(directory: String) throws(StrataError) {
        try publishAtomically(encoded(), to: CollectionFiles.manifest(directory))
    }

    /// Every file this version references (segments, bitmaps, its WAL).
    var referencedFiles: Set<String> {
        var s = Set<String>()
        for seg in segments {
            s.insert(seg.name)
            if let d = seg.deleteFile { s.insert(d) }
        }
        s.insert(CollectionFiles.walName(walSequence))
        return s
    }
}

/// Names of the files in a collection directory.
///
/// Three lock files (docs/COLLECTION-FORMAT.md C.1), each taken with a ``FileLock``:
///   LOCK           held exclusively by the one writer process for as long as it has the collection open
///   COMPACT.lock   held exclusively by a compaction run (a second cron run sees it busy and exits 0)
///   MANIFEST.lock  held briefly around read-modify-publish of MANIFEST, by the writer and the compactor
package enum CollectionFiles {
    static func manifest(_ dir: String) -> String { "\(dir)/MANIFEST" }
    static func writerLock(_ dir: String) -> String { "\(dir)/LOCK" }
    static func compactLock(_ dir: String) -> String { "\(dir)/COMPACT.lock" }
    static func manifestLock(_ dir: String) -> String { "\(dir)/MANIFEST.lock" }

    /// `wal-<20-digit sequence>.log`.
    package static func walName(_ sequence: UInt64) -> String {
        let s = String(sequence)
        return "wal-" + String(repeating: "0", count: max(0, 20 - s.count)) + s + ".log"
    }

    /// Who created a segment or bitmap file: the writer (`w`) or the compactor (`c`). Each cleans
    /// up only its own leftovers, so neither removes a file the other is about to publish.
    package enum Owner: Character { case writer = "w", compactor = "c" }

    package static func newSegmentName(_ owner: Owner) -> String { "seg-\(owner.rawValue)\(randomHex()).seg" }
    package static func newBitmapName(_ owner: Owner) -> String { "del-\(owner.rawValue)\(randomHex()).del" }

    /// A random 64-bit value as 16 lower-case hex digits.
    private static func randomHex() -> String {
        let v = UInt64.random(in: 0...UInt64.max)
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// The owner of a segment/bitmap file name or of a temporary file made for one (nil otherwise).
    static func owner(of name: String) -> Owner? {
        var n = Substring(name)
        if n.hasPrefix(".") { n = n.dropFirst() }
        guard n.hasPrefix("seg-") || n.hasPrefix("del-") else { return nil }
        return n.dropFirst(4).first.flatMap(Owner.init(rawValue:))
    }

    /// Whether `name` is a temporary file (`.<name>.tmp-<pid>-<random>` and its column spools).
    static func isTemporary(_ name: String) -> Bool { name.hasPrefix(".") && name.contains(".tmp-") }

    /// Whether `name` is a WAL file name.
    static func isWAL(_ name: String) -> Bool { name.hasPrefix("wal-") && name.hasSuffix(".log") }

    /// Whether `name` holds collection data: a segment, delete bitmap or WAL (`seg-*`, `del-*`,
    /// `wal-*`). Such files without a readable MANIFEST make a directory a damaged collection.
    static func isDataFile(_ name: String) -> Bool {
        name.hasPrefix("seg-") || name.hasPrefix("del-") || name.hasPrefix("wal-")
    }

    /// Whether `name` is any file a collection puts in its directory: data files, `MANIFEST*`,
    /// `LOCK`, `COMPACT.lock` and the temporaries of all of them. `create` refuses a directory
    /// that holds one.
    static func isCollectionFile(_ name: String) -> Bool {
        let n = name.hasPrefix(".") ? Substring(name.dropFirst()) : Substring(name)
        return isDataFile(String(n)) || n.hasPrefix("MANIFEST") || n == "LOCK" || n == "COMPACT.lock"
    }

    /// A plain file name: no slash, not `.`/`..`, printable ASCII.
    static func isSafeName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }
    }
}
