import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata verify`: check every checksum and invariant. Exit 0 sound, 1 corrupt, 2 usage or I/O.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every checksum and invariant of a segment or collection (exit 0 sound, 1 corrupt, 2 usage/I/O).",
        discussion: """
        For s3://BUCKET/PATH: the head in etcd against its manifest object, collection.json, every segment and delete bitmap \
        the manifest names (downloaded afresh into a temporary directory under the cache directory, so that the store's bytes \
        are checked) and the WAL objects after the head. Problems name the object.

        --repair DIR (local collections): takes COMPACT.lock (like `strata compact`; when another compaction holds it, nothing is \
        repaired), checks every segment, and rebuilds each one whose only damage is in derived sections (pq_codebook, pq_codes, \
        graph, payload_index, text_index: a checksum mismatch or a section that does not parse) from its live rows, with the \
        options read from the segment, published by a manifest edit as a compaction is. Primary data (header, directory, schema, \
        ids, id_index, vectors, payload columns, sparse_index, delete bitmaps; and the graph of a format 2.0 indexed segment, \
        whose records are the only copy of its vectors) is never rebuilt: it is named (file, section, offset) \
        and left unchanged. Then verifies the collection. Exit 0 sound afterwards, 1 damage left, 2 usage or I/O.
        """)

    @Argument(help: "Segment file, collection directory, or s3://BUCKET/PATH.")
    var segment: String

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @OptionGroup var progressFlags: ProgressFlags

    @Flag(name: .long, help: "Local collection only: rebuild segments whose derived sections (PQ, payload index, BM25; the graph of a 1.x segment) are damaged from their primary sections, then verify. Damaged primary data is reported (exit 1), never rebuilt.")
    var repair = false

    @OptionGroup var remote: RemoteFlags

    struct Problem: Encodable {
        var code: String
        var message: String
        var section: String?
        var offset: UInt64?
    }

    struct Report: Encodable {
        var path: String
        var ok: Bool
        var problems: [Problem]
        var sections_checked: Int
        var blocks_checked: Int
        var bytes_checked: UInt64
        var seconds: Double
        var gb_per_s: Double
    }

    func run() async throws {
        if repair {
            guard CollectionReadCommands.isCollection(segment) else { throw ValidationError("--repair needs a collection directory, not a segment file") }
            return try CollectionRepair.run(directory: segment, json: json)
        }
        if CollectionReadCommands.isCollection(segment) { return try await CollectionReadCommands.verify(directory: segment, json: json, remote: remote, progress: progressFlags.reporter("verify")) }
        let start = monotonicSeconds()
        var report = Report(path: segment, ok: true, problems: [], sections_checked: 0, blocks_checked: 0,
                            bytes_checked: 0, seconds: 0, gb_per_s: 0)
        let reporter = progressFlags.reporter("verify")
        do {
            let seg = try Segment.open(path: segment)
            // Bytes of the checksum pass, about every MiB (the reporter throttles what it writes).
            let r = seg.verify(progress: reporter.verifyProgress(phase: "verify"))
            report.problems = r.problems.map { Problem(code: $0.code.rawValue, message: $0.message, section: $0.section, offset: $0.offset) }
            report.sections_checked = r.sectionsChecked
            report.blocks_checked = r.blocksChecked
            report.bytes_checked = r.bytesChecked
        } catch {
            // I/O errors (missing file, permission) are exit 2; anything wrong with the bytes is a finding.
            if error.code == .io { throw error }
            report.problems = [Problem(code: error.code.rawValue, message: error.message, section: error.section, offset: error.offset)]
        }
        report.ok = report.problems.isEmpty
        report.seconds = monotonicSeconds() - start
        report.gb_per_s = report.seconds > 0 ? Double(report.bytes_checked) / 1e9 / report.seconds : 0
        if json {
            try printJSON(report)
        } else if report.ok {
            print("\(segment): OK (\(report.sections_checked) sections, \(report.blocks_checked) blocks, \(formatBytes(report.bytes_checked)) in \(String(format: "%.3f", report.seconds)) s, \(String(format: "%.2f", report.gb_per_s)) GB/s)")
        } else {
            print("\(segment): CORRUPT")
            for p in report.problems {
                let at = [p.section.map { "section \($0)" }, p.offset.map { "offset \($0)" }].compactMap { $0 }.joined(separator: ", ")
                print("  \(p.code): \(p.message)\(at.isEmpty ? "" : " (\(at))")")
            }
        }
        if !report.ok { throw ExitCode(1) }
    }
}
