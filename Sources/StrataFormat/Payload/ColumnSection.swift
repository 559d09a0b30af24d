// One payload column section: a 128-byte column header, the stored blocks back to back, then the
// block directory (64 B per block). All offsets inside are relative to the section start.
//
// Column header (128 B):
//   0 8 magic "STRACOLM"   8 4 column ordinal   12 1 type   13 1 flags (bit 0 nullable)   14 2 reserved
//   16 8 row count   24 8 block count   32 8 directory offset   40 8 null count   48 8 distinct estimate
//   56 20 column zone map   76 52 reserved (0)
// Block directory entry (64 B):
//   0 8 first row   8 4 row count   12 4 null count   16 8 offset   24 4 stored length
//   28 4 decoded length   32 8 XXH3-64 of the stored bytes   40 1 encoding (0 raw, 1 LZ4)
//   41 3 reserved (0)   44 20 zone map

/// One entry of a column's block directory.
public struct ColumnBlockInfo: Sendable, Equatable {
    /// First row covered.
    public var firstRow: UInt64
    /// Rows covered.
    public var rowCount: UInt32
    /// Null rows among them.
    public var nullCount: UInt32
    /// Offset of the stored bytes, relative to the section start.
    public var offset: UInt64
    /// Stored (possibly compressed) length.
    public var storedLength: UInt32
    /// Length once decompressed.
    public var decodedLength: UInt32
    /// XXH3-64 of the stored bytes.
    public var checksum: UInt64
    /// 0: raw, 1: LZ4 block.
    public var encoding: UInt8
    /// Min/max of the block's values.
    public var zoneMap: ZoneMap

    static let encodingRaw: UInt8 = 0
    static let encodingLZ4: UInt8 = 1

    func encode(into w: inout ByteWriter) {
        w.u64(firstRow); w.u32(rowCount); w.u32(nullCount); w.u64(offset); w.u32(storedLength)
        w.u32(decodedLength); w.u64(checksum); w.u8(encoding); w.zeros(3)
        zoneMap.encode(into: &w)
    }

    static func decode(_ r: inout ByteReader) throws(StrataError) -> ColumnBlockInfo {
        let first = try r.u64(), rows = try r.u32(), nulls = try r.u32(), offset = try r.u64(), stored = try r.u32()
        let decoded = try r.u32(), sum = try r.u64(), encoding = try r.u8()
        try r.reservedZeros(3)
        let zone = try ZoneMap.decode(&r)
        return ColumnBlockInfo(firstRow: first, rowCount: rows, nullCount: nulls, offset: offset, storedLength: stored,
                               decodedLength: decoded, checksum: sum, encoding: encoding, zoneMap: zone)
    }
}

/// Statistics of one column, from its header.
public struct ColumnStatistics: Sendable, Equatable {
    /// The column.
    public var column: ColumnSpec
    /// Null rows.
    public var nullCount: UInt64
    /// HyperLogLog estimate of distinct non-null values (string lists: distinct items).
    public var distinctEstimate: UInt64
    /// Column-wide min/max.
    public var zoneMap: ZoneMap
    /// Number of blocks.
    public var blockCount: Int
    /// Bytes on disk of the stored blocks.
    public var storedBytes: UInt64
    /// Bytes of the blocks once decompressed.
    public var decodedBytes: UInt64
}

/// Read side of a column section over the mapped file.
///
/// Unchecked `Sendable`: pointers into the segment's read-only mapping, never written after open; the
/// segment keeps the mapping alive.
package struct ColumnSection: @unchecked Sendable {
    static let headerLength = 128
    static let magic: [UInt8] = Array("STRACOLM".utf8)

    let spec: ColumnSpec
    package let ordinal: Int
    /// The section's bytes in the mapping.
    let bytes: UnsafeRawBufferPointer
    /// Absolute offset of the section, for errors.
    package let fileOffset: UInt64
    package let blocks: [ColumnBlockInfo]
    package let nullCount: UInt64
    let distinctEstimate: UInt64
    let zoneMap: ZoneMap

    package var sectionName: String { "column '\(spec.name)'" }

    /// Parses the header and block directory and checks that blocks tile `0..<rowCount` inside the section.
    package init(spec: ColumnSpec, ordinal: Int, bytes: UnsafeRawBufferPointer, fileOffset: UInt64, rowCount: UInt64) throws(StrataError) {
        self.spec = spec
        self.ordinal = ordinal
        self.bytes = bytes
        self.fileOffset = fileOffset
        let name = "column '\(spec.name)'"
        var r = ByteReader(bytes, baseOffset: fileOffset, section: name)
        guard bytes.count >= Self.headerLength else { throw r.error("column section shorter than its header", code: .truncated) }
        guard try r.slice(8).elementsEqual(Self.magic) else { throw r.error("bad column header magic") }
        let storedOrdinal = try r.u32(), type = try r.u8(), flags = try r.u8()
        try r.reservedZeros(2)
        guard storedOrdinal == UInt32(ordinal), type == spec.type.rawValue, flags == (spec.nullable ? 1 : 0) else {
            throw StrataError(.corrupt, "column header does not match the schema", section: name, offset: fileOffset + 8)
        }
        let rows = try r.u64(), blockCount = try r.u64(), directoryOffset = try r.u64()
        nullCount = try r.u64()
        distinctEstimate = try r.u64()
        zoneMap = try ZoneMap.decode(&r)
        try r.reservedZeros(52)
        guard rows == rowCount else { throw StrataError(.corrupt, "column has \(rows) rows, segment has \(rowCount)", section: name, offset: fileOffset + 16) }
        guard let dirLength = Checked.mul(blockCount, 64),
              Checked.fits(offset: directoryOffset, length: dirLength, within: UInt64(bytes.count)),
              directoryOffset >= UInt64(Self.headerLength) else {
            throw StrataError(.corrupt, "block directory out of range", section: name, offset: fileOffset + 32)
        }
        var d = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[Int(directoryOffset)..<Int(directoryOffset + dirLength)]),
                           baseOffset: fileOffset + directoryOffset, section: name)
        var list: [ColumnBlockInfo] = []
        list.reserveCapacity(Int(blockCount))
        var nextRow: UInt64 = 0
        var nulls: UInt64 = 0
        for i in 0..<Int(blockCount) {
            let at = d.absoluteOffset
            let b = try ColumnBlockInfo.decode(&d)
            guard b.encoding <= ColumnBlockInfo.encodingLZ4 else {
                throw StrataError(.unsupportedFeature, "block \(i) uses unknown encoding \(b.encoding)", section: name, offset: at + 40)
            }
            guard b.firstRow == nextRow, b.rowCount > 0, b.nullCount <= b.rowCount,
                  Checked.fits(offset: b.offset, length: UInt64(b.storedLength), within: directoryOffset),
                  b.offset >= UInt64(Self.headerLength),
                  b.encoding <= ColumnBlockInfo.encodingLZ4,
                  b.encoding == ColumnBlockInfo.encodingLZ4 || b.storedLength == b.decodedLength,
                  // LZ4 expands at most ~255x: a larger claim is corrupt, and must not make a reader allocate it.
                  UInt64(b.decodedLength) <= UInt64(b.storedLength) * 255 + 64 else {
                throw StrataError(.corrupt, "bad block handle \(i)", section: name, offset: at)
            }
            nextRow += UInt64(b.rowCount)
            nulls += UInt64(b.nullCount)
            list.append(b)
        }
        guard nextRow == rowCount else {
            throw StrataError(.corrupt, "blocks cover \(nextRow) rows, segment has \(rowCount)", section: name, offset: fileOffset + directoryOffset)
        }
        guard nulls == nullCount, spec.nullable || nulls == 0 else {
            throw StrataError(.corrupt, "null counts disagree", section: name, offset: fileOffset + 40)
        }
        blocks = list
    }

    /// Index of the block holding `row`.
    package func blockIndex(ofRow row: Int) -> Int {
        var lo = 0, hi = blocks.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if blocks[mid].firstRow <= UInt64(row) { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Reads, checks (checksum) and decompresses block `i`.
    package func decodeBlock(_ i: Int, checkChecksum: Bool = true) throws(StrataError) -> DecodedColumnBlock {
        let b = blocks[i]
        let start = Int(b.offset)
        let stored = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + Int(b.storedLength))])
        let at = fileOffset + b.offset
        if checkChecksum, Checksum.xxh3(stored) != b.checksum {
            throw StrataError(.checksumMismatch, "block \(i) checksum mismatch", section: sectionName, offset: at)
        }
        let data: [UInt8]
        if b.encoding == ColumnBlockInfo.encodingLZ4 {
            guard let d = LZ4.decompress(stored, decodedLength: Int(b.decodedLength)) else {
                throw StrataError(.corrupt, "block \(i) does not decompress", section: sectionName, offset: at)
            }
            data = d
        } else {
            data = Array(stored)
        }
        let name = sectionName
        return try DecodedColumnBlock(type: spec.type, nullable: spec.nullable, rowCount: Int(b.rowCount), data: data) { message in
            StrataError(.corrupt, "block \(i): \(message)", section: name, offset: at)
        }
    }

    package var statistics: ColumnStatistics {
        ColumnStatistics(column: spec, nullCount: nullCount, distinctEstimate: distinctEstimate, zoneMap: zoneMap,
                         blockCount: blocks.count,
                         storedBytes: blocks.reduce(0) { $0 + UInt64($1.storedLength) },
                         decodedBytes: blocks.reduce(0) { $0 + UInt64($1.decodedLength) })
    }
}
