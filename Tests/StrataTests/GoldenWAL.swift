// Generators of the golden collections with WAL records (tools/make-fixtures/README.md):
// - Fixtures/collection-wal1.0/: written once by the WAL format 1.0 writer (commit e4a3819) through
//   `GoldenWAL.populate`; never regenerated, it proves that a 1.0 WAL still opens and replays.
// - Fixtures/collection-wal2.0/: MANIFEST + a format 2.0 WAL, no segment, so its bytes are a pure
//   function of `GoldenWAL`; `WALGoldenTests` regenerates it and compares byte for byte.
import Foundation
@testable import Strata

enum GoldenWAL {
    /// GoldenV1's schema: every payload type, nullable and not.
    static var schema: SegmentSchema { GoldenV1.schema }

    /// Row `r` in version `v`: GoldenV1's id, vector and values of row `r + 20 v`.
    static func row(_ r: Int, _ v: Int = 0) -> SegmentRow {
        let values = GoldenV1.values(r + 20 * v)
        var payload: [String: PayloadValue] = [:]
        for (spec, value) in zip(schema.columns, values) { payload[spec.name] = value }
        return SegmentRow(id: GoldenV1.id(r), vector: GoldenV1.vector(r + 20 * v), payload: payload)
    }

    static func rows(_ rs: some Sequence<Int>, _ v: Int = 0) -> [SegmentRow] { rs.map { row($0, v) } }

    static func options() -> CollectionOptions {
        var o = CollectionOptions()
        o.index = nil
        o.rowsPerBlock = 4
        o.flushThresholdRows = 1_000_000
        o.obsoleteFileGraceSeconds = 0
        return o
    }

    static var v1URL: URL { repoRoot.appendingPathComponent("Fixtures/collection-wal1.0") }
    static var v2URL: URL { repoRoot.appendingPathComponent("Fixtures/collection-wal2.0") }

    /// The 1.0 fixture's history: rows 0..<8 flushed; rows 2 and 5 deleted and flushed (a bitmap);
    /// then four WAL records: insert 8..<12, upsert 3 and 9 (version 1), delete 4 and 10, insert 12..<14.
    static func populate(_ c: StrataCollection) throws {
        try c.insert(rows(0..<8))
        try c.flush()
        try c.delete(ids: [GoldenV1.id(2), GoldenV1.id(5)])
        try c.flush()
        try c.insert(rows(8..<12))
        try c.upsert(rows([3, 9], 1))
        try c.delete(ids: [GoldenV1.id(4), GoldenV1.id(10)])
        try c.insert(rows(12..<14))
    }

    /// Live content after `populate`: row -> version.
    static let v1Content: [Int: Int] = [0: 0, 1: 0, 3: 1, 6: 0, 7: 0, 8: 0, 9: 1, 11: 0, 12: 0, 13: 0]
    /// WAL records `populate` leaves in the current WAL.
    static let v1Records = 4
}
