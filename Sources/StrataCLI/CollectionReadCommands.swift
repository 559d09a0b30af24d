import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata
import StrataRemote

/// `strata search|dump|verify DIR|s3://BUCKET/PATH` on a collection (dispatched from the segment
/// commands): one body and one printer for a local and a remote collection.
enum CollectionReadCommands {
    /// Whether `path` names a collection rather than a segment file: a directory, or an `s3://` address.
    static func isCollection(_ path: String) -> Bool {
        if S3Address.isAddress(path) { return true }
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
                       filter filterJSON: String? = nil, verify: Bool = false, json: Bool, remote: RemoteFlags) async throws {
        var collectionOptions = CollectionOptions()
        collectionOptions.verifyReads = verify
        try await CollectionHandles.with(directory, access: .readOnly, options: collectionOptions, remote: remote) { c in
            try search(try await c.snapshot(), query: query, k: k, limit: limit, groundtruth: groundtruth, listSize: listSize, exact: exact,
                       filter: filterJSON, json: json)
        }
    }

    private static func search(_ snap: CollectionSnapshot, query: String, k: Int, limit: Int?, groundtruth: String?, listSize: Int,
                               exact: Bool, filter filterJSON: String?, json: Bool) throws {
        let filter = try filterJSON.map { try Filter(json: $0) }
        let queries = try VectorFile(path: query)
        guard queries.dimension == snap.schema.dimension || queries.count == 0 else {
            throw StrataError(.dimensionMismatch, "queries have \(queries.dimension) dimensions, collection has \(snap.schema.dimension)", path: query)
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
        /// Remote only: the head's generation, and the objects and WAL objects checked.
        var generation: UInt64?; var objects_checked: Int?; var wal_objects_checked: Int?
    }

    /// Verifies a collection directory or, for an `s3://` address, the head, its manifest, every
    /// object it names and the WAL objects after it; exit 1 when anything is wrong.
    static func verify(directory: String, json: Bool, remote: RemoteFlags, progress: ProgressReporter? = nil) async throws {
        let start = monotonicSeconds()
        var out: VerifyOutput
        switch try CollectionLocation(directory) {
        case .local(let path):
            // Bytes of the segment files, within each segment and after it.
            let report = try StrataCollection.verify(path: path, progress: progress?.verifyProgress(phase: "verify"))
            out = VerifyOutput(path: directory, report: report)
        case .remote(let address):
            progress?.update(phase: "verify", done: 0, total: nil, unit: "segments")
            let r = try await RemoteTarget.with(address, flags: remote) { t in try await t.verify() }
            out = VerifyOutput(path: directory, report: r.report)
            out.generation = r.generation
            out.objects_checked = r.objectsChecked
            out.wal_objects_checked = r.walObjectsChecked
            progress?.update(phase: "verify", done: out.segments_checked, total: out.segments_checked, unit: "segments")
        }
        out.seconds = monotonicSeconds() - start
        if json { try printJSON(out) } else if out.ok {
            let remote = out.generation.map { ", generation \($0), \(out.objects_checked ?? 0) objects of which \(out.wal_objects_checked ?? 0) WAL objects" } ?? ""
            print("\(directory): OK (\(out.segments_checked) segments, \(out.live_rows) live rows, \(formatBytes(out.bytes_checked)) checked\(remote))")
            for n in out.notes { print("  note: \(n)") }
        } else {
            print("\(directory): CORRUPT")
            for p in out.problems { print("  \(p.code): \(p.message)\(p.section.map { " (section \($0))" } ?? "")\(p.offset.map { " (offset \($0))" } ?? "")") }
            for n in out.notes { print("  note: \(n)") }
        }
        if !out.ok { throw ExitCode(1) }
    }

    /// `columns`: how many of the schema's columns the segment holds (fewer when columns were added after it was written).
    struct DumpSegment: Encodable { var name: String; var rows: UInt64; var deleted_rows: UInt64; var bytes: UInt64; var indexed: Bool; var delete_file: String?; var columns: Int }
    struct DumpObsolete: Encodable { var name: String; var since_unix_ms: UInt64 }
    struct DumpRow: Encodable { var id: UInt64; var payload: [String: String] }
    /// Remote only: the head in etcd.
    struct DumpHead: Encodable {
        var key: String; var etcd_mod_revision: Int64; var generation: UInt64; var manifest: String; var manifest_bytes: UInt64
        var manifest_checksum: String; var wal_sequence: UInt64
    }
    /// Remote only: a WAL object after the head.
    struct DumpWALObject: Encodable { var key: String; var bytes: UInt64 }
    struct DumpOutput: Encodable {
        var path: String; var manifest_generation: UInt64; var wal: String; var wal_valid_bytes: UInt64; var dimension: Int; var element_type: String
        var metric: String; var columns: [String]; var segments: [DumpSegment]; var obsolete: [DumpObsolete]; var buffered_rows: Int
        var pending_deletes: Int; var live_rows: Int; var rows: [DumpRow]?
        var head: DumpHead?; var wal_objects: [DumpWALObject]?
        var strata_version = StrataRelease.version; var format_versions = FormatVersionsJSON()
    }

    static func dump(directory: String, rows: Range<Int>?, json: Bool, remote: RemoteFlags) async throws {
        try await CollectionHandles.with(directory, access: .readOnly, remote: remote) { c in try await dump(c, rows: rows, json: json) }
    }

    private static func dump(_ c: any CollectionHandle, rows: Range<Int>?, json: Bool) async throws {
        let snap = try await c.snapshot()
        let m = snap.manifest
        var rowData: [DumpRow]? = nil
        if let rows {
            var out: [DumpRow] = []
            var i = 0
            try snap.forEachRow { r in
                defer { i += 1 }
                guard rows.contains(i) else { return }
                var p: [String: String] = [:]
                for (spec, v) in zip(snap.schema.columns, r.payload) { p[spec.name] = v.description }
                out.append(DumpRow(id: r.id, payload: p))
            }
            rowData = out
        }
        let stats = try await c.stats()
        var out = DumpOutput(path: c.location, manifest_generation: m.generation, wal: "wal sequence \(m.walSequence)", wal_valid_bytes: stats.walBytes,
                             dimension: m.schema.dimension, element_type: m.schema.elementType.description, metric: m.schema.metric.description,
                             columns: m.schema.columns.map(\.description),
                             segments: m.segments.map { DumpSegment(name: $0.name, rows: $0.rowCount, deleted_rows: $0.deletedCount, bytes: $0.fileBytes,
                                                                    indexed: $0.indexed, delete_file: $0.deleteFile, columns: $0.columns(of: m.schema)) },
                             obsolete: m.obsolete.map { DumpObsolete(name: $0.name, since_unix_ms: $0.sinceMilliseconds) },
                             buffered_rows: snap.bufferedRows, pending_deletes: snap.pendingDeletes, live_rows: snap.count, rows: rowData)
        if let r = c as? RemoteCollectionHandle {
            let h = r.collection.headSummary
            out.head = DumpHead(key: h.key, etcd_mod_revision: h.modRevision, generation: h.generation, manifest: h.manifest,
                                manifest_bytes: h.bytes, manifest_checksum: "xxh3:" + h.checksum, wal_sequence: h.walSequence)
            out.wal_objects = try await r.collection.walObjectsAfterHead().map { DumpWALObject(key: $0.key, bytes: $0.size) }
        }
        if json { try printJSON(out); return }
        print("collection \(c.location)")
        if let h = out.head {
            print("├── head \(h.key) (etcd revision \(h.etcd_mod_revision)): generation \(h.generation), WAL from sequence \(h.wal_sequence)")
            print("│   manifest \(h.manifest), \(h.manifest_bytes) bytes, \(h.manifest_checksum)")
        }
        print("├── MANIFEST generation \(m.generation), \(m.schema.dimension) dims \(m.schema.elementType) \(m.schema.metric), columns [\(out.columns.joined(separator: ", "))]")
        for s in out.segments {
            let narrow = s.columns < out.columns.count ? ", \(s.columns) of \(out.columns.count) columns" : ""
            print("├── \(s.name): \(s.rows) rows, \(s.deleted_rows) deleted\(s.delete_file.map { " (\($0))" } ?? ""), \(formatBytes(s.bytes)), \(s.indexed ? "indexed" : "no index")\(narrow)")
        }
        for o in out.obsolete { print("├── obsolete \(o.name) since \(o.since_unix_ms) ms") }
        let wal = out.wal_objects.map { "\($0.count) WAL objects from sequence \(m.walSequence)" } ?? CollectionFilesName.wal(m.walSequence)
        print("└── \(wal): \(out.wal_valid_bytes) bytes, \(out.buffered_rows) buffered rows, \(out.pending_deletes) pending deletes; \(out.live_rows) live rows")
        for r in rowData ?? [] { print("  id \(r.id) \(r.payload.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))") }
    }
}

extension CollectionReadCommands.VerifyOutput {
    /// The output for a report (`seconds` is set by the caller).
    init(path: String, report r: CollectionVerifyReport) {
        self.init(path: path, ok: r.isSound,
                  problems: r.problems.map { VerifyCommand.Problem(code: $0.code.rawValue, message: ($0.path.map { "\($0): " } ?? "") + $0.message,
                                                                   section: $0.section, offset: $0.offset) },
                  notes: r.notes, segments_checked: r.segmentsChecked, bytes_checked: r.bytesChecked, live_rows: r.liveRows, seconds: 0)
    }
}

enum CollectionFilesName {
    /// Whether `name` is a plain segment file name (`seg-….seg`, no directory).
    static func isSegment(_ name: String) -> Bool {
        name.hasPrefix("seg-") && name.hasSuffix(".seg") && !name.contains("/") && name.utf8.count <= 255
    }

    static func wal(_ seq: UInt64) -> String {
        let s = String(seq)
        return "wal-" + String(repeating: "0", count: max(0, 20 - s.count)) + s + ".log"
    }
}
