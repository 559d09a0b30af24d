import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata
import StrataRemote

/// `strata stats DIR|s3://BUCKET/PATH`: segments, rows, deleted fraction, bytes.
struct CollectionStatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show a collection's segments, rows, deleted fraction and bytes.")

    @Argument(help: "Collection directory, or s3://BUCKET/PATH.")
    var directory: String

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @Flag(name: .long, help: "Local collection: bytes, share and page-cache residency of each part (sections by kind, payload columns, bitmaps, WAL), per file and in total.")
    var parts = false

    @OptionGroup var remote: RemoteFlags

    struct SegmentJSON: Encodable { var name: String; var rows: Int; var deleted_rows: Int; var deleted_fraction: Double; var bytes: UInt64
        var indexed: Bool; var delete_file: String?; var columns: Int }
    struct Output: Encodable {
        var path: String; var generation: UInt64; var wal_sequence: UInt64; var dimension: Int; var metric: String
        var live_rows: Int; var total_rows: Int; var deleted_rows: Int; var deleted_fraction: Double
        var buffered_rows: Int; var pending_deletes: Int; var segment_bytes: UInt64; var bitmap_bytes: UInt64; var wal_bytes: UInt64
        var obsolete_files: Int; var segments: [SegmentJSON]; var wal_format: String; var wal_side_files: [String]
        var strata_version = StrataRelease.version; var format_versions = FormatVersionsJSON()
        var parts: PartsJSON?
    }
    struct PartJSON: Encodable { var name: String; var bytes: UInt64; var percent: Double; var resident_bytes: UInt64; var resident_percent: Double }
    struct FilePartsJSON: Encodable { var name: String; var bytes: UInt64; var parts: [PartJSON] }
    struct PartsJSON: Encodable { var total_bytes: UInt64; var resident_bytes: UInt64; var totals: [PartJSON]; var files: [FilePartsJSON] }

    /// Each part's bytes as a share of the whole collection, and its resident share of itself.
    static func partsJSON(_ p: CollectionPartStats) -> PartsJSON {
        let total = p.totalBytes
        func part(_ x: CollectionPartStats.Part) -> PartJSON {
            PartJSON(name: x.name, bytes: x.bytes, percent: total == 0 ? 0 : 100 * Double(x.bytes) / Double(total), resident_bytes: x.residentBytes,
                     resident_percent: x.bytes == 0 ? 0 : 100 * Double(x.residentBytes) / Double(x.bytes))
        }
        let totals = p.totals
        return PartsJSON(total_bytes: total, resident_bytes: totals.reduce(0) { $0 + $1.residentBytes }, totals: totals.map(part),
                         files: p.files.map { FilePartsJSON(name: $0.name, bytes: $0.bytes, parts: $0.parts.map(part)) })
    }

    static func output(_ path: String, _ c: any CollectionHandle) async throws -> Output {
        let s = try await c.stats()
        return Output(path: path, generation: s.generation, wal_sequence: s.walSequence, dimension: c.schema.dimension,
                      metric: c.schema.metric.description, live_rows: s.liveRows, total_rows: s.totalRows, deleted_rows: s.deletedRows,
                      deleted_fraction: s.totalRows == 0 ? 0 : Double(s.deletedRows) / Double(s.totalRows),
                      buffered_rows: s.bufferedRows, pending_deletes: s.pendingDeletes, segment_bytes: s.segmentBytes,
                      bitmap_bytes: s.bitmapBytes, wal_bytes: s.walBytes, obsolete_files: s.obsoleteFiles,
                      segments: s.segments.map { SegmentJSON(name: $0.name, rows: $0.rows, deleted_rows: $0.deletedRows,
                                                             deleted_fraction: $0.deletedFraction, bytes: $0.bytes, indexed: $0.indexed,
                                                             delete_file: $0.deleteFile, columns: $0.columns) },
                      wal_format: s.walFormat, wal_side_files: s.walSideFiles)
    }

    func validate() throws {
        if parts, S3Address.isAddress(directory) { throw ValidationError("--parts needs a local collection directory (page-cache residency is of local files)") }
    }

    func run() async throws {
        // Residency first: opening the collection reads index pages into the cache.
        var measured: PartsJSON? = nil
        if parts, case .local(let path) = try CollectionLocation(directory) { measured = Self.partsJSON(try CollectionPartStats.measure(directory: path)) }
        var o = try await CollectionHandles.with(directory, access: .readOnly, remote: remote) { c in try await Self.output(directory, c) }
        o.parts = measured
        if json { try printJSON(o); return }
        print("collection \(directory): generation \(o.generation), \(o.dimension) dims, \(o.metric)")
        print("  live rows \(o.live_rows) (segments \(o.total_rows - o.deleted_rows), buffer \(o.buffered_rows), pending deletes \(o.pending_deletes))")
        print(String(format: "  deleted %d of %d sealed rows (%.1f%%); segments %@, bitmaps %@, WAL %@, %d obsolete files",
                     o.deleted_rows, o.total_rows, o.deleted_fraction * 100, formatBytes(o.segment_bytes), formatBytes(o.bitmap_bytes),
                     formatBytes(o.wal_bytes), o.obsolete_files))
        print("  WAL format \(o.wal_format)\(o.wal_side_files.isEmpty ? "" : "; side files (never replayed): " + o.wal_side_files.joined(separator: ", "))")
        for s in o.segments {
            print(String(format: "  %@  %9d rows  %5.1f%% deleted  %10@  %@", s.name, s.rows, s.deleted_fraction * 100,
                         formatBytes(s.bytes), s.indexed ? "indexed" : "exact"))
        }
        if let p = o.parts { Self.printParts(p) }
    }
}

extension CollectionStatsCommand {
    static func printParts(_ p: PartsJSON) {
        func line(_ x: PartJSON) -> String {
            "    " + pad(x.name, 24) + pad(formatBytes(x.bytes), 11, right: true) + String(format: " %5.1f%%", x.percent)
                + "   resident" + pad(formatBytes(x.resident_bytes), 11, right: true) + String(format: " %5.1f%%", x.resident_percent)
        }
        print("  parts (\(formatBytes(p.total_bytes)), \(formatBytes(p.resident_bytes)) in the page cache):")
        for x in p.totals { print(line(x)) }
        for f in p.files {
            print("  \(f.name) (\(formatBytes(f.bytes))):")
            for x in f.parts { print(line(x)) }
        }
    }
}
