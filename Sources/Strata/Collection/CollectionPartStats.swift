// `strata stats --parts`, in the spirit of sqlite3_analyzer: the bytes of each part of a collection
// (each section kind of each segment, each payload column by name, the delete bitmaps and the WAL),
// per file and in total, and how many of those bytes are in the page cache now.
import StrataFormat
import StrataIndex

/// Bytes and page-cache residency of a collection's parts (``StrataCollection/partStats()``).
public struct CollectionPartStats: Sendable {
    /// One part of one file.
    public struct Part: Sendable, Equatable {
        /// What it holds: a section kind (`vectors`, `graph`, `pq_codes`, `pq_codebook`, `ids`,
        /// `id_index`, `schema`, `payload_index`, `text_index` (BM25), `sparse_index`), `column:NAME`
        /// for a payload column, `layout` (header page, section directory, footer), `padding`
        /// (alignment between sections), `bitmap` or `wal`.
        public var name: String
        /// Bytes on disk.
        public var bytes: UInt64
        /// Bytes of it in the page cache when measured.
        public var residentBytes: UInt64
    }
    /// One file: a segment, a delete bitmap or the WAL.
    public struct File: Sendable {
        /// The file's name in the collection directory.
        public var name: String
        /// Its size.
        public var bytes: UInt64
        /// Its parts; their bytes add up to ``bytes``.
        public var parts: [Part]
    }
    /// The files of the snapshot measured: its segments (oldest first), their bitmaps, the WAL.
    public var files: [File]
    /// Bytes of every file.
    public var totalBytes: UInt64 { files.reduce(0) { $0 + $1.bytes } }
    /// The parts summed over the files by name, largest first.
    public var totals: [Part] {
        var byName: [String: Part] = [:]
        for f in files {
            for p in f.parts {
                byName[p.name, default: Part(name: p.name, bytes: 0, residentBytes: 0)].bytes += p.bytes
                byName[p.name]!.residentBytes += p.residentBytes
            }
        }
        return byName.values.sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.name < $1.name }
    }

    /// Measures the files of `snapshot`, a local collection's, in `directory`.
    package init(snapshot: CollectionSnapshot, directory: String) throws(StrataError) {
        files = []
        for s in snapshot.version.segments {
            files.append(try Self.segmentFile(s.segment, name: s.entry.name))
            if let d = s.entry.deleteFile { files.append(try Self.wholeFile("\(directory)/\(d)", name: d, part: "bitmap")) }
        }
        let wal = CollectionFiles.walName(snapshot.version.manifest.walSequence)
        if FileSystem.exists("\(directory)/\(wal)") { files.append(try Self.wholeFile("\(directory)/\(wal)", name: wal, part: "wal")) }
    }

    private static func wholeFile(_ path: String, name: String, part: String) throws(StrataError) -> File {
        let r = try PageResidency(path: path)
        let size = try FileSystem.fileSize(path)
        return File(name: name, bytes: size, parts: [Part(name: part, bytes: size, residentBytes: r.residentBytes(0..<size))])
    }

    private static func segmentFile(_ seg: Segment, name: String) throws(StrataError) -> File {
        let r = try PageResidency(path: seg.path)
        var parts: [Part] = []
        func add(_ name: String, _ ranges: [Range<UInt64>]) {
            let bytes = ranges.reduce(0) { $0 + UInt64($1.count) }
            let resident = ranges.reduce(0) { $0 + r.residentBytes($1) }
            if let i = parts.firstIndex(where: { $0.name == name }) {
                parts[i].bytes += bytes
                parts[i].residentBytes += resident
            } else {
                parts.append(Part(name: name, bytes: bytes, residentBytes: resident))
            }
        }
        add("layout", [seg.headerRange, seg.directoryRange.lowerBound..<seg.footerRange.upperBound])
        var covered: [Range<UInt64>] = [seg.headerRange, seg.directoryRange.lowerBound..<seg.footerRange.upperBound]
        for s in seg.sections {
            let range = s.offset..<(s.offset + s.length)
            covered.append(range)
            switch s.kind {
            case .column?:
                let i = Int(s.ordinal)
                add("column:" + (i < seg.schema.columns.count ? seg.schema.columns[i].name : "#\(i)"), [range])
            case let kind?: add(kind.description, [range])
            case nil: add("unknown_\(s.kindNumber)", [range])
            }
        }
        // What no part covers is the alignment padding between sections.
        covered.sort { $0.lowerBound < $1.lowerBound }
        var gaps: [Range<UInt64>] = []
        var at: UInt64 = 0
        for c in covered {
            if c.lowerBound > at { gaps.append(at..<c.lowerBound) }
            at = max(at, c.upperBound)
        }
        if seg.fileBytes > at { gaps.append(at..<seg.fileBytes) }
        add("padding", gaps)
        return File(name: name, bytes: seg.fileBytes, parts: parts)
    }
}

extension StrataCollection {
    /// Bytes and page-cache residency of every part of the current snapshot's files (see
    /// ``CollectionPartStats``). Reads no data: residency comes from `mincore` on fresh mappings.
    public func partStats() throws(StrataError) -> CollectionPartStats {
        try CollectionPartStats(snapshot: try snapshot(), directory: path)
    }
}
