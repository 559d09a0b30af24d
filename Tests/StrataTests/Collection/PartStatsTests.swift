// `partStats()`: the parts of every file add up to its size on disk and the collection's files to
// the total; every kind of part is named; page-cache residency stays within each part's bytes, is
// zero after the file is evicted (posix_fadvise DONTNEED) and full after its bytes are read.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex

final class PartStatsTests: CollectionTestCase {
    func makeCollection() throws -> StrataCollection {
        var o = options()
        var ix = IndexOptions()
        ix.minimumRows = 100
        o.index = ix
        o.search = SearchSectionOptions(indexedColumns: ["ver"], bm25Columns: ["tag"])
        let c = try StrataCollection.create(path: tmpPath("c"), schema: Self.schema, options: o)
        try c.insert(rows(0..<400))
        try c.flush()
        try c.insert(rows(400..<450))
        try c.delete(ids: [1, 2, 3])
        try c.flush()
        try c.insert(rows(1000..<1010)) // in the WAL
        return c
    }

    func fileSize(_ path: String) throws -> UInt64 {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
    }

    func testPartsAddUpToTheFiles() throws {
        let c = try makeCollection()
        let p = try c.partStats()
        let files = try FileManager.default.contentsOfDirectory(atPath: c.path)
        let snap = try c.snapshot()
        var expected = snap.version.segments.map(\.entry.name) + snap.version.segments.compactMap(\.entry.deleteFile)
        expected.append(CollectionFiles.walName(snap.version.manifest.walSequence))
        XCTAssertEqual(p.files.map(\.name).sorted(), expected.sorted())
        var total: UInt64 = 0
        for f in p.files {
            XCTAssertTrue(files.contains(f.name))
            let size = try fileSize("\(c.path)/\(f.name)")
            XCTAssertEqual(f.bytes, size, f.name)
            XCTAssertEqual(f.parts.reduce(0) { $0 + $1.bytes }, size, "parts of \(f.name) add up to its size: \(f.parts)")
            for part in f.parts { XCTAssertLessThanOrEqual(part.residentBytes, part.bytes, "\(f.name) \(part.name)") }
            total += size
        }
        XCTAssertEqual(p.totalBytes, total)
        XCTAssertEqual(p.totals.reduce(0) { $0 + $1.bytes }, total)
        let names = Set(p.totals.map(\.name))
        for name in ["layout", "vectors", "ids", "id_index", "schema", "column:ver", "column:tag", "pq_codebook", "pq_codes", "graph",
                     "payload_index", "text_index", "bitmap", "wal"] {
            XCTAssertTrue(names.contains(name), "\(name) missing from \(names.sorted())")
        }
        // The second segment (50 rows, too few for an index) has a vectors section: its part is the
        // section's length. The first (400 rows, indexed, format 2.0) keeps its vectors in the graph.
        let seg = snap.version.segments[1].segment
        let vectors = try XCTUnwrap(seg.sections.first { $0.kind == .vectors })
        XCTAssertEqual(p.files.first { $0.name == snap.version.segments[1].entry.name }?.parts.first { $0.name == "vectors" }?.bytes, vectors.length)
        let indexed = snap.version.segments[0]
        XCTAssertNil(indexed.segment.sections.first { $0.kind == .vectors })
        XCTAssertEqual(p.files.first { $0.name == indexed.entry.name }?.parts.first { $0.name == "graph" }?.bytes,
                       indexed.segment.sections.first { $0.kind == .graph }?.length)
    }

    func testResidencyFollowsThePageCache() throws {
        // The collection (and its mappings) released before the eviction: the kernel keeps pages
        // that a process has mapped.
        let (dir, path, vectors, file) = try { () throws -> (String, String, SectionInfo, Int) in
            let c = try makeCollection()
            defer { c.close() }
            let seg = try c.snapshot().version.segments[1].segment // unindexed: it has a vectors section
            let file = try XCTUnwrap(try c.partStats().files.firstIndex { seg.path.hasSuffix("/" + $0.name) })
            return (c.path, seg.path, try XCTUnwrap(seg.sections.first { $0.kind == .vectors }), file)
        }()
        let range = vectors.offset..<(vectors.offset + vectors.length)
        FileSystem.evictFromPageCache(path)
        let afterEviction = try PageResidency(path: path)
        if afterEviction.residentBytes(0..<afterEviction.length) == afterEviction.length {
            throw XCTSkip("this file system keeps every page after POSIX_FADV_DONTNEED (tmpfs?): residency cannot be seen to drop")
        }
        let evicted = afterEviction.residentBytes(range)
        // Measuring reads only the footer and directory at the file's end: the vectors stay out.
        let measured = try CollectionPartStats.measure(directory: dir)
        XCTAssertEqual(measured.files[file].parts.first { $0.name == "vectors" }?.residentBytes, evicted)
        XCTAssertEqual(evicted, 0, "eviction left \(evicted) of \(vectors.length) bytes resident")
        // Reading the section's bytes brings them back.
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: path))
        try handle.seek(toOffset: vectors.offset)
        _ = try handle.read(upToCount: Int(vectors.length))
        try handle.close()
        let read = try PageResidency(path: path).residentBytes(range)
        XCTAssertEqual(read, vectors.length, "every page of the section is resident after reading it")
        XCTAssertEqual(try CollectionPartStats.measure(directory: dir).files[file].parts.first { $0.name == "vectors" }?.residentBytes, vectors.length)
        XCTAssertEqual(try PageResidency(path: path).residentBytes(0..<0), 0)
        XCTAssertEqual(try PageResidency(path: path).residentBytes(range.upperBound..<UInt64.max), try PageResidency(path: path).residentBytes(range.upperBound..<(try fileSize(path))))
    }
}
