// Where a segment's structural parts lie in the file (for `strata dump`'s layout view): the header
// page, the section directory and the footer. `Segment.open` has checked that the directory ends
// where the footer begins.
import StrataFormat

extension Segment {
    /// Byte range of the header page.
    package var headerRange: Range<UInt64> { 0..<SegmentFormat.pageSize }

    /// Byte range of the footer: the file's last bytes.
    package var footerRange: Range<UInt64> { (fileBytes - UInt64(SegmentFormat.footerLength))..<fileBytes }

    /// Byte range of the section directory: one entry per section, right before the footer.
    package var directoryRange: Range<UInt64> {
        let length = UInt64(sections.count * SegmentFormat.directoryEntryLength)
        return (footerRange.lowerBound - length)..<footerRange.lowerBound
    }
}
