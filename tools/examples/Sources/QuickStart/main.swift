// The README's "Library" example: everything between the README markers is the README's code
// block, character for character (tools/examples/check-readme.sh checks it).
// README:begin library
import Foundation
import Strata

// A fresh scratch directory for the files, removed at the end.
let scratch = FileManager.default.temporaryDirectory
    .appendingPathComponent("strata-quickstart-\(ProcessInfo.processInfo.processIdentifier)").path
try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: scratch) }
let segmentPath = scratch + "/a.seg", collectionPath = scratch + "/coll"

// Stand-ins for a model's embeddings: deterministic pseudo-random 64-dimensional vectors.
func embedding(_ seed: Int) -> [Float] {
    var state = UInt64(seed + 1) &* 0x9E37_79B9_7F4A_7C15
    return (0..<64).map { _ in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17   // xorshift64
        return Float(state >> 40) / Float(1 << 24) - 0.5
    }
}

let schema = SegmentSchema(dimension: 64, elementType: .float32, metric: .cosine,
                           columns: [ColumnSpec(name: "name", type: .string),
                                     ColumnSpec(name: "rank", type: .int64, nullable: true)])
var options = SegmentWriterOptions()
options.index = IndexOptions()      // PQ + Vamana at finish() (from 2,000 rows); omit for exact search only
let writer = try SegmentWriter(path: segmentPath, schema: schema, options: options)
let rows = (0..<500).map { i in     // "name" is not nullable: every row needs one; "rank" may be .null
    SegmentRow(id: UInt64(1000 + i), vector: embedding(i),
               payload: ["name": .string("doc-\(i)"), "rank": i % 3 == 0 ? .null : .int64(Int64(i))])
}
try writer.append(rows)
try writer.finish()                 // temp file, fsync, rename, fsync directory

let segment = try Segment.open(path: segmentPath)      // maps the file, validates structure
let q = embedding(7)                                   // the query: row 7's own vector (id 1007)
let exact = try segment.exactSearch(query: q, k: 3)    // [SearchHit(id, row, distance)]
let hits = try segment.search(query: q, options: SearchOptions(k: 3, listSize: 64)) // graph when indexed
let payload = try segment.payload(row: hits[0].row)    // one LZ4 block per column
let report = segment.verify()                          // every checksum and invariant
print("segment \(segmentPath): \(segment.rowCount) rows")
for hit in exact { print("  exact  id \(hit.id)  distance \(hit.distance)") }
for hit in hits { print("  search id \(hit.id)  distance \(hit.distance)") }
print("  payload of the best hit: \(payload)")
print("  verify: \(report.isSound ? "sound" : "damaged")")

let coll = try StrataCollection.create(path: collectionPath, schema: schema)
// Durable when insert returns (WAL + fsync); "rank" left out of the payload is null.
try coll.insert([SegmentRow(id: 1, vector: embedding(1), payload: ["name": .string("one")]),
                 SegmentRow(id: 2, vector: embedding(2), payload: ["name": .string("two")])])
_ = try coll.delete(ids: [1])
let top = try coll.search(query: embedding(1), options: SearchOptions(k: 10))
print("collection \(collectionPath): \(try coll.count()) live row(s); hits: " +
      top.map { "id \($0.id) distance \($0.distance)" }.joined(separator: ", "))
coll.close()
let compaction = try Compactor(path: collectionPath).run()   // what the cron job does
print("compaction: \(compaction.done.count) task(s) done (nothing to merge in so small a collection)")
// README:end
