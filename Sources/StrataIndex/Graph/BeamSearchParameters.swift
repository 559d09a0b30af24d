// The knobs of one beam search (BeamSearcher.swift).
import StrataFormat

/// Knobs of one approximate search.
package struct BeamSearchParameters: Sendable, Equatable {
    /// Number of results k (>= 1).
    package var k: Int = 10
    /// Search list size L (ef), >= k. With a row filter it counts passing candidates only.
    package var listSize: Int = 64
    /// Beam width W: records read per hop (1...64). 1 is fastest from the page cache; 2-8 overlap disk reads.
    package var beamWidth: Int = 1
    /// Read ahead: before touching the records of the next beam, advise the kernel to read the pages of
    /// those not in the ``NodeCache`` (`madvise(MADV_WILLNEED)`), and of the beam likely after it, so
    /// that their page faults are served by reads issued together (about one device latency per hop
    /// instead of one per record). For segments not in the page cache; from the page cache it only
    /// adds a system call per record (about 1 us).
    package var readAhead: Bool = false

    /// Defaults: k 10, L 64, W 1, no read-ahead.
    package init() {}

    /// Explicit knobs.
    package init(k: Int, listSize: Int, beamWidth: Int = 1, readAhead: Bool = false) {
        self.k = k
        self.listSize = listSize
        self.beamWidth = beamWidth
        self.readAhead = readAhead
    }

    /// - Throws: `StrataError.Code.invalidArgument` when k < 1, L < k, L > 100000, or W outside 1...64.
    package func validate() throws(StrataError) {
        if k < 1 { throw StrataError(.invalidArgument, "k must be at least 1, got \(k)") }
        if listSize < k { throw StrataError(.invalidArgument, "search list size L (\(listSize)) must be at least k (\(k))") }
        if listSize > 100_000 { throw StrataError(.invalidArgument, "search list size L must be at most 100000") }
        if beamWidth < 1 || beamWidth > 64 { throw StrataError(.invalidArgument, "beam width must be in 1...64, got \(beamWidth)") }
    }
}
