import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata flush DIR|s3://BUCKET/PATH`: seal the WAL's rows into a segment and its deletes into bitmaps.
struct CollectionFlushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flush",
        abstract: "Seal buffered rows (replayed from the WAL) into a segment and pending deletes into bitmaps.")

    @Argument(help: "Collection directory, or s3://BUCKET/PATH.")
    var directory: String

    @OptionGroup var write: CollectionWriteFlags

    @OptionGroup var remote: RemoteFlags

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    struct Output: Encodable { var flushed: Bool; var segment: String?; var rows: Int; var bytes: UInt64; var bitmaps_written: Int
        var deletes_applied: Int; var seconds: Double; var mb_per_s: Double; var rows_per_s: Double }

    func run() async throws {
        let s = try await CollectionHandles.with(directory, access: .readWrite, options: write.options(), remote: remote) { c in
            try write.check(against: c.schema)
            return try await c.flush()
        }
        let out = Output(flushed: s != nil, segment: s?.segment, rows: s?.rows ?? 0, bytes: s?.bytes ?? 0, bitmaps_written: s?.bitmapsWritten ?? 0,
                         deletes_applied: s?.deletesApplied ?? 0, seconds: s?.seconds ?? 0,
                         mb_per_s: (s?.seconds ?? 0) > 0 ? Double(s!.bytes) / 1e6 / s!.seconds : 0,
                         rows_per_s: (s?.seconds ?? 0) > 0 ? Double(s!.rows) / s!.seconds : 0)
        if json { try printJSON(out); return }
        guard let s else { print("nothing to flush"); return }
        print(String(format: "flushed %d rows into %@ (%@) and %d delete bitmaps in %.2f s (%.1f MB/s, %.0f rows/s)",
                     s.rows, s.segment ?? "-", formatBytes(s.bytes), s.bitmapsWritten, s.seconds, out.mb_per_s, out.rows_per_s))
    }
}
