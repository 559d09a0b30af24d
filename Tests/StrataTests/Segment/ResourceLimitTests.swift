// Resource limits: files past 2^32 bytes, and a full disk during writes.
//
// - A segment whose sections all lie beyond 4 GiB: a small indexed segment is relocated into a sparse
//   file (every section moved up by 5 GiB, directory entries, footer and their checksums rewritten;
//   SEGMENT-FORMAT.md allows gaps between sections and nothing covers them), so every u64 offset the reader
//   follows is > 2^32 while the disk holds only a few pages. It must open, verify sound, and return
//   exactly the rows, payload and search results of the original. Cheap: runs in the normal suite.
// - `STRATA_LARGE_TESTS=1`: a segment whose vectors section itself is longer than 2^32 bytes
//   (262,400 rows x 4096-d float32), written by SegmentWriter, opened and searched. Off by default:
//   about 4 GiB of real writes, and a debug build appends only ~5 MB/s (2.2 GiB in 8 min when first
//   tried, not run to completion); use a release build:
//   `STRATA_LARGE_TESTS=1 swift test -c release --filter ResourceLimitTests`.
// - Disk full: `strata build` and `strata flush` run in a child under a file-size limit
//   (`ulimit -f`, RLIMIT_FSIZE, with SIGXFSZ ignored so that write(2) fails with EFBIG instead of
//   killing the process). They must fail with exit 2 and an I/O message, leave nothing at the
//   final path and no temporary files, and a collection must still open with every acknowledged row.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

#if canImport(Glibc)
import Glibc
#endif

final class ResourceLimitTests: StrataTestCase {
    // MARK: - Past 2^32 bytes

    private func loadU64(_ b: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
    }

    private func storeU64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
        for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    private func xxh3(_ b: ArraySlice<UInt8>) -> UInt64 { b.withUnsafeBytes { Checksum.xxh3($0) } }

    /// Copies the segment at `source` to a sparse file at `target` with every section moved up by
    /// `shift` bytes (a multiple of 4096): page 0 stays, then a hole, then the sections, directory and
    /// footer (SEGMENT-FORMAT.md sections 4, 5 and 8).
    private func relocate(_ source: String, to target: String, shift: UInt64) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        let size = bytes.count
        let footerAt = size - 64
        var footer = Array(bytes[footerAt...])
        let dirOffset = Int(loadU64(footer, 0))
        let dirLength = Int(loadU64(footer, 8))
        XCTAssertEqual(dirOffset + dirLength, footerAt)
        var directory = Array(bytes[dirOffset..<footerAt])
        for e in stride(from: 0, to: dirLength, by: 64) { storeU64(&directory, e + 8, loadU64(directory, e + 8) + shift) }
        storeU64(&footer, 0, UInt64(dirOffset) + shift)
        storeU64(&footer, 24, xxh3(directory[...]))
        storeU64(&footer, 32, UInt64(size) + shift)
        storeU64(&footer, 48, xxh3(footer[0..<48]))

        let fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        func put(_ part: [UInt8], at offset: UInt64) {
            let n = part.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
            XCTAssertEqual(n, part.count, "pwrite at \(offset)")
        }
        put(Array(bytes[0..<4096]), at: 0)
        put(Array(bytes[4096..<dirOffset]), at: 4096 + shift)
        put(directory, at: UInt64(dirOffset) + shift)
        put(footer, at: UInt64(footerAt) + shift)
    }

    func testSegmentWithEverySectionPast4GiBOpensVerifiesAndSearches() throws {
        // 2,500 rows x 16-d with an ANN index, two payload columns.
        var rng = SplitMix64(seed: 4242)
        let schema = SegmentSchema(dimension: 16, metric: .l2, columns: [ColumnSpec(name: "n", type: .int64), ColumnSpec(name: "s", type: .string)])
        let rows = (0..<2500).map { i in
            SegmentRow(id: UInt64(i) * 7 + 3, vector: (0..<16).map { _ in rng.gaussianish() }, payload: ["n": .int64(Int64(i)), "s": .string("row \(i)")])
        }
        var options = SegmentWriterOptions()
        var index = IndexOptions()
        index.minimumRows = 0
        index.pqSubspaces = 4
        index.graph.maxDegree = 16
        index.graph.buildListSize = 32
        index.graph.threads = 2
        options.index = index
        options.rowsPerBlock = 256
        let small = tmpPath("small.seg"), big = tmpPath("big.seg")
        let writer = try SegmentWriter(path: small, schema: schema, options: options)
        try writer.append(rows)
        try writer.finish()

        let shift: UInt64 = 5 << 30
        try relocate(small, to: big, shift: shift)
        var st = stat()
        XCTAssertEqual(stat(big, &st), 0)
        XCTAssertGreaterThan(UInt64(st.st_size), UInt64(1) << 32)
        XCTAssertLessThan(Int(st.st_blocks) * 512, 64 << 20, "the relocated file should be sparse")

        let a = try Segment.open(path: small)
        let b = try Segment.open(path: big)
        defer { a.close(); b.close() }
        XCTAssertGreaterThan(b.fileBytes, UInt64(1) << 32)
        XCTAssertTrue(b.sections.allSatisfy { $0.offset > UInt64(1) << 32 }, "every section must sit past 2^32")
        let report = b.verify()
        XCTAssertTrue(report.isSound, "\(report.problems)")
        XCTAssertTrue(b.hasIndex)
        XCTAssertEqual(b.rowCount, a.rowCount)
        for r in [0, 1, 1234, 2499] {
            XCTAssertEqual(try b.id(ofRow: r), try a.id(ofRow: r))
            XCTAssertEqual(try b.vector(row: r), try a.vector(row: r))
            XCTAssertTrue(samePayload(try b.payload(row: r), try a.payload(row: r)))
            XCTAssertEqual(try b.row(forId: try a.id(ofRow: r)), r)
        }
        var scanned = 0
        try b.scan(column: "s") { _, _ in scanned += 1 }
        XCTAssertEqual(scanned, 2500)
        for q in 0..<5 {
            let query = (0..<16).map { _ in rng.gaussianish() }
            XCTAssertEqual(try b.exactSearch(query: query, k: 10), try a.exactSearch(query: query, k: 10))
            XCTAssertEqual(try b.search(query: query, options: SearchOptions(k: 10, listSize: 48)),
                           try a.search(query: query, options: SearchOptions(k: 10, listSize: 48)), "query \(q)")
        }
    }

    /// Opt-in: a vectors section longer than 2^32 bytes, written for real.
    func testVectorsSectionOver4GiBWhenLargeTestsEnabled() throws {
        guard ProcessInfo.processInfo.environment["STRATA_LARGE_TESTS"] == "1" else {
            throw XCTSkip("set STRATA_LARGE_TESTS=1 to write a segment with a > 4 GiB vectors section (about 4 GiB of disk)")
        }
        let dimension = 4096, count = 262_400  // 262,400 x 16,384 B = 4.0 GiB + 6.6 MiB
        let path = tmpPath("large.seg")
        let writer = try SegmentWriter(path: path, schema: SegmentSchema(dimension: dimension, metric: .l2))
        var vector = [Float](repeating: 0, count: dimension)
        for i in 0..<count {
            // Row i is i/1000 on axis i % dimension (and a constant 1 on axis 0 so none is zero).
            vector[0] = 1
            vector[i % dimension] += Float(i) / 1000
            try vector.withUnsafeBufferPointer { v throws(StrataError) in try writer.append(id: UInt64(i), vector: v, values: []) }
            vector[i % dimension] = 0
        }
        try writer.finish()
        let seg = try Segment.open(path: path)
        defer { seg.close() }
        let vectors = try XCTUnwrap(seg.sections.first { $0.kind == .vectors })
        XCTAssertGreaterThan(vectors.length, UInt64(1) << 32)
        XCTAssertEqual(seg.rowCount, count)
        let last = count - 1
        var expected = [Float](repeating: 0, count: dimension)
        expected[0] = 1
        expected[last % dimension] += Float(last) / 1000
        XCTAssertEqual(try seg.vector(row: last), expected)
        XCTAssertEqual(try seg.row(forId: UInt64(last)), last)
        let hits = try seg.exactSearch(query: expected, k: 1)
        XCTAssertEqual(hits.first?.id, UInt64(last))
    }

    // MARK: - Disk full

    /// Runs `strata args...` in a child with a file-size limit of `limitKiB` KiB and SIGXFSZ ignored.
    private func runStrataLimited(_ args: [String], limitKiB: Int) throws -> CLIResult {
        try runStrata(args, scratch: tmp, fileSizeLimitKiB: limitKiB)
    }

    func testBuildOnAFullDiskFailsWithIOAndLeavesNothing() throws {
        let outDir = tmpPath("out")
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let target = outDir + "/sample.seg"
        let base = repoRoot.appendingPathComponent("Fixtures/sample/base.fvecs").path  // 2,000 x 32-d: 256 KB of vectors
        let r = try runStrataLimited(["build", "--vectors", base, "--out", target], limitKiB: 64)
        XCTAssertFalse(r.crashed, "strata build was killed by a signal: \(r.stderr)")
        XCTAssertEqual(r.status, 2, "stderr: \(r.stderr)")
        XCTAssertTrue(r.stderr.lowercased().contains("too large") || r.stderr.contains("EFBIG") || r.stderr.lowercased().contains("write"),
                      "the error should say the write failed: \(r.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: target), "no partial segment at the final path")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir), [], "temporary files must be removed")

        // The same command without the limit succeeds (the limit, not the input, caused the failure).
        let ok = try runStrata(["build", "--vectors", base, "--out", target], scratch: tmp)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(try Segment.open(path: target).verify().isSound)
    }

    func testInsertOnAFullDiskKeepsWholeBatchesAndTheCollectionStaysWritable() throws {
        // `strata insert` of the 2,000-row sample in batches of 100 (one WAL record each) under a
        // 160 KiB file-size limit (2,000 x 128 B of vectors need about 290 KB of WAL): the WAL fills up part-way through, a record is cut short, and the
        // command fails with an I/O error. Reopening must replay exactly the whole batches before it
        // (ids 0..<100k), drop the torn record, and accept new writes.
        let dir = tmpPath("coll")
        let base = repoRoot.appendingPathComponent("Fixtures/sample/base.fvecs").path
        XCTAssertEqual(try runStrata(["create", dir, "--dim", "32", "--metric", "l2"], scratch: tmp).status, 0)
        let r = try runStrataLimited(["insert", dir, "--vectors", base, "--batch", "100", "--no-index"], limitKiB: 160)
        XCTAssertFalse(r.crashed, "strata insert was killed by a signal: \(r.stderr)")
        XCTAssertEqual(r.status, 2, "stdout: \(r.stdoutText) stderr: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("io"), r.stderr)

        var o = CollectionOptions()
        o.index = nil
        let c = try StrataCollection.open(path: dir, access: .readWrite, options: o)
        defer { c.close() }
        let count = try c.count()
        XCTAssertGreaterThan(count, 0)
        XCTAssertLessThan(count, 2000)
        XCTAssertEqual(count % 100, 0, "only whole batches may survive")
        let vectors = try VectorFile(path: base)
        for id in [0, count / 2, count - 1] {
            XCTAssertEqual(try c.get(id: UInt64(id))?.vector, vectors.row(id), "row \(id)")
        }
        XCTAssertNil(try c.get(id: UInt64(count)), "the batch that failed must not be visible")
        try c.insert([SegmentRow(id: 5_000_000, vector: vectors.row(0))])
        XCTAssertEqual(try c.count(), count + 1)
    }

    func testFlushOnAFullDiskKeepsEveryAcknowledgedRow() throws {
        let dir = tmpPath("coll")
        let dim = 64
        let schema = SegmentSchema(dimension: dim, metric: .l2, columns: [ColumnSpec(name: "n", type: .int64)])
        var o = CollectionOptions()
        o.flushThresholdRows = 1_000_000
        o.index = nil
        o.obsoleteFileGraceSeconds = 0
        var rng = SplitMix64(seed: 99)
        let rows = (0..<300).map { i in SegmentRow(id: UInt64(i) + 1000, vector: (0..<dim).map { _ in rng.gaussianish() }, payload: ["n": .int64(Int64(i))]) }
        do {
            let c = try StrataCollection.create(path: dir, schema: schema, options: o)
            for batch in stride(from: 0, to: rows.count, by: 50) { try c.insert(Array(rows[batch..<batch + 50])) }
            c.close()
        }
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        let walBytes = try before.filter { $0.hasPrefix("wal-") }.map {
            (try FileManager.default.attributesOfItem(atPath: dir + "/" + $0)[.size] as? Int) ?? 0
        }.reduce(0, +)
        // The WAL still fits; the segment (the same vectors plus at least four pages) does not.
        let limitKiB = walBytes / 1024 + 4
        XCTAssertGreaterThan(300 * dim * 4 + 4 * 4096, limitKiB * 1024)

        let r = try runStrataLimited(["flush", dir, "--no-index", "--grace-seconds", "0"], limitKiB: limitKiB)
        XCTAssertFalse(r.crashed, "strata flush was killed by a signal: \(r.stderr)")
        XCTAssertEqual(r.status, 2, "stdout: \(r.stdoutText) stderr: \(r.stderr)")
        let after = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        XCTAssertTrue(after.filter { $0.hasSuffix(".seg") || $0.contains(".tmp-") }.isEmpty,
                      "no segment or temporary file may be left after the failed flush: \(after.subtracting(before).sorted())")

        // Every acknowledged row is still there, once, with its vector.
        let c = try StrataCollection.open(path: dir, access: .readWrite, options: o)
        XCTAssertEqual(try c.count(), rows.count)
        for row in rows where row.id % 37 == 0 {
            let got = try XCTUnwrap(try c.get(id: row.id))
            XCTAssertEqual(got.vector, row.vector)
        }
        let hits = try c.search(query: rows[7].vector, options: SearchOptions(k: 1, exact: true))
        XCTAssertEqual(hits.first?.id, rows[7].id)
        // And without the limit the flush goes through.
        XCTAssertNotNil(try c.flush())
        XCTAssertEqual(try c.count(), rows.count)
        c.close()
    }
}
