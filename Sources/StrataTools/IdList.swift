/// A list of ids written as text: comma-separated single ids and half-open ranges `A..B`
/// (`1,5,10..20`), as `strata delete --ids` takes it. The ranges are kept as they are and enumerated
/// lazily, so a short text naming billions of ids costs no memory; ``total`` tells how many there
/// are before anything is enumerated.
import Strata
import StrataFormat
import StrataIndex

public struct IdList: Sequence, Sendable {
    /// The non-empty parts, as closed ranges (a single id v is v...v, so UInt64.max can be named).
    public let parts: [ClosedRange<UInt64>]
    /// Number of ids named, duplicates included (saturates at UInt64.max).
    public let total: UInt64

    /// Parses `text`; nil for anything but unsigned integers and `A..B` ranges with A <= B
    /// (spaces around a part are allowed, empty parts are skipped).
    /// - Complexity: O(text length); no allocation proportional to the ids named.
    public init?(parsing text: String) {
        var parts: [ClosedRange<UInt64>] = []
        var total: UInt64 = 0
        for part in text.split(separator: ",") {
            let p = part.trimmingSpaces()
            let added: ClosedRange<UInt64>
            if let r = p.firstRange(of: "..") {
                guard let a = UInt64(p[..<r.lowerBound]), let b = UInt64(p[r.upperBound...]), b >= a else { return nil }
                guard b > a else { continue }
                added = a...(b - 1)
            } else {
                guard let v = UInt64(p) else { return nil }
                added = v...v
            }
            parts.append(added)
            // count = upper - lower + 1, saturating.
            let (sum, overflow) = total.addingReportingOverflow(added.upperBound - added.lowerBound)
            total = overflow || sum == .max ? .max : sum + 1
        }
        self.parts = parts
        self.total = total
    }

    /// The ids in order of the text (ranges ascending), duplicates kept.
    public func makeIterator() -> FlattenSequence<[ClosedRange<UInt64>]>.Iterator { parts.joined().makeIterator() }
}
