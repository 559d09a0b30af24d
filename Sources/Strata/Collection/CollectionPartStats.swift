// `strata stats --parts`, in the spirit of sqlite3_analyzer: the bytes of each part of a collection
// (each section kind of each segment, each payload column by name, the delete bitmaps and the WAL),
// per file and in total, and how many of those bytes are in the page cache now.
import StrataFormat
import StrataIndex
#if canImport(Glibc)
import Glibc
#endif

/// Bytes and page-cache residency of a collection's parts (``StrataCollection/partStats()``,
/// ``measure(directory:)``).
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
    /// The files measured: the manifest's segments (oldest first) with their bitmaps, and the WAL.
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

    /// Measures the files the current manifest of the collection in `directory` names. Opens no
    /// segment (opening one reads its index pages into the cache): each file's residency is taken
    /// first, then its section directory is read from the footer (`pread`, a page or two at the
    /// end). Throws `.io` for a file it cannot read, and what a damaged manifest or footer throws.
    public static func measure(directory: String) throws(StrataError) -> CollectionPartStats {
        var attempt = 0
        while true {
            do {
                return try CollectionPartStats(manifest: try Manifest.read(directory: directory), directory: directory)
            } catch {
                // A compaction may have removed a file between the manifest read and the measure.
                attempt += 1
                if error.code == .io, error.errno == ENOENT, attempt < 5 { continue }
                throw error
            }
        }
    }

    private init(manifest: Manifest, directory: String) throws(StrataError) {
        files = []
        for entry in manifest.segments {
            files.append(try Self.segmentFile("\(directory)/\(entry.name)", name: entry.name, columns: manifest.schema.columns.map(\.name)))
            if let d = entry.deleteFile { files.append(try Self.wholeFile("\(directory)/\(d)", name: d, part: "bitmap")) }
        }
        let wal = CollectionFiles.walName(manifest.walSequence)
        if FileSystem.exists("\(directory)/\(wal)") { files.append(try Self.wholeFile("\(directory)/\(wal)", name: wal, part: "wal")) }
    }

    private static func wholeFile(_ path: String, name: String, part: String) throws(StrataError) -> File {
        let r = try PageResidency(path: path)
        return File(name: name, bytes: r.length, parts: [Part(name: part, bytes: r.length, residentBytes: r.residentBytes(0..<r.length))])
    }

    /// The parts of one segment file. Column sections are named by the collection's columns (a
    /// segment's columns are a prefix of them: columns are only ever appended).
    private static func segmentFile(_ path: String, name: String, columns: [String]) throws(StrataError) -> File {
        let r = try PageResidency(path: path)
        let layout: SegmentDirectory
        do { layout = try SegmentDirectory(path: path, size: r.length) } catch { throw error.inFile(path) }
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
        let header = 0..<min(SegmentFormat.pageSize, r.length)
        let tail = layout.directoryOffset..<r.length
        add("layout", [header, tail])
        var covered = [header, tail]
        for s in layout.sections {
            let range = s.offset..<(s.offset + s.length)
            covered.append(range)
            switch s.kind {
            case .column?:
                let i = Int(s.ordinal)
                add("column:" + (i < columns.count ? columns[i] : "#\(i)"), [range])
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
        if r.length > at { gaps.append(at..<r.length) }
        add("padding", gaps)
        return File(name: name, bytes: r.length, parts: parts)
    }
}

/// A segment's section directory read from its footer without mapping the file, with the checks
/// Segment.open makes (SectionDirectory.swift).
struct SegmentDirectory {
    let directoryOffset: UInt64
    let sections: [SectionInfo]

    init(path: String, size: UInt64) throws(StrataError) {
        let footerLength = UInt64(SegmentFormat.footerLength)
        guard size >= SegmentFormat.pageSize + footerLength else {
            throw StrataError(.truncated, "file is \(size) bytes; a segment has at least \(SegmentFormat.pageSize + footerLength)", section: "header", offset: size)
        }
        let file = try SystemFile.openForReading(path)
        defer { file.close() }
        let footerOffset = size - footerLength
        var footerBytes = [UInt8](repeating: 0, count: SegmentFormat.footerLength)
        try footerBytes.withMutableBytes { (b) throws(StrataError) in try file.read(into: b, fromAbsoluteOffset: footerOffset) }
        let footer = try footerBytes.withBytes { (b) throws(StrataError) in try SegmentFooter.decode(b, at: footerOffset) }
        try SectionDirectory.checkPlacement(footer, size: size, footerOffset: footerOffset)
        var dir = [UInt8](repeating: 0, count: Int(footer.directoryLength))
        try dir.withMutableBytes { (b) throws(StrataError) in try file.read(into: b, fromAbsoluteOffset: footer.directoryOffset) }
        directoryOffset = footer.directoryOffset
        sections = try dir.withBytes { (b) throws(StrataError) in try SectionDirectory.decode(b, footer: footer) }
    }
}

extension StrataCollection {
    /// Bytes and page-cache residency of every part of the files the current manifest names (see
    /// ``CollectionPartStats/measure(directory:)``).
    public func partStats() throws(StrataError) -> CollectionPartStats {
        try CollectionPartStats.measure(directory: path)
    }
}
