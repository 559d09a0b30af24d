import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata scrub DIR`: check every live segment, bitmap and the WAL of a collection in the
/// background (no lock, nothing changed, rate-limited). Exit 0 sound, 1 damage found, 2 usage or I/O.
struct CollectionScrubCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrub",
        abstract: "Check every checksum of a live collection in the background (exit 0 sound, 1 damage found, 2 usage/I/O).",
        discussion: """
        Search does not check section checksums (open costs the same whatever the data size); scrub, run from cron, \
        finds damage before a query or a compaction reads it. It takes no lock, changes nothing, and may run next to \
        a writer, readers and a compactor. Segment data is read at no more than --rate MB/s on average.
        """)

    @Argument(help: "Collection directory.")
    var directory: String

    @Option(name: .long, help: "Read at most this many MB (10^6 bytes) per second (at least 0.001); 0: no limit.")
    var rate: Double = 100

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @OptionGroup var progressFlags: ProgressFlags

    func validate() throws {
        guard rate.isFinite, rate == 0 || rate >= 0.001 else {
            throw ValidationError("--rate must be 0 (no limit) or at least 0.001 MB/s (1,000 bytes per second)")
        }
    }

    struct Problem: Encodable { var file: String?; var code: String; var message: String; var section: String?; var offset: UInt64? }
    struct Output: Encodable {
        var path: String; var ok: Bool; var generation: UInt64; var segments_checked: Int; var bitmaps_checked: Int
        var wal_checked: Bool; var bytes_checked: UInt64; var seconds: Double; var rate_limit_mb_per_s: Double?
        var problems: [Problem]; var notes: [String]
    }

    func run() throws {
        let start = monotonicSeconds()
        let reporter = progressFlags.reporter("scrub")
        // Bytes of the segment files, within each segment and after it.
        let r = try StrataCollection.scrub(path: directory, bytesPerSecond: rate > 0 ? rate * 1e6 : nil,
                                           progress: reporter.verifyProgress(phase: "scrub"))
        let out = Output(path: directory, ok: r.isSound, generation: r.generation, segments_checked: r.segmentsChecked,
                         bitmaps_checked: r.bitmapsChecked, wal_checked: r.walChecked, bytes_checked: r.bytesChecked,
                         seconds: monotonicSeconds() - start, rate_limit_mb_per_s: rate > 0 ? rate : nil,
                         problems: r.problems.map { Problem(file: $0.path, code: $0.code.rawValue, message: $0.message, section: $0.section, offset: $0.offset) },
                         notes: r.notes)
        if json {
            try printJSON(out)
        } else {
            print("\(directory): \(out.ok ? "OK" : "DAMAGED") (generation \(out.generation), \(out.segments_checked) segments, "
                  + "\(out.bitmaps_checked) bitmaps, \(formatBytes(out.bytes_checked)) in \(String(format: "%.2f", out.seconds)) s)")
            for p in out.problems {
                let at = [p.file.map { "file \($0)" }, p.section.map { "section \($0)" }, p.offset.map { "offset \($0)" }].compactMap { $0 }
                print("  \(p.code): \(p.message)\(at.isEmpty ? "" : " (\(at.joined(separator: ", ")))")")
            }
            for n in out.notes { print("  note: \(n)") }
        }
        if !out.ok { throw ExitCode(1) }
    }
}
