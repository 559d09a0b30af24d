import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata
import StrataRemote

/// `strata dump`: header, schema, section layout, column statistics and rows of a segment; a
/// collection's manifest and segments (and for `s3://`, its head and WAL objects).
struct DumpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Show everything in a segment (header, layout, columns, rows) or a collection (head, manifest, segments, WAL).")

    @Argument(help: "Segment file, collection directory, or s3://BUCKET/PATH.")
    var segment: String

    @Option(name: .customLong("segment"), help: "With a collection: dump its segment NAME (for s3://, fetched through the cache).")
    var segmentName: String?

    @OptionGroup var remote: RemoteFlags

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @Option(name: .long, help: "Rows to print, A..B (half-open) or a single row.")
    var rows: String?

    @Option(name: .long, help: "Only this payload column (stats and rows).")
    var column: String?

    func validate() throws {
        if let rows, parseRowRange(rows) == nil { throw ValidationError("--rows must be A..B or A") }
    }

    struct SectionJSON: Encodable {
        var kind: String
        var ordinal: UInt32?
        var offset: UInt64
        var bytes_on_disk: UInt64
        var bytes_decoded: UInt64
        var compression_ratio: Double
        var checksum: String
        var required: Bool

        init(_ s: SectionInfo) {
            kind = s.kind?.description ?? "unknown(\(s.kindNumber))"
            ordinal = s.ordinal == SectionInfo.noOrdinal ? nil : s.ordinal
            offset = s.offset
            bytes_on_disk = s.length
            bytes_decoded = s.decodedLength
            compression_ratio = s.length == 0 ? 1 : (Double(s.decodedLength) / Double(s.length) * 1000).rounded() / 1000
            checksum = "xxh3:" + String(format: "%016llx", s.checksum)
            required = s.required
        }
    }

    struct ColumnJSON: Encodable {
        var name: String
        var type: String
        var nullable: Bool
        var nulls: UInt64
        var distinct_estimate: UInt64
        var min: String?
        var max: String?
        var blocks: Int
        var bytes_on_disk: UInt64
        var bytes_decoded: UInt64
        var compression_ratio: Double
    }

    struct RowJSON: Encodable {
        var row: Int
        var id: UInt64
        var payload: [String: JSONValue]
    }

    struct IndexJSON: Encodable {
        var pq_subspaces: Int
        var pq_codebook_bytes: Int
        var pq_code_bytes: Int
        var pq_mean_squared_error: Double?
        var max_degree: Int
        var entry_point: Int
        var record_bytes: Int
        var nodes_per_sector: Int
        var edges: Int
        var average_degree: Double
        var degree_histogram: [String: Int]
        var unreachable_nodes: Int
        var layout: LayoutJSON?
    }

    /// Sector locality of the graph section (see `GraphLocality`).
    struct LayoutJSON: Encodable {
        /// Graph layout version: 1 row order, 2 block-aware.
        var layout_version: Int
        var sectors: Int
        var padding_bytes_per_sector: Int
        var padding_bytes_total: Int
        var same_sector_edge_share: Double
        var random_same_sector_share: Double
        var free_neighbor_share: Double
        var neighbor_sectors_mean: Double
        var neighbor_sectors_p50: Int
        var neighbor_sectors_p99: Int
        var neighbors_per_sector_read: Double
        var skipped_neighbors: Int
        var bfs: BFSJSON?

        struct BFSJSON: Encodable {
            var max_depth: Int
            var reachable: Int
            /// Nodes at depth <= k for k = 0...3, keyed "0".."3".
            var within_depth: [String: Int]
        }

        init(_ l: GraphLocality) {
            layout_version = l.layoutVersion
            sectors = l.sectorCount
            padding_bytes_per_sector = l.paddingBytesPerSector
            padding_bytes_total = l.paddingBytesTotal
            same_sector_edge_share = l.sameSectorShare
            random_same_sector_share = l.randomSameSectorShare
            free_neighbor_share = l.meanFreeNeighborShare
            neighbor_sectors_mean = l.meanNeighborSectors
            neighbor_sectors_p50 = l.p50NeighborSectors
            neighbor_sectors_p99 = l.p99NeighborSectors
            neighbors_per_sector_read = l.neighborsPerSectorRead
            skipped_neighbors = l.skippedNeighborCount
            bfs = l.bfs.map { b in
                var within: [String: Int] = [:]
                for (k, c) in b.withinDepth.enumerated() { within[String(k)] = c }
                return BFSJSON(max_depth: b.maxDepth, reachable: b.reachable, within_depth: within)
            }
        }
    }

    struct DumpJSON: Encodable {
        var path: String
        var format_version: String
        var rows: Int
        var dimension: Int
        var element_type: String
        var metric: String
        var file_bytes: UInt64
        var sections: [SectionJSON]
        var columns: [ColumnJSON]
        var index: IndexJSON?
        var row_data: [RowJSON]?
        /// This build's library version and the format versions it writes (the file's own version is `format_version`).
        var strata_version = StrataRelease.version
        var format_versions = FormatVersionsJSON()
    }

    func run() async throws {
        if let name = segmentName {
            guard CollectionReadCommands.isCollection(segment) else {
                throw ValidationError("--segment takes a collection (a directory or s3://BUCKET/PATH); \(segment) is a segment file")
            }
            guard CollectionFilesName.isSegment(name) else {
                throw ValidationError("--segment takes a segment file name as the manifest lists it (seg-....seg), not '\(name)'")
            }
            return try await CollectionHandles.with(segment, access: .readOnly, remote: remote) { c in
                let file = try await c.segmentFile(named: name)
                try dumpSegment(path: file.path, shownAs: file.shownAs)
            }
        }
        if CollectionReadCommands.isCollection(segment) {
            return try await CollectionReadCommands.dump(directory: segment, rows: rows.flatMap(parseRowRange), json: json, remote: remote)
        }
        try dumpSegment(path: segment, shownAs: segment)
    }

    /// Dumps the segment file at `path`, calling it `shownAs`.
    private func dumpSegment(path: String, shownAs: String) throws {
        let seg = try Segment.open(path: path)
        var stats = seg.columnStatistics
        if let column {
            _ = try seg.schema.columnIndex(named: column)
            stats = stats.filter { $0.column.name == column }
        }
        let columnJSON = stats.map { s -> ColumnJSON in
            let (lo, hi) = Self.minMax(s.zoneMap)
            return ColumnJSON(name: s.column.name, type: s.column.type.description, nullable: s.column.nullable,
                              nulls: s.nullCount, distinct_estimate: s.distinctEstimate, min: lo, max: hi,
                              blocks: s.blockCount, bytes_on_disk: s.storedBytes, bytes_decoded: s.decodedBytes,
                              compression_ratio: s.storedBytes == 0 ? 1 : (Double(s.decodedBytes) / Double(s.storedBytes) * 1000).rounded() / 1000)
        }
        var rowData: [RowJSON]? = nil
        if let rows, let range = parseRowRange(rows) {
            let clamped = range.clamped(to: 0..<seg.rowCount)
            rowData = try clamped.map { row in
                var payload: [String: JSONValue] = [:]
                let values = try seg.payload(row: row)
                for (spec, value) in zip(seg.schema.columns, values) where column == nil || spec.name == column {
                    payload[spec.name] = JSONValue(value)
                }
                return RowJSON(row: row, id: try seg.id(ofRow: row), payload: payload)
            }
        }
        let doc = DumpJSON(path: shownAs, format_version: "\(seg.formatVersion.major).\(seg.formatVersion.minor)",
                           rows: seg.rowCount, dimension: seg.schema.dimension,
                           element_type: seg.schema.elementType.description, metric: seg.schema.metric.description,
                           file_bytes: seg.fileBytes, sections: seg.sections.map(SectionJSON.init),
                           columns: columnJSON, index: Self.indexJSON(seg), row_data: rowData)
        if json { try printJSON(doc); return }
        printHuman(doc, seg: seg)
    }

    static func indexJSON(_ seg: Segment) -> IndexJSON? {
        guard let s = seg.indexSummary, let g = seg.graphReport() else { return nil }
        var histogram: [String: Int] = [:]
        for (degree, count) in g.degreeHistogram.enumerated() where count > 0 { histogram[String(degree)] = count }
        return IndexJSON(pq_subspaces: s.pqSubspaces, pq_codebook_bytes: s.codebookBytes, pq_code_bytes: s.codeBytes,
                         pq_mean_squared_error: seg.pqQuantizationError(), max_degree: s.maxDegree, entry_point: s.medoid,
                         record_bytes: s.recordBytes, nodes_per_sector: s.nodesPerSector, edges: g.edgeCount,
                         average_degree: g.count == 0 ? 0 : Double(g.edgeCount) / Double(g.count),
                         degree_histogram: histogram, unreachable_nodes: g.unreachableCount,
                         layout: seg.graphLocality().map(LayoutJSON.init))
    }

    static func printLayout(_ l: LayoutJSON) {
        print("  layout: " + (l.layout_version == 2 ? "block-aware (version 2)" : "row order (version 1)")
              + ", sectors: \(l.sectors) x 4 KB, padding \(l.padding_bytes_per_sector) B per sector (\(formatBytes(UInt64(l.padding_bytes_total))) in all)")
        // Shares as percentages with three significant digits: today's row-order layout gives ~1e-5.
        func percent(_ x: Double) -> String { String(format: "%.3g%%", x * 100) }
        print("  locality: same-sector edges \(percent(l.same_sector_edge_share)) (random placement \(percent(l.random_same_sector_share)))"
              + ", free neighbours per expansion \(percent(l.free_neighbor_share))"
              + String(format: ", neighbour sectors per expansion mean %.2f", l.neighbor_sectors_mean)
              + " p50 \(l.neighbor_sectors_p50) p99 \(l.neighbor_sectors_p99)"
              + String(format: ", %.2f neighbours per sector read", l.neighbors_per_sector_read)
              + (l.skipped_neighbors > 0 ? ", \(l.skipped_neighbors) bad neighbour ids skipped" : ""))
        if let b = l.bfs {
            let w = (0...3).map { "\($0):\(b.within_depth[String($0)] ?? 0)" }.joined(separator: " ")
            print("  BFS from entry point: max depth \(b.max_depth), reachable \(b.reachable), nodes within depth \(w)")
        }
    }

    static func minMax(_ z: ZoneMap) -> (String?, String?) {
        switch z {
        case .none: return (nil, nil)
        case .int64(let a, let b): return (String(a), String(b))
        case .float64(let a, let b): return (String(a), String(b))
        case .stringPrefix(let a, let b, let t):
            return (String(decoding: a, as: UTF8.self), String(decoding: b, as: UTF8.self) + (t ? "…" : ""))
        }
    }

    private func printHuman(_ d: DumpJSON, seg: Segment) {
        print("segment \(d.path)")
        print("  format \(d.format_version), \(d.rows) rows, dimension \(d.dimension) \(d.element_type), metric \(d.metric), \(formatBytes(d.file_bytes))")
        print("layout:")
        let total = Double(max(d.file_bytes, 1))
        func line(_ branch: String, _ name: String, _ offset: UInt64, _ length: UInt64, _ rest: String = "") {
            print("\(branch) \(pad(name, 16)) offset \(pad(String(offset), 12, right: true))  length \(pad(String(length), 12, right: true))  "
                  + pad(String(format: "%.1f%%", Double(length) / total * 100), 6, right: true) + rest)
        }
        line("├──", "header", seg.headerRange.lowerBound, UInt64(seg.headerRange.count))
        for s in d.sections {
            let name = s.kind + (s.ordinal.map { " " + (seg.schema.columns.indices.contains(Int($0)) ? seg.schema.columns[Int($0)].name : String($0)) } ?? "")
            line("├──", name, s.offset, s.bytes_on_disk,
                 "  decoded \(pad(String(s.bytes_decoded), 12, right: true))  ratio \(pad(String(format: "%.2f", s.compression_ratio), 6, right: true))  \(s.checksum)")
        }
        line("├──", "directory", seg.directoryRange.lowerBound, UInt64(seg.directoryRange.count))
        line("└──", "footer", seg.footerRange.lowerBound, UInt64(seg.footerRange.count))
        if !d.columns.isEmpty {
            print("columns:")
            let header = [pad("name", 16), pad("type", 12), pad("nulls", 10, right: true), pad("distinct~", 10, right: true),
                          pad("blocks", 7, right: true), pad("disk", 11, right: true), pad("decoded", 11, right: true),
                          pad("ratio", 6, right: true), " min..max"]
            print("  " + header.joined(separator: " "))
            for c in d.columns {
                let range = c.min.map { "\($0)..\(c.max ?? "")" } ?? "-"
                let fields = [pad(c.name, 16), pad(c.type + (c.nullable ? "?" : ""), 12), pad(String(c.nulls), 10, right: true),
                              pad(String(c.distinct_estimate), 10, right: true), pad(String(c.blocks), 7, right: true),
                              pad(formatBytes(c.bytes_on_disk), 11, right: true), pad(formatBytes(c.bytes_decoded), 11, right: true),
                              pad(String(format: "%.2f", c.compression_ratio), 6, right: true), " " + range]
                print("  " + fields.joined(separator: " "))
            }
        }
        if let ix = d.index {
            print("index:")
            print("  PQ: \(ix.pq_subspaces) sub-spaces x 256 centroids, codebook \(formatBytes(UInt64(ix.pq_codebook_bytes))), codes \(formatBytes(UInt64(ix.pq_code_bytes)))"
                  + (ix.pq_mean_squared_error.map { String(format: ", quantization MSE %.5f", $0) } ?? ""))
            print("  graph: R \(ix.max_degree), entry point \(ix.entry_point), \(ix.edges) edges (average degree \(String(format: "%.1f", ix.average_degree))), record \(ix.record_bytes) B, \(ix.nodes_per_sector) nodes per 4 KB sector, unreachable \(ix.unreachable_nodes)")
            let buckets = ix.degree_histogram.sorted { Int($0.key)! < Int($1.key)! }
            print("  degree histogram: " + buckets.map { "\($0.key):\($0.value)" }.joined(separator: " "))
            if let l = ix.layout { Self.printLayout(l) }
        }
        if let rows = d.row_data {
            print("rows:")
            for r in rows {
                let fields = seg.schema.columns.compactMap { spec in r.payload[spec.name].map { "\(spec.name)=\($0.text)" } }
                print("  row \(r.row)  id \(r.id)  " + fields.joined(separator: "  "))
            }
        }
    }
}

/// Pads `s` with spaces to `width` characters (on the left when `right`).
func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let n = s.count
    guard n < width else { return s }
    let fill = String(repeating: " ", count: width - n)
    return right ? fill + s : s + fill
}

/// A payload value as JSON (null, number, bool, string, array of strings).
enum JSONValue: Encodable {
    case null, int(Int64), double(Double), bool(Bool), string(String), list([String])

    init(_ v: PayloadValue) {
        switch v {
        case .null: self = .null
        case .int64(let x): self = .int(x)
        case .float64(let x): self = .double(x)
        case .bool(let x): self = .bool(x)
        case .string(let x): self = .string(x)
        case .stringList(let x): self = .list(x)
        }
    }

    var text: String {
        switch self {
        case .null: return "null"
        case .int(let x): return String(x)
        case .double(let x): return String(x)
        case .bool(let x): return String(x)
        case .string(let x): return "\"\(x)\""
        case .list(let x): return "[" + x.joined(separator: ",") + "]"
        }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .int(let x): try c.encode(x)
        case .double(let x): try c.encode(x)
        case .bool(let x): try c.encode(x)
        case .string(let x): try c.encode(x)
        case .list(let x): try c.encode(x)
        }
    }
}
