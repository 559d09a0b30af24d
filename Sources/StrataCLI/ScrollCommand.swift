import StrataFormat
import StrataIndex
import ArgumentParser
import Foundation
import Strata

/// `strata scroll DIR|s3://BUCKET/PATH [--after ID] [--limit N] [--filter JSON] [--vectors] [--json]`:
/// one page of live rows in ascending id order after a cursor.
struct ScrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scroll",
        abstract: "List a page of live rows in id order after a cursor (--after the previous page's next_id).")

    @Argument(help: "Collection directory, or s3://BUCKET/PATH.")
    var directory: String

    @Option(name: .long, help: "Only ids greater than this (the previous page's next_id); default: from the first id.")
    var after: UInt64?

    @Option(name: .long, help: "Rows per page, 1...\(CollectionSnapshot.maxScrollLimit).")
    var limit: Int = 100

    @Option(name: .long, help: "Only rows passing this filter (the JSON filter of `search --filter`).")
    var filter: String?

    @Flag(name: .long, help: "Include each row's vector.")
    var vectors = false

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @OptionGroup var remote: RemoteFlags

    func validate() throws {
        guard limit >= 1, limit <= CollectionSnapshot.maxScrollLimit else {
            throw ValidationError("--limit must be in 1...\(CollectionSnapshot.maxScrollLimit)")
        }
    }

    struct Row: Encodable { var id: UInt64; var payload: [String: JSONValue]; var vector: [Float]? }
    struct Output: Encodable {
        var generation: UInt64; var after: UInt64?; var limit: Int; var next_id: UInt64?; var rows: [Row]
        enum CodingKeys: String, CodingKey { case generation, after, limit, next_id, rows }
        /// `after` and `next_id` are always present (null at the start and after the last page).
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(generation, forKey: .generation)
            try c.encode(after, forKey: .after)
            try c.encode(limit, forKey: .limit)
            try c.encode(next_id, forKey: .next_id)
            try c.encode(rows, forKey: .rows)
        }
    }

    func run() async throws {
        let parsed = try filter.map { try Filter(json: $0) }
        let out = try await CollectionHandles.with(directory, access: .readOnly, remote: remote) { c in
            let snap = try await c.snapshot()
            let page = try snap.scroll(after: after, limit: limit, filter: parsed)
            let names = snap.schema.columns.map(\.name)
            let rows = page.records.map { r in
                Row(id: r.id, payload: Dictionary(uniqueKeysWithValues: zip(names, r.payload.map(JSONValue.init))),
                    vector: vectors ? r.vector : nil)
            }
            return Output(generation: snap.generation, after: after, limit: limit, next_id: page.nextId, rows: rows)
        }
        if json { try printJSON(out); return }
        for r in out.rows {
            let fields = r.payload.keys.sorted().map { "\($0)=\(r.payload[$0]!.text)" }
            print(([String(r.id)] + fields).joined(separator: "  ") + (r.vector.map { "  " + $0.map { String($0) }.joined(separator: ",") } ?? ""))
        }
        print(out.next_id.map { "next: --after \($0)" } ?? "end")
    }
}
