// The segment writer's per-column spool: values are gathered into blocks (LZ4, zone map, distinct
// estimate, checksum) and streamed to a temporary spool file, then copied into the column section.
#if canImport(Glibc)
import Glibc
#endif

/// When the spool closes a block and whether it compresses it (from the segment writer's options).
package struct ColumnBlockLimits: Sendable {
    /// Rows after which a block is closed.
    package var rowsPerBlock: Int
    /// Decoded bytes after which a block is closed early.
    package var maxBlockBytes: Int
    /// LZ4-compress blocks (a block that does not shrink is stored raw anyway).
    package var compress: Bool

    package init(rowsPerBlock: Int, maxBlockBytes: Int, compress: Bool) {
        self.rowsPerBlock = rowsPerBlock
        self.maxBlockBytes = maxBlockBytes
        self.compress = compress
    }
}

/// Streams one column's finished blocks into a spool file and keeps its block directory.
package final class ColumnSpool {
    let spec: ColumnSpec
    let ordinal: Int
    let spoolPath: String
    let limits: ColumnBlockLimits
    private var spool: SystemFile?
    private var builder: ColumnBlockBuilder
    private var blocks: [ColumnBlockInfo] = []
    private var spooledBytes: UInt64 = 0
    private var nextRow: UInt64 = 0
    private var nullCount: UInt64 = 0
    private var zone = ZoneMap.none
    private var distinct = DistinctEstimator()

    package init(spec: ColumnSpec, ordinal: Int, spoolPath: String, limits: ColumnBlockLimits) throws(StrataError) {
        self.spec = spec
        self.ordinal = ordinal
        self.spoolPath = spoolPath
        self.limits = limits
        builder = ColumnBlockBuilder(type: spec.type, nullable: spec.nullable)
        spool = try SystemFile.create(spoolPath)
    }

    package func append(_ value: PayloadValue) throws(StrataError) {
        builder.append(value, distinct: &distinct)
        if builder.rowCount >= limits.rowsPerBlock || builder.approximateBytes >= limits.maxBlockBytes {
            try closeBlock()
        }
    }

    private func closeBlock() throws(StrataError) {
        guard builder.rowCount > 0, let spool else { return }
        let decoded = builder.encoded()
        guard decoded.count <= Int(UInt32.max) else {
            throw StrataError(.invalidArgument, "a payload block of column '\(spec.name)' exceeds 4 GiB")
        }
        var stored = decoded
        var encoding = ColumnBlockInfo.encodingRaw
        if limits.compress, let c = LZ4.compress(decoded) {
            stored = c
            encoding = ColumnBlockInfo.encodingLZ4
        }
        let blockZone = builder.zone.build()
        let checksum = stored.withUnsafeBytes { Checksum.xxh3($0) }
        try stored.withBytes { (raw) throws(StrataError) in try spool.write(raw, atAbsoluteOffset: spooledBytes) }
        blocks.append(ColumnBlockInfo(firstRow: nextRow, rowCount: UInt32(builder.rowCount), nullCount: UInt32(builder.nullCount),
                                      offset: UInt64(ColumnSection.headerLength) + spooledBytes,
                                      storedLength: UInt32(stored.count), decodedLength: UInt32(decoded.count),
                                      checksum: checksum, encoding: encoding, zoneMap: blockZone))
        spooledBytes += UInt64(stored.count)
        nextRow += UInt64(builder.rowCount)
        nullCount += UInt64(builder.nullCount)
        zone = zone.merged(with: blockZone)
        builder.reset()
    }

    /// Writes header + spooled blocks + directory at `offset` of `file`; returns the directory entry.
    package func writeSection(into file: any WritableFile, at offset: UInt64, rowCount: UInt64) throws(StrataError) -> SectionInfo {
        try closeBlock()
        guard let spool else { throw StrataError(.io, "column spool is closed", path: spoolPath) }
        let checksum = Checksum.Streaming()
        let directoryOffset = UInt64(ColumnSection.headerLength) + spooledBytes
        var header = ByteWriter(capacity: ColumnSection.headerLength)
        header.raw(ColumnSection.magic); header.u32(UInt32(ordinal)); header.u8(spec.type.rawValue)
        header.u8(spec.nullable ? 1 : 0); header.zeros(2)
        header.u64(rowCount); header.u64(UInt64(blocks.count)); header.u64(directoryOffset)
        header.u64(nullCount); header.u64(nullCount == rowCount ? 0 : distinct.estimate)
        zone.encode(into: &header); header.zeros(52)
        try header.bytes.withBytes { (raw) throws(StrataError) in
            checksum.update(raw)
            try file.write(raw, atAbsoluteOffset: offset)
        }
        // Copy the spool in 1 MiB chunks.
        try spool.copyPrefix(spooledBytes, into: file, at: offset + UInt64(ColumnSection.headerLength), hashing: checksum)
        var dir = ByteWriter(capacity: blocks.count * 64)
        for b in blocks { b.encode(into: &dir) }
        try dir.bytes.withBytes { (raw) throws(StrataError) in
            checksum.update(raw)
            try file.write(raw, atAbsoluteOffset: offset + directoryOffset)
        }
        let length = directoryOffset + UInt64(dir.count)
        return SectionInfo(kindNumber: SectionKind.column.rawValue, required: true, compression: 0,
                           checksumType: SectionInfo.checksumXXH3, offset: offset, length: length,
                           decodedLength: UInt64(ColumnSection.headerLength) + blocks.reduce(0) { $0 + UInt64($1.decodedLength) } + UInt64(dir.count),
                           checksum: checksum.digest, ordinal: UInt32(ordinal))
    }

    package func discard() {
        spool?.close()
        spool = nil
        FileSystem.removeIfPresent(spoolPath)
    }
}
