import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata recover DIR [--yes]`: cut a damaged WAL record and everything after it, after keeping a
/// copy of the whole WAL. A dry run unless `--yes`.
struct CollectionRecoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Drop a damaged WAL record and every record after it, after copying the whole WAL aside (dry run unless --yes).",
        discussion: """
        A complete WAL record whose checksum fails is damage: every open of the collection refuses it, so \
        that acknowledged writes are never dropped silently. This command shows what cutting the WAL at the \
        damaged record would lose (records, rows, deleted ids, the id range when the records can be decoded). \
        With --yes it first copies the whole WAL to wal-<seq>.log.damaged-<offset> in the collection \
        (fsynced), then truncates the WAL at the damaged record. A torn tail (a record cut short by a crash, \
        never acknowledged) is not damage; with --yes it is moved to wal-<seq>.log.torn-<offset>, as the next \
        read-write open would do. Strata never removes either side file.

        Needs the writer lock: stop the writing process first.
        Exit codes: 0 the WAL is sound, has only a torn tail, or was cut (--yes); 1 the WAL is damaged and \
        was not cut (dry run), or the MANIFEST or WAL header is damaged (not repaired here); 2 usage, I/O, \
        or another process holds the writer lock.
        """)

    @Argument(help: "Collection directory.")
    var directory: String

    @Flag(name: .long, help: "Cut the WAL (default: only report what would be dropped).")
    var yes = false

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    struct Damage: Encodable { var code: String; var message: String; var offset: UInt64? }
    struct Dropped: Encodable {
        var bytes: UInt64; var records: Int; var rows: Int; var deleted_ids: Int; var counts_exact: Bool
        var id_min: UInt64?; var id_max: UInt64?; var ids_exact: Bool; var unreadable_bytes: UInt64
    }
    struct Output: Encodable {
        var path: String; var wal: String; var wal_format: String; var state: String; var applied: Bool; var damage: Damage?
        var kept_records: Int; var kept_bytes: UInt64; var dropped: Dropped; var copy: String?; var torn_tail_file: String?
    }

    func run() throws {
        let r = try StrataCollection.recoverWAL(path: directory, apply: yes)
        let l = r.lost
        let out = Output(path: directory, wal: r.wal, wal_format: r.walFormat, state: r.state.rawValue, applied: r.applied,
                         damage: r.damage.map { Damage(code: $0.code.rawValue, message: $0.message, offset: $0.offset) },
                         kept_records: r.keptRecords, kept_bytes: r.keptBytes,
                         dropped: Dropped(bytes: l.bytes, records: l.records, rows: l.rows, deleted_ids: l.deletedIds, counts_exact: l.countsExact,
                                          id_min: l.minId, id_max: l.maxId, ids_exact: l.idsExact, unreadable_bytes: l.unreadableBytes),
                         copy: r.copyFile, torn_tail_file: r.tornTailFile)
        if json { try printJSON(out) } else { printText(r) }
        if r.state == .damaged, !r.applied { throw ExitCode(1) }
    }

    func printText(_ r: WALRecoveryReport) {
        let l = r.lost
        switch r.state {
        case .sound:
            print("\(directory): WAL \(r.wal) (format \(r.walFormat), \(plural(r.keptRecords, "record"))) is sound: nothing to recover")
        case .tornTail:
            print("\(directory): WAL \(r.wal) (format \(r.walFormat)) ends in a torn tail of \(l.bytes) bytes after offset \(r.keptBytes)")
            print("  a record cut short by a crash mid-append (never acknowledged); not damage, \(plural(r.keptRecords, "record")) intact")
            if let f = r.tornTailFile {
                print("  moved to \(f); the WAL now ends at \(r.keptBytes)")
            } else {
                print("  the next read-write open (or `strata recover \(directory) --yes`) moves it to \(r.wal).torn-\(r.keptBytes)")
            }
        case .damaged:
            print("\(directory): WAL \(r.wal) (format \(r.walFormat)) is DAMAGED at offset \(r.keptBytes)")
            if let d = r.damage { print("  \(d.code.rawValue): \(d.message)") }
            print("  keeps \(plural(r.keptRecords, "record")) (bytes 0..<\(r.keptBytes))")
            let bound = l.countsExact ? "" : "at least "
            var what = "\(bound)\(plural(l.records, "record")), \(l.bytes) bytes: \(bound)\(plural(l.rows, "row")) written, "
                + "\(bound)\(plural(l.deletedIds, "delete"))"
            if let lo = l.minId, let hi = l.maxId {
                what += ", ids \(lo)...\(hi)\(l.idsExact ? "" : " (read from a damaged record: may be inexact)")"
            }
            if l.unreadableBytes > 0 { what += "; \(l.unreadableBytes) bytes could not be read as records" }
            if let copy = r.copyFile {
                print("  dropped \(what)")
                print("  the whole WAL as it was is kept in \(directory)/\(copy); the collection opens again")
            } else {
                print("  cutting drops \(what)")
                print("  run `strata recover \(directory) --yes` to cut it; the whole WAL is first copied to \(r.wal).damaged-\(r.keptBytes)")
            }
        }
    }

    func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
}
