// Corruption sweeps over a small segment: flip every byte (xor 0xFF), flip one bit of every byte that
// belongs to a structure, and truncate at every length. Each damaged file must either fail to open
// with a StrataError, or open; and when it opens and verify() says sound, every id, vector, payload
// value and search result must equal the original. Whatever the damage, no accessor may trap.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

#if canImport(Glibc)
import Glibc
#endif

/// Everything observable about a segment's content.
struct SegmentSnapshot {
    var rowCount: Int
    var schema: SegmentSchema
    var ids: [UInt64]
    var rowsForIds: [Int?]
    var vectors: [[UInt32]]
    var payload: [[PayloadValue]]
    var scans: [[PayloadValue]]
    var search: [[SearchHit]]
    var batched: [[SearchHit]]

    static let queries: [[Float]] = [[1, 0.5, -0.25, 2, 0, 1], [-1, -1, 3, 0.5, 0.25, 0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]

    init(_ seg: Segment) throws {
        rowCount = seg.rowCount
        schema = seg.schema
        ids = try (0..<seg.rowCount).map { try seg.id(ofRow: $0) }
        rowsForIds = try ids.map { try seg.row(forId: $0) } + [try seg.row(forId: 424242)]
        vectors = try (0..<seg.rowCount).map { try seg.vector(row: $0).map(\.bitPattern) }
        payload = try (0..<seg.rowCount).map { try seg.payload(row: $0) }
        var scans: [[PayloadValue]] = []
        for c in seg.schema.columns {
            var values: [PayloadValue] = []
            try seg.scan(column: c.name) { _, v in values.append(v) }
            scans.append(values)
        }
        self.scans = scans
        search = try Self.queries.map { try seg.exactSearch(query: $0, k: 4) }
        batched = try seg.exactSearch(queries: Self.queries, k: 4)
    }

    func sameContent(as o: SegmentSnapshot) -> Bool {
        rowCount == o.rowCount && schema == o.schema && ids == o.ids && rowsForIds == o.rowsForIds && vectors == o.vectors
            && payload.count == o.payload.count && zip(payload, o.payload).allSatisfy { samePayload($0, $1) }
            && scans.count == o.scans.count && zip(scans, o.scans).allSatisfy { samePayload($0, $1) }
            && search == o.search && batched == o.batched
    }
}

/// Outcome tallies of a sweep (thread-safe).
final class SweepTally: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var openErrors: [String: Int] = [:]
    private(set) var soundEqual = 0
    private(set) var unsound: [String: Int] = [:]
    private(set) var failures: [String] = []
    private(set) var total = 0

    func record(_ outcome: SegmentCorruptionTests.Outcome) {
        lock.lock(); defer { lock.unlock() }
        total += 1
        switch outcome {
        case .openError(let code): openErrors[code.rawValue, default: 0] += 1
        case .soundEqual: soundEqual += 1
        case .unsound(let code): unsound[code.rawValue, default: 0] += 1
        case .failure(let message): failures.append(message)
        }
    }

    var summary: String {
        lock.lock(); defer { lock.unlock() }
        let open = openErrors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let bad = unsound.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "\(total) cases: open threw \(openErrors.values.reduce(0, +)) [\(open)]; opened+verify sound+identical \(soundEqual); "
            + "opened+verify reported \(unsound.values.reduce(0, +)) [\(bad)]; failures \(failures.count)"
    }
}

final class SegmentCorruptionTests: StrataTestCase {
    enum Outcome {
        case openError(StrataError.Code)
        case soundEqual
        case unsound(StrataError.Code)
        case failure(String)
    }

    /// 10 rows, dimension 6, float32 cosine, three columns (string, nullable int64, nullable list),
    /// 4 rows per block: 9 pages, about 36 KiB.
    static let schema = SegmentSchema(dimension: 6, elementType: .float32, metric: .cosine, columns: [
        ColumnSpec(name: "name", type: .string),
        ColumnSpec(name: "rank", type: .int64, nullable: true),
        ColumnSpec(name: "tags", type: .stringList, nullable: true),
    ])

    static func rows(elementType: VectorElementType = .float32) -> [TestRow] {
        var rng = SplitMix64(seed: 0xC0FFEE)
        let names = ["", "álpha", "β", "gamma-delta-epsilon", "日本"]
        return (0..<10).map { (r: Int) -> TestRow in
            let id: UInt64 = r == 0 ? UInt64.max : UInt64(r) * 1_000_003
            let vector: [Float] = (0..<6).map { _ in rng.gaussianish() }
            let rank: PayloadValue = r % 3 == 0 ? .null : .int64(Int64(r) - 5)
            let tagList: [String] = (0..<(r % 3)).map { "t\($0)" }
            let tags: PayloadValue = r % 4 == 1 ? .null : .stringList(tagList)
            return TestRow(id: id, vector: vector, values: [.string(names[r % 5]), rank, tags])
        }
    }

    /// Opens `path` and classifies the result; exercises every accessor on a segment that opened
    /// but is unsound (any of them may throw; none may trap).
    static func probe(path: String, reference: SegmentSnapshot) -> Outcome {
        let seg: Segment
        do { seg = try Segment.open(path: path) } catch { return .openError(error.code) }
        let report = seg.verify()
        if report.isSound {
            do {
                let snap = try SegmentSnapshot(seg)
                return snap.sameContent(as: reference) ? .soundEqual : .failure("verify sound but content differs")
            } catch {
                return .failure("verify sound but reading threw \(error)")
            }
        }
        // Unsound: poke everything; errors are fine, traps are not.
        for r in -1...(seg.rowCount) {
            _ = try? seg.id(ofRow: r)
            _ = try? seg.vector(row: r)
            _ = try? seg.payload(row: r)
            for c in seg.schema.columns { _ = try? seg.value(row: r, column: c.name) }
        }
        for id in reference.ids + [0, 1, 424242] { _ = try? seg.row(forId: id) }
        for c in seg.schema.columns {
            try? seg.scan(column: c.name) { _, _ in }
            try? seg.scan(column: c.name, rows: 2..<5) { _, _ in }
            _ = try? seg.blocks(ofColumn: c.name)
        }
        _ = seg.columnStatistics
        if seg.schema.dimension == reference.schema.dimension {
            for q in SegmentSnapshot.queries { _ = try? seg.exactSearch(query: q, k: 3) }
            _ = try? seg.exactSearch(query: SegmentSnapshot.queries[0], k: 2) { $0 % 2 == 0 }
            _ = try? seg.exactSearch(queries: SegmentSnapshot.queries, k: 3)
        }
        return .unsound(report.problems[0].code)
    }

    func makeSegment(_ name: String, elementType: VectorElementType = .float32) throws -> (path: String, bytes: [UInt8], snapshot: SegmentSnapshot) {
        let path = tmpPath(name)
        var schema = Self.schema
        schema.elementType = elementType
        try writeSegment(path: path, schema: schema, rows: Self.rows(), rowsPerBlock: 4)
        let seg = try Segment.open(path: path)
        XCTAssertTrue(seg.verify().isSound)
        return (path, Array(try Data(contentsOf: URL(fileURLWithPath: path))), try SegmentSnapshot(seg))
    }

    /// Flips `mask` into each offset of `offsets` in place (pwrite), probes, restores. `workers`
    /// copies of the file are swept in parallel.
    func sweepFlips(bytes: [UInt8], offsets: [Int], mask: UInt8, reference: SegmentSnapshot, label: String,
                    workers: Int = 2) throws -> SweepTally {
        let tally = SweepTally()
        let paths = try (0..<workers).map { w -> String in
            let p = tmpPath("\(label)-\(w).seg")
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            return p
        }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let fd = open(paths[w], O_RDWR)
            guard fd >= 0 else { tally.record(.failure("cannot open copy")); return }
            defer { close(fd) }
            for k in stride(from: w, to: offsets.count, by: workers) {
                let i = offsets[k]
                var flipped = bytes[i] ^ mask
                var original = bytes[i]
                guard pwrite(fd, &flipped, 1, off_t(i)) == 1 else { tally.record(.failure("pwrite")); return }
                let outcome = Self.probe(path: paths[w], reference: reference)
                if case .failure(let m) = outcome {
                    tally.record(.failure("\(label): byte \(i) ^ 0x\(String(mask, radix: 16)): \(m)"))
                } else {
                    tally.record(outcome)
                }
                guard pwrite(fd, &original, 1, off_t(i)) == 1 else { tally.record(.failure("pwrite")); return }
            }
        }
        return tally
    }

    func report(_ tally: SweepTally, _ label: String, seconds: Double) {
        print("corruption sweep [\(label)]: \(tally.summary) (\(String(format: "%.1f", seconds)) s)")
        XCTAssertEqual(tally.failures, [], label)
    }

    /// Offsets of bytes that lie in a structure (header, sections, directory, footer), not in the
    /// zero padding between page-aligned sections.
    func structuredOffsets(path: String, size: Int) throws -> [Int] {
        let seg = try Segment.open(path: path)
        var covered = [Bool](repeating: false, count: size)
        for i in 0..<64 { covered[i] = true }
        for s in seg.sections { for i in Int(s.offset)..<Int(s.offset + s.length) { covered[i] = true } }
        for i in (size - 64 - seg.sections.count * 64)..<size { covered[i] = true }
        return covered.indices.filter { covered[$0] }
    }

    func testFlipEveryByte() throws {
        let (path, bytes, snapshot) = try makeSegment("flip.seg")
        let start = Date()
        let tally = try sweepFlips(bytes: bytes, offsets: Array(bytes.indices), mask: 0xFF, reference: snapshot, label: "xor-ff")
        report(tally, "xor 0xFF at every byte of a \(bytes.count)-byte segment", seconds: Date().timeIntervalSince(start))
        XCTAssertEqual(tally.total, bytes.count)
        // Only the zero padding between page-aligned sections is unprotected (and carries no data):
        // every flip inside header, sections, directory or footer is detected by open or verify.
        let structured = try structuredOffsets(path: path, size: bytes.count)
        XCTAssertGreaterThan(structured.count, 0)
        XCTAssertLessThanOrEqual(tally.soundEqual, bytes.count - structured.count)
    }

    func testFlipOneBitOfEveryStructuredByte() throws {
        for elementType in VectorElementType.allCases {
            let (path, bytes, snapshot) = try makeSegment("bit-\(elementType).seg", elementType: elementType)
            let offsets = try structuredOffsets(path: path, size: bytes.count)
            let start = Date()
            for mask: UInt8 in [0x01, 0x80] {
                let tally = try sweepFlips(bytes: bytes, offsets: offsets, mask: mask, reference: snapshot, label: "bit-\(mask)")
                report(tally, "\(elementType): xor 0x\(String(mask, radix: 16)) at \(offsets.count) structured bytes",
                       seconds: Date().timeIntervalSince(start))
                // Single-bit damage inside a structure is always detected (by open or by verify).
                XCTAssertEqual(tally.soundEqual, 0, "a one-bit flip inside a checksummed structure went unnoticed")
            }
        }
    }

    func testTruncateAtEveryLength() throws {
        let (path, bytes, snapshot) = try makeSegment("trunc.seg")
        let copy = tmpPath("trunc-copy.seg")
        try Data(bytes).write(to: URL(fileURLWithPath: copy))
        let fd = open(copy, O_RDWR)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let tally = SweepTally()
        let start = Date()
        for length in stride(from: bytes.count - 1, through: 0, by: -1) {
            XCTAssertEqual(ftruncate(fd, off_t(length)), 0)
            let outcome = Self.probe(path: copy, reference: snapshot)
            switch outcome {
            case .openError: tally.record(outcome)
            default: tally.record(.failure("truncated to \(length) bytes: \(outcome)"))
            }
        }
        report(tally, "truncate a \(bytes.count)-byte segment at every length", seconds: Date().timeIntervalSince(start))
        XCTAssertEqual(tally.total, bytes.count)
        XCTAssertEqual(tally.openErrors["truncated", default: 0] + tally.openErrors["badMagic", default: 0], bytes.count)
        _ = path
    }
}
