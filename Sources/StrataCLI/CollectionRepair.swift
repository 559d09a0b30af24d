import StrataFormat
import ArgumentParser
import Foundation
import Strata

/// `strata verify --repair DIR`: rebuilds the segments whose derived sections are damaged
/// (``Compactor/repair()``), then verifies the collection as `strata verify` does. Exit 0 when the
/// collection is sound afterwards, 1 when damage is left (primary data, which is never rebuilt, or a
/// rebuild that failed), 2 for usage or I/O errors.
enum CollectionRepair {
    /// A problem with the file it is in.
    struct Problem: Encodable {
        var code: String
        var message: String
        var file: String?
        var section: String?
        var offset: UInt64?

        init(_ e: StrataError) {
            code = e.code.rawValue
            message = e.message
            file = e.path
            section = e.section
            offset = e.offset
        }

        /// `code: message (file F, section S, offset O)`.
        var line: String {
            let at = [file.map { "file \($0)" }, section.map { "section \($0)" }, offset.map { "offset \($0)" }].compactMap { $0 }
            return "\(code): \(message)\(at.isEmpty ? "" : " (\(at.joined(separator: ", ")))")"
        }
    }

    struct Repaired: Encodable {
        var segment: String; var output: String?; var rows_written: Int; var bytes_written: UInt64; var generation: UInt64
        var sections: [String]; var damage: [Problem]; var notes: [String]; var seconds: Double
    }

    struct RepairOutput: Encodable {
        var lock_busy: Bool; var segments_checked: Int; var repaired: [Repaired]; var unrepaired: [Problem]; var seconds: Double
    }

    struct Output: Encodable {
        var path: String; var ok: Bool; var repair: RepairOutput; var verify: CollectionReadCommands.VerifyOutput
    }

    static func run(directory: String, json: Bool) throws {
        guard case .local(let path) = try CollectionLocation(directory) else {
            throw ValidationError("--repair works on a local collection directory (an s3:// collection is not repaired here)")
        }
        let r = try Compactor(path: path).repair()
        let repair = RepairOutput(
            lock_busy: r.lockBusy, segments_checked: r.segmentsChecked,
            repaired: r.repaired.map { x in
                Repaired(segment: x.segment, output: x.done.output, rows_written: x.done.rowsWritten, bytes_written: x.done.bytesWritten,
                         generation: x.done.generation, sections: Array(Set(x.damage.compactMap(\.section))).sorted(),
                         damage: x.damage.map(Problem.init), notes: x.notes, seconds: x.done.seconds)
            },
            unrepaired: r.unrepaired.map(Problem.init), seconds: r.seconds)
        let start = monotonicSeconds()
        var verify = CollectionReadCommands.VerifyOutput(path: directory, report: try StrataCollection.verify(path: path))
        verify.seconds = monotonicSeconds() - start
        let out = Output(path: directory, ok: verify.ok && repair.unrepaired.isEmpty, repair: repair, verify: verify)
        if json {
            try printJSON(out)
        } else {
            if r.lockBusy { print("\(directory): another compaction holds COMPACT.lock: nothing checked or repaired (run again later)") }
            for x in repair.repaired {
                print("\(directory): repaired \(x.segment) -> \(x.output ?? "(no live rows: dropped)") (\(x.rows_written) rows, "
                      + "rebuilt from its primary sections; damaged: \(x.sections.joined(separator: ", ")))")
                for d in x.damage { print("  damage: \(d.line)") }
                for n in x.notes { print("  note: \(n)") }
            }
            for p in repair.unrepaired { print("\(directory): NOT REPAIRED: \(p.line)") }
            if verify.ok {
                print("\(directory): OK (\(verify.segments_checked) segments, \(verify.live_rows) live rows, \(formatBytes(verify.bytes_checked)) checked)")
            } else {
                print("\(directory): CORRUPT")
                for p in verify.problems { print("  \(p.code): \(p.message)\(p.section.map { " (section \($0))" } ?? "")\(p.offset.map { " (offset \($0))" } ?? "")") }
            }
            for n in verify.notes { print("  note: \(n)") }
        }
        if !out.ok { throw ExitCode(1) }
    }
}
