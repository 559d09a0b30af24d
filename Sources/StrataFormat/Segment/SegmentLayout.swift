// The fixed-size structures at both ends of a segment file, and the section directory.
// docs/SEGMENT-FORMAT.md is the byte-level specification; this file writes and parses exactly that.
//
//   offset 0      +----------------------------+
//                 | header (64 B) + zero pad   |  page 0 (4096 B)
//   4096          +----------------------------+
//                 | section (page-aligned)     |  vectors, ids, id index, schema, columns, ...
//                 | ...                        |
//                 +----------------------------+
//                 | section directory          |  page-aligned, 64 B per entry
//                 | footer (64 B)              |  immediately after the directory; ends the file
//   file length   +----------------------------+
//
// Header (64 B, little-endian):
//   0  8  magic "STRATSEG"         16 4 page size (4096)       37 1 metric (1 l2, 2 ip, 3 cosine)
//   8  2  major version             20 4 flags (0)              38 2 reserved (0)
//   10 2  minor version             24 8 row count              40 4 vector stride in bytes
//   12 2  min reader major          32 4 dimension              44 12 reserved (0)
//   14 2  header length (64)        36 1 element type (1 f32, 2 f16)  56 8 XXH3-64 of bytes 0..<56
// Footer (64 B):
//   0 8 directory offset   8 8 directory length   16 4 section count   20 4 reserved (0)
//   24 8 XXH3-64 of the directory   32 8 file length   40 8 reserved (0)
//   48 8 XXH3-64 of footer bytes 0..<48   56 8 magic "STRATEND"
// Directory entry (64 B):
//   0 4 kind   4 2 flags (bit 0: required)   6 1 compression (0 none)   7 1 checksum type (1 XXH3-64)
//   8 8 offset   16 8 length   24 8 decoded length   32 8 checksum   40 4 ordinal   44 20 reserved (0)

/// Format version constants. A reader opens files whose `minReaderMajor` is at most
/// ``readerMajor``; a newer file gets `.unsupportedVersion`.
public enum SegmentFormat {
    /// Major version this build writes.
    /// 2.0: an indexed segment has no vectors section; its graph records (flagged required) are the
    /// only copy of the vectors, and its header names 2 as the oldest reader major. A segment
    /// without an index keeps the 1.2 layout and names reader major 1, so 1.x readers still open it.
    /// 3.0: the graph section may use the block-aware layout (graph layout version 2: records placed
    /// by a placement table, each naming its node); a file that does names 3 as its oldest reader
    /// major, one with a row-order graph still names 2.
    public static let writerMajor: UInt16 = 3
    /// Minor version this build writes (additions that older readers of the same major can skip).
    /// 1.0: vectors, ids, id index, schema, payload columns. 1.1: optional ANN index sections
    /// (pq_codebook, pq_codes, graph), not flagged required, so 1.0 readers skip them. 1.2: optional
    /// search sections (payload_index, sparse_index, text_index), also not flagged required.
    public static let writerMinor: UInt16 = 0
    /// Highest major version this build can read.
    public static let readerMajor: UInt16 = 3
    /// Oldest major version this build can read.
    public static let oldestReadableMajor: UInt16 = 1
    /// Section alignment and header page size.
    public static let pageSize: UInt64 = 4096
    /// Byte length of the header structure.
    package static let headerLength = 64
    /// Byte length of the footer structure.
    package static let footerLength = 64
    /// Byte length of a directory entry.
    package static let directoryEntryLength = 64
    /// Alignment of each vector row within the vectors section.
    static let vectorAlignment = 32
    package static let headerMagic: [UInt8] = Array("STRATSEG".utf8)
    static let footerMagic: [UInt8] = Array("STRATEND".utf8)

    /// Row stride of the vectors section for a dimension and element type.
    package static func vectorStride(dimension: Int, elementType: VectorElementType) -> Int {
        let raw = dimension * elementType.byteWidth
        return (raw + vectorAlignment - 1) / vectorAlignment * vectorAlignment
    }
}

/// Kinds of section. Readers skip kinds they do not know unless the entry is flagged required.
public enum SectionKind: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// Payload column definitions.
    case schema = 1
    /// External id per row (u64, row order).
    case ids = 2
    /// (id, row) pairs sorted by id, for binary search in place.
    case idIndex = 3
    /// Raw vectors, row-major, fixed stride.
    case vectors = 4
    /// One payload column: LZ4 blocks plus a block directory with zone maps.
    case column = 5
    /// Product-quantization codebook (optional; format 1.1).
    case pqCodebook = 16
    /// PQ codes, one M-byte code per row (optional; format 1.1).
    case pqCodes = 17
    /// Vamana graph with full vectors in 4 KB sectors (optional, format 1.1; in a 2.0 indexed
    /// segment required: its records are the only copy of the vectors).
    case graph = 18
    /// Payload indexes of the indexed columns (optional; format 1.2).
    case payloadIndex = 19
    /// Sparse vectors as posting lists with block maxima (optional; format 1.2).
    case sparseIndex = 20
    /// BM25 term postings and corpus statistics of text columns (optional; format 1.2).
    case textIndex = 21

    /// Lower-case name used by dump and errors.
    public var description: String {
        switch self {
        case .schema: return "schema"
        case .ids: return "ids"
        case .idIndex: return "id_index"
        case .vectors: return "vectors"
        case .column: return "column"
        case .pqCodebook: return "pq_codebook"
        case .pqCodes: return "pq_codes"
        case .graph: return "graph"
        case .payloadIndex: return "payload_index"
        case .sparseIndex: return "sparse_index"
        case .textIndex: return "text_index"
        }
    }
}

/// The decoded fixed header.
package struct SegmentHeader: Equatable {
    package var major: UInt16 = SegmentFormat.writerMajor
    package var minor: UInt16 = SegmentFormat.writerMinor
    var minReaderMajor: UInt16 = SegmentFormat.writerMajor
    var pageSize: UInt32 = UInt32(SegmentFormat.pageSize)
    var flags: UInt32 = 0
    package var rowCount: UInt64
    package var dimension: UInt32
    package var elementType: UInt8
    package var metric: UInt8
    package var vectorStride: UInt32

    package func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.raw(SegmentFormat.headerMagic)
        w.u16(major); w.u16(minor); w.u16(minReaderMajor); w.u16(UInt16(SegmentFormat.headerLength))
        w.u32(pageSize); w.u32(flags)
        w.u64(rowCount)
        w.u32(dimension); w.u8(elementType); w.u8(metric); w.u16(0)
        w.u32(vectorStride); w.zeros(12)
        w.checksumTrailer()
        return w.bytes
    }

    /// Parses and checks magic, checksum and version, in that order.
    package static func decode(_ bytes: UnsafeRawBufferPointer) throws(StrataError) -> SegmentHeader {
        var r = ByteReader(bytes, baseOffset: 0, section: "header")
        let magic = try r.slice(8)
        guard magic.elementsEqual(SegmentFormat.headerMagic) else {
            throw StrataError(.badMagic, "not a Strata segment (header magic is not STRATSEG)", section: "header", offset: 0)
        }
        let major = try r.u16(), minor = try r.u16(), minReader = try r.u16(), headerLength = try r.u16()
        guard Checksum.trailerMatches(bytes, at: 56) else {
            throw StrataError(.checksumMismatch, "header checksum mismatch", section: "header", offset: 56)
        }
        guard minReader <= SegmentFormat.readerMajor, major >= SegmentFormat.oldestReadableMajor else {
            throw StrataError(.unsupportedVersion,
                              "segment format \(major).\(minor) needs a reader of major version \(minReader); this build reads \(SegmentFormat.oldestReadableMajor)...\(SegmentFormat.readerMajor): upgrade Strata",
                              section: "header", offset: 8)
        }
        guard headerLength == UInt16(SegmentFormat.headerLength) else {
            throw StrataError(.corrupt, "header length \(headerLength), expected 64", section: "header", offset: 14)
        }
        let pageSize = try r.u32(), flags = try r.u32()
        guard pageSize == UInt32(SegmentFormat.pageSize) else {
            throw StrataError(.unsupportedFeature, "page size \(pageSize) (only 4096 is supported)", section: "header", offset: 16)
        }
        guard flags == 0 else {
            throw StrataError(.unsupportedFeature, "unknown header flags 0x\(String(flags, radix: 16))", section: "header", offset: 20)
        }
        let rows = try r.u64(), dim = try r.u32(), element = try r.u8(), metric = try r.u8()
        try r.reservedZeros(2)
        let stride = try r.u32()
        try r.reservedZeros(12)
        return SegmentHeader(major: major, minor: minor, minReaderMajor: minReader, pageSize: pageSize, flags: flags,
                             rowCount: rows, dimension: dim, elementType: element, metric: metric, vectorStride: stride)
    }

    package init(major: UInt16 = SegmentFormat.writerMajor, minor: UInt16 = SegmentFormat.writerMinor, minReaderMajor: UInt16 = SegmentFormat.writerMajor, pageSize: UInt32 = UInt32(SegmentFormat.pageSize), flags: UInt32 = 0, rowCount: UInt64, dimension: UInt32, elementType: UInt8, metric: UInt8, vectorStride: UInt32) {
        self.major = major
        self.minor = minor
        self.minReaderMajor = minReaderMajor
        self.pageSize = pageSize
        self.flags = flags
        self.rowCount = rowCount
        self.dimension = dimension
        self.elementType = elementType
        self.metric = metric
        self.vectorStride = vectorStride
    }
}

/// The decoded fixed footer.
package struct SegmentFooter: Equatable {
    package var directoryOffset: UInt64
    package var directoryLength: UInt64
    package var sectionCount: UInt32
    package var directoryChecksum: UInt64
    package var fileLength: UInt64

    package func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.u64(directoryOffset); w.u64(directoryLength); w.u32(sectionCount); w.u32(0)
        w.u64(directoryChecksum); w.u64(fileLength); w.u64(0)
        w.checksumTrailer()
        w.raw(SegmentFormat.footerMagic)
        return w.bytes
    }

    package static func decode(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StrataError) -> SegmentFooter {
        var r = ByteReader(bytes, baseOffset: offset, section: "footer")
        guard UnsafeRawBufferPointer(rebasing: bytes[56..<64]).elementsEqual(SegmentFormat.footerMagic) else {
            throw StrataError(.truncated, "footer magic STRATEND missing: file truncated or not closed", section: "footer", offset: offset + 56)
        }
        guard Checksum.trailerMatches(bytes, at: 48) else {
            throw StrataError(.checksumMismatch, "footer checksum mismatch", section: "footer", offset: offset + 48)
        }
        let dirOffset = try r.u64(), dirLength = try r.u64(), count = try r.u32()
        try r.reservedZeros(4)
        let dirSum = try r.u64(), fileLength = try r.u64()
        try r.reservedZeros(8)
        return SegmentFooter(directoryOffset: dirOffset, directoryLength: dirLength, sectionCount: count,
                             directoryChecksum: dirSum, fileLength: fileLength)
    }

    package init(directoryOffset: UInt64, directoryLength: UInt64, sectionCount: UInt32, directoryChecksum: UInt64, fileLength: UInt64) {
        self.directoryOffset = directoryOffset
        self.directoryLength = directoryLength
        self.sectionCount = sectionCount
        self.directoryChecksum = directoryChecksum
        self.fileLength = fileLength
    }
}

/// One entry of the section directory, as `strata dump` shows it.
public struct SectionInfo: Sendable, Equatable {
    /// Raw kind number (see ``SectionKind``); unknown kinds are kept so dump can show them.
    public var kindNumber: UInt32
    /// Whether a reader that does not know this kind must refuse the file.
    public var required: Bool
    /// Compression of the section as a whole (0: none; payload blocks carry their own).
    public var compression: UInt8
    /// Checksum algorithm (1: XXH3-64).
    public var checksumType: UInt8
    /// Absolute byte offset in the file (page-aligned).
    public var offset: UInt64
    /// Bytes on disk.
    public var length: UInt64
    /// Bytes once decoded (sum of decompressed payload blocks for columns).
    public var decodedLength: UInt64
    /// XXH3-64 of the section's bytes on disk.
    public var checksum: UInt64
    /// Column number for column sections; 0xFFFF_FFFF otherwise.
    public var ordinal: UInt32

    /// The kind when known.
    public var kind: SectionKind? { SectionKind(rawValue: kindNumber) }

    /// Checksum type XXH3-64.
    package static let checksumXXH3: UInt8 = 1
    /// Ordinal of sections that are not per-column.
    public static let noOrdinal: UInt32 = 0xFFFF_FFFF

    package func encode(into w: inout ByteWriter) {
        w.u32(kindNumber); w.u16(required ? 1 : 0); w.u8(compression); w.u8(checksumType)
        w.u64(offset); w.u64(length); w.u64(decodedLength); w.u64(checksum); w.u32(ordinal); w.zeros(20)
    }

    package static func decode(_ r: inout ByteReader) throws(StrataError) -> SectionInfo {
        let kind = try r.u32(), flags = try r.u16(), compression = try r.u8(), checksumType = try r.u8()
        let offset = try r.u64(), length = try r.u64(), decoded = try r.u64(), checksum = try r.u64(), ordinal = try r.u32()
        guard flags & ~1 == 0 else { throw r.error("unknown section flags 0x\(String(flags, radix: 16))", code: .unsupportedFeature) }
        try r.reservedZeros(20)
        return SectionInfo(kindNumber: kind, required: flags & 1 != 0, compression: compression, checksumType: checksumType,
                           offset: offset, length: length, decodedLength: decoded, checksum: checksum, ordinal: ordinal)
    }

    package init(kindNumber: UInt32, required: Bool, compression: UInt8, checksumType: UInt8, offset: UInt64, length: UInt64, decodedLength: UInt64, checksum: UInt64, ordinal: UInt32) {
        self.kindNumber = kindNumber
        self.required = required
        self.compression = compression
        self.checksumType = checksumType
        self.offset = offset
        self.length = length
        self.decodedLength = decodedLength
        self.checksum = checksum
        self.ordinal = ordinal
    }
}
