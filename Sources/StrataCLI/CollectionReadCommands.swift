import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata search|dump|verify DIR` on a collection directory (dispatched from the segment commands).
enum CollectionReadCommands {
    static func isCollection(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    struct Hit: Encodable { var id: UInt64; var distance: Float }
    struct QueryResult: Encodable { var query: Int; var hits: [Hit] }
    struct SearchOutput: Encodable {
        var queries: Int; var k: Int; var list_size: Int; var exact: Bool; var seconds: Double; var qps: Double
        var recall_at_k: Double?; var generation: UInt64; var segments: Int; var results: [QueryResult]
    }

    /// Search every query of a file against one snapshot; ground truth ids are compared with hit ids.
    static func search(directory: String, query: String, k: Int, limit: Int?, groundtruth: String?, listSize: Int, exact: Bool,
                       filter filterJSON: String? = nil, verify: Bool = false, json: Bool) throws {
        var collectionOptions = CollectionOptions()
        collectionOptions.verifyReads = verify
        let c = try StrataCollection.open(path: directory, access: .readOnly, options: collectionOptions)
        let filter = try filterJSON.map { try Filter(json: $0) }
        let snap = try c.snapshot()
        let queries = try VectorFile(path: query)
        guard queries.dimension == c.schema.dimension || queries.count == 0 else {
            throw StrataError(.dimensionMismatch, "queries have \(queries.dimension) dimensions, collection has \(c.schema.dimension)", path: query)
        }
        let n = min(queries.count, limit ?? queries.count)
        let options = SearchOptions(k: k, listSize: listSize, exact: exact)
        // Ground truth holds ids here; checked before searching.
        let truth = try groundtruth.map { (p) throws(StrataError) in try GroundTruth.read(p, queries: n, k: k, rowCount: nil) }
        var results: [QueryResult] = []
        let start = monotonicSeconds()
        for q in 0..<n {
            let hits = try snap.search(query: queries.row(q), filter: filter, options: options)
            results.append(QueryResult(query: q, hits: hits.map { Hit(id: $0.id, distance: $0.distance) }))
        }
        let seconds = monotonicSeconds() - start
        let recallAtK = truth.flatMap { GroundTruth.recall(results.map { $0.hits.map(\.id) }, truth: $0, depth: k) }
        let out = SearchOutput(queries: n, k: k, list_size: options.listSize, exact: exact, seconds: seconds,
                               qps: seconds > 0 ? Double(n) / seconds : 0, recall_at_k: recallAtK, generation: snap.generation,
                               segments: snap.manifest.segments.count, results: results)
        if json { try printJSON(out); return }
        for r in results {
            print("query \(r.query):")
            for (rank, h) in r.hits.enumerated() { print(String(format: "  %2d  id %-12llu distance %.6f", rank + 1, h.id, h.distance)) }
        }
        var summary = String(format: "%d queries over %d segments + buffer, %@, %.1f queries/s (one thread)", n, out.segments,
                             exact ? "exact" : "L=\(options.listSize)", out.qps)
        if let recallAtK { summary += String(format: ", recall@%d %.4f", k, recallAtK) }
        print(summary)
    }

    struct VerifyOutput: Encodable {
        var path: String; var ok: Bool; var problems: [VerifyCommand.Problem]; var notes: [String]; var segments_checked: Int
        var bytes_checked: UInt64; var live_rows: Int; var seconds: Double
    }

    static func verify(directory: String, json: Bool) throws {
        let start = monotonicSeconds()
        let r = try StrataCollection.verify(path: directory)
        let out = VerifyOutput(path: directory, ok: r.isSound,
                               problems: r.problems.map { VerifyCommand.Problem(code: $0.code.rawValue, message: ($0.path.map { "\($0): " } ?? "") + $0.message, section: $0.section, offset: $0.offset) },
                               notes: r.notes, segments_checked: r.segmentsChecked, bytes_checked: r.bytesChecked, live_rows: r.liveRows,
                               seconds: monotonicSeconds() - start)
        if json { try printJSON(out) } else if out.ok {
            print("\(directory): OK (\(out.segments_checked) segments, \(out.live_rows) live rows, \(formatBytes(out.bytes_checked)) checked)")
            for n in out.notes { print("  note: \(n)") }
        } else {
            print("\(directory): CORRUPT")
            for p in out.problems { print("  \(p.code): \(p.message)\(p.section.map { " (section \($0))" } ?? "")\(p.offset.map { " (offset \($0))" } ?? "")") }
            for n in out.notes { print("  note: \(n)") }
        }
        if !out.ok { throw ExitCode(1) }
    }

    struct DumpSegment: Encodable { var name: String; var rows: UInt64; var deleted_rows: UInt64; var bytes: UInt64; var indexed: Bool; var delete_file: String? }
    struct DumpObsolete: Encodable { var name: String; var since_unix_ms: UInt64 }
    struct DumpRow: Encodable { var id: UInt64; var payload: [String: String] }
    struct DumpOutput: Encodable {
        var path: String; var manifest_generation: UInt64; var wal: String; var wal_valid_bytes: UInt64; var dimension: Int; var element_type: String
        var metric: String; var columns: [String]; var segments: [DumpSegment]; var obsolete: [DumpObsolete]; var buffered_rows: Int
        var pending_deletes: Int; var live_rows: Int; var rows: [DumpRow]?
        var strata_version = StrataRelease.version; var format_versions = FormatVersionsJSON()
    }

    static func dump(directory: String, rows: Range<Int>?, json: Bool) throws {
        let c = try StrataCollection.open(path: directory, access: .readOnly)
        let snap = try c.snapshot()
        let m = snap.manifest
        var rowData: [DumpRow]? = nil
        if let rows {
            var out: [DumpRow] = []
            var i = 0
            try snap.forEachRow { r in
                defer { i += 1 }
                guard rows.contains(i) else { return }
                var p: [String: String] = [:]
                for (spec, v) in zip(c.schema.columns, r.payload) { p[spec.name] = v.description }
                out.append(DumpRow(id: r.id, payload: p))
            }
            rowData = out
        }
        let stats = try c.stats()
        let out = DumpOutput(path: directory, manifest_generation: m.generation, wal: "wal sequence \(m.walSequence)", wal_valid_bytes: stats.walBytes,
                             dimension: m.schema.dimension, element_type: m.schema.elementType.description, metric: m.schema.metric.description,
                             columns: m.schema.columns.map(\.description),
                             segments: m.segments.map { DumpSegment(name: $0.name, rows: $0.rowCount, deleted_rows: $0.deletedCount, bytes: $0.fileBytes,
                                                                    indexed: $0.indexed, delete_file: $0.deleteFile) },
                             obsolete: m.obsolete.map { DumpObsolete(name: $0.name, since_unix_ms: $0.sinceMilliseconds) },
                             buffered_rows: snap.bufferedRows, pending_deletes: snap.pendingDeletes, live_rows: snap.count, rows: rowData)
        if json { try printJSON(out); return }
        print("collection \(directory)")
        print("├── MANIFEST generation \(m.generation), \(m.schema.dimension) dims \(m.schema.elementType) \(m.schema.metric), columns [\(out.columns.joined(separator: ", "))]")
        for s in out.segments {
            print("├── \(s.name): \(s.rows) rows, \(s.deleted_rows) deleted\(s.delete_file.map { " (\($0))" } ?? ""), \(formatBytes(s.bytes)), \(s.indexed ? "indexed" : "no index")")
        }
        for o in out.obsolete { print("├── obsolete \(o.name) since \(o.since_unix_ms) ms") }
        print("└── \(CollectionFilesName.wal(m.walSequence)): \(out.wal_valid_bytes) bytes, \(out.buffered_rows) buffered rows, \(out.pending_deletes) pending deletes; \(out.live_rows) live rows")
        for r in rowData ?? [] { print("  id \(r.id) \(r.payload.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))") }
    }
}

enum CollectionFilesName {
    static func wal(_ seq: UInt64) -> String {
        let s = String(seq)
        return "wal-" + String(repeating: "0", count: max(0, 20 - s.count)) + s + ".log"
    }
}
