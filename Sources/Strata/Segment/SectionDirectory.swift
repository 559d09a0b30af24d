// The section directory of a segment file, checked once for every reader of it: Segment.open
// (over the mapped file) and the part sizes of `strata stats --parts` (over a few `pread` bytes at
// the end of the file). Both go through these two steps, so a file one accepts the other accepts.
import StrataFormat

/// Checks of a segment's footer and section directory (docs/FORMAT.md).
enum SectionDirectory {
    /// Checks where `footer` (at `footerOffset` of a `size`-byte file) puts the directory: the file
    /// length it records, and a page-aligned directory of 64-byte entries that ends at the footer.
    static func checkPlacement(_ footer: SegmentFooter, size: UInt64, footerOffset: UInt64) throws(StrataError) {
        guard footer.fileLength == size else {
            throw StrataError(.truncated, "file is \(size) bytes, footer says \(footer.fileLength)", section: "footer", offset: footerOffset + 32)
        }
        guard footer.directoryLength == UInt64(footer.sectionCount) * UInt64(SegmentFormat.directoryEntryLength),
              footer.directoryOffset >= SegmentFormat.pageSize,
              footer.directoryOffset % SegmentFormat.pageSize == 0,
              Checked.fits(offset: footer.directoryOffset, length: footer.directoryLength, within: footerOffset),
              footer.directoryOffset + footer.directoryLength == footerOffset else {
            throw StrataError(.corrupt, "section directory out of range", section: "footer", offset: footerOffset)
        }
    }

    /// Decodes the directory's `bytes` (placed by ``checkPlacement(_:size:footerOffset:)``):
    /// checksum, then each entry (page-aligned, before the directory, a known kind when required, a
    /// known checksum type and compression, an ordinal that fits the kind), then no two overlap.
    static func decode(_ bytes: UnsafeRawBufferPointer, footer: SegmentFooter) throws(StrataError) -> [SectionInfo] {
        guard Checksum.xxh3(bytes) == footer.directoryChecksum else {
            throw StrataError(.checksumMismatch, "section directory checksum mismatch", section: "directory", offset: footer.directoryOffset)
        }
        var r = ByteReader(bytes, baseOffset: footer.directoryOffset, section: "directory")
        var list: [SectionInfo] = []
        for _ in 0..<footer.sectionCount {
            let at = r.absoluteOffset
            let s = try SectionInfo.decode(&r)
            guard s.offset >= SegmentFormat.pageSize, s.offset % SegmentFormat.pageSize == 0,
                  Checked.fits(offset: s.offset, length: s.length, within: footer.directoryOffset) else {
                throw StrataError(.corrupt, "section \(s.kind?.description ?? "kind \(s.kindNumber)") out of range or unaligned", section: "directory", offset: at)
            }
            if s.kind == nil, s.required {
                throw StrataError(.unsupportedFeature, "required section kind \(s.kindNumber) is unknown to this reader: upgrade Strata", section: "directory", offset: at)
            }
            guard s.checksumType == SectionInfo.checksumXXH3 || s.kind == nil else {
                throw StrataError(.unsupportedFeature, "unknown checksum type \(s.checksumType)", section: "directory", offset: at + 7)
            }
            guard s.compression == 0 || s.kind == nil else {
                throw StrataError(.unsupportedFeature, "unknown section compression \(s.compression)", section: "directory", offset: at + 6)
            }
            guard (s.kind == .column) != (s.ordinal == SectionInfo.noOrdinal) || s.kind == nil else {
                throw StrataError(.corrupt, "section ordinal \(s.ordinal) does not fit kind \(s.kind!)", section: "directory", offset: at + 40)
            }
            list.append(s)
        }
        let sorted = list.filter { $0.length > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.length > b.offset {
            throw StrataError(.corrupt, "sections \(a.kind?.description ?? "?") and \(b.kind?.description ?? "?") overlap", section: "directory", offset: b.offset)
        }
        return list
    }
}
