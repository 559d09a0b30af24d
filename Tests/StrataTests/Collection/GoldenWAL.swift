// Generators of the golden collections with WAL records (tools/make-fixtures/README.md):
// - Fixtures/collection-wal1.0/: written once by the WAL format 1.0 writer (commit e4a3819) through
//   `GoldenWAL.populate`; never regenerated, it proves that a 1.0 WAL still opens and replays.
// - Fixtures/collection-wal2.0/: MANIFEST + a format 2.0 WAL, no segment, so its bytes are a pure
//   function of `GoldenWAL`; `WALGoldenTests` regenerates it and compares byte for byte.
import Foundation
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

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

extension GoldenWAL {
    /// The 2.0 fixture's manifest time (2026-01-01T00:00:00Z), fixed so its bytes are reproducible.
    static let v2CreatedMilliseconds: UInt64 = 1_767_225_600_000

    static func input(_ r: Int, _ v: Int = 0) -> BufferedInput {
        BufferedInput(id: GoldenV1.id(r), vector: GoldenV1.vector(r + 20 * v), values: GoldenV1.values(r + 20 * v))
    }

    /// The 2.0 fixture's records: insert 0..<6, upsert 1 and 2 (version 1), delete 3, insert 6..<8.
    static var v2Records: [WALRecord] {
        [.put(rows: (0..<6).map { input($0) }, upsert: false), .put(rows: [input(1, 1), input(2, 1)], upsert: true),
         .delete(ids: [GoldenV1.id(3)]), .put(rows: (6..<8).map { input($0) }, upsert: false)]
    }

    /// Live content after `v2Records`: row -> version.
    static let v2Content: [Int: Int] = [0: 0, 1: 1, 2: 1, 4: 0, 5: 0, 6: 0, 7: 0]

    /// The 2.0 fixture's files: MANIFEST (generation 1, WAL 1, no segment) and a format 2.0 WAL.
    static func v2Files() -> [String: [UInt8]] {
        let manifest = Manifest(generation: 1, walSequence: 1, createdMilliseconds: v2CreatedMilliseconds, schema: schema, segments: [], obsolete: [])
        var wal = WALFormat.header(sequence: 1, version: .v2)
        for (i, r) in v2Records.enumerated() { wal += WALFormat.encode(r, schema: schema, version: .v2, number: UInt64(i + 1)) }
        return ["MANIFEST": manifest.encoded(), CollectionFiles.walName(1): wal]
    }
}

// Fixtures/collection-wal3.0/: MANIFEST + a format 3.0 WAL whose puts carry sparse vectors on some
// rows (not all), a pure function of `GoldenWAL` like the 2.0 one.
extension GoldenWAL {
    static var v3URL: URL { repoRoot.appendingPathComponent("Fixtures/collection-wal3.0") }

    /// Row `r`'s canonical sparse vector in version `v`: none for every third row, else two or three
    /// entries (dyadic weights, so every dot product is exact).
    static func sparse(_ r: Int, _ v: Int = 0) -> SparseVector? {
        guard r % 3 != 2 else { return nil }
        let n = 2 + (r + v) % 2
        let indices = (0..<n).map { UInt32(($0 * 7 + r * 3 + v) % 16 + 16 * $0) }
        return SparseVector(indices: indices, values: (0..<n).map { Float($0 + r % 4 + 1) / 4 })
    }

    static func sparseInput(_ r: Int, _ v: Int = 0) -> BufferedInput {
        var i = input(r, v)
        i.sparse = sparse(r, v)
        return i
    }

    /// The 3.0 fixture's records: insert 0..<6 (sparse on some rows), upsert 1 (version 1, with a
    /// sparse vector) and 4 (version 1, without one: it loses its sparse vector), delete 3, insert
    /// 6..<8 without any sparse vector (a put without flag bit 1 in a 3.0 file).
    static var v3Records: [WALRecord] {
        [.put(rows: (0..<6).map { sparseInput($0) }, upsert: false), .put(rows: [sparseInput(1, 1), input(4, 1)], upsert: true),
         .delete(ids: [GoldenV1.id(3)]), .put(rows: (6..<8).map { input($0) }, upsert: false)]
    }

    /// Live content after `v3Records`: row -> (version, whether it has its sparse vector).
    static let v3Content: [Int: (version: Int, sparse: Bool)] = [0: (0, true), 1: (1, true), 2: (0, false), 4: (1, false),
                                                                 5: (0, false), 6: (0, false), 7: (0, false)]

    /// The 3.0 fixture's files: MANIFEST (generation 1, WAL 1, no segment) and a format 3.0 WAL.
    static func v3Files() -> [String: [UInt8]] {
        let manifest = Manifest(generation: 1, walSequence: 1, createdMilliseconds: v2CreatedMilliseconds, schema: schema, segments: [], obsolete: [])
        var wal = WALFormat.header(sequence: 1, version: .v3)
        for (i, r) in v3Records.enumerated() { wal += WALFormat.encode(r, schema: schema, version: .v3, number: UInt64(i + 1)) }
        return ["MANIFEST": manifest.encoded(), CollectionFiles.walName(1): wal]
    }
}
