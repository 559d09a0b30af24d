/// Version numbers of this build of Strata: the library release and the on-disk format versions it
/// writes. `strata --version` prints them, and `strata dump --json` / `strata stats --json` carry them.
///
/// (Not named `StrataVersion`: the symbol-graph extractor drops public names that start with the
/// module name followed by `Version`, so DocC would never show the type.)
import StrataFormat
import StrataIndex

public enum StrataRelease {
    /// The library's release version (semantic versioning).
    public static let version = "0.1.0"
    /// Segment format version this build writes, `major.minor` (`SegmentFormat.writerMajor`,
    /// `SegmentFormat.writerMinor`).
    public static var segmentFormat: String { "\(SegmentFormat.writerMajor).\(SegmentFormat.writerMinor)" }
    /// Collection manifest format version this build writes, `major.minor`.
    public static var manifestFormat: String { "\(Manifest.major).\(Manifest.minor)" }
    /// Write-ahead-log format version this build writes, `major.minor`: the one a new WAL gets
    /// (2.0); a WAL that holds sparse vectors is written in 3.0 (as the manifest's 1.0 is 2.0 for
    /// grown schemas).
    public static var walFormat: String { WALVersion.forNewLog(after: nil).description }

    /// Multi-line text for `strata --version`: the library version on the first line, then the
    /// format versions.
    public static var summary: String {
        """
        strata \(version)
        segment format \(segmentFormat), manifest format \(manifestFormat), WAL format \(walFormat)
        """
    }
}
