// The Swift code of the DocC articles (Sources/Strata/Strata.docc: GettingStarted.md,
// FilteringAndHybridSearch.md, CollectionsAndCompaction.md), compiled and run here so that the
// articles keep matching the API. Keep them in step: a test checks that every Swift line of the
// articles' code blocks appears in this file.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class DocumentationExampleTests: StrataTestCase {
    func testGettingStartedRuns() throws {
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(tmp.path))   // the article's relative paths
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        var printed: [String] = []
        func print(_ items: Any...) { printed.append(items.map { "\($0)" }.joined(separator: " ")) }

        // --- article code, "Write a segment" ---
        let schema = SegmentSchema(dimension: 4, elementType: .float32, metric: .cosine,
                                   columns: [ColumnSpec(name: "name", type: .string),
                                             ColumnSpec(name: "rank", type: .int64, nullable: true)])
        var options = SegmentWriterOptions()
        options.index = IndexOptions()         // build a PQ + Vamana index at finish(); omit for exact search only
        let writer = try SegmentWriter(path: "a.seg", schema: schema, options: options)
        try writer.append([
            SegmentRow(id: 1, vector: [1, 0, 0, 0], payload: ["name": .string("one"), "rank": .int64(1)]),
            SegmentRow(id: 2, vector: [0, 1, 0, 0], payload: ["name": .string("two")]),   // rank is null
        ])
        try writer.finish()                    // temporary file, fsync, rename, fsync of the directory

        // --- "Search it" ---
        let segment = try Segment.open(path: "a.seg")      // maps the file and validates its structure
        let query: [Float] = [0.9, 0.1, 0, 0]
        let exact = try segment.exactSearch(query: query, k: 10)
        let hits = try segment.search(query: query, options: SearchOptions(k: 10, listSize: 64))
        for hit in hits {
            print(hit.id, hit.distance, try segment.value(row: hit.row, column: "name"))
        }
        let report = segment.verify()                     // every checksum and invariant
        print(report.isSound)

        // --- "Open a collection" ---
        let collection = try StrataCollection.create(path: "coll", schema: schema)
        try collection.insert([SegmentRow(id: 10, vector: [0, 0, 1, 0], payload: ["name": .string("ten")])])
        let top = try collection.search(query: query, options: SearchOptions(k: 5))
        _ = try collection.delete(ids: [10])
        collection.close()

        // Later, or in another process:
        let again = try StrataCollection.open(path: "coll")
        print(try again.count())

        // --- "Errors" ---
        do {
            try again.insert([SegmentRow(id: 11, vector: [1, 1, 0, 0])])   // no "name"
        } catch {
            // The library's calls throw StrataError itself (typed throws).
            print(error.code == .typeMismatch, error)
        }
        again.close()

        // What the article promises.
        XCTAssertEqual(exact.map(\.id), [1, 2])
        XCTAssertEqual(hits.map(\.id), [1, 2])
        XCTAssertEqual(top.map(\.id), [10])
        XCTAssertEqual(printed.count, 5, "\(printed)")
        XCTAssertEqual(printed.prefix(4).map { $0.split(separator: " ").last.map(String.init) }, ["one", "two", "true", "0"].map(Optional.some), "\(printed)")
        XCTAssertTrue(printed[4].hasPrefix("true typeMismatch: "), printed[4])
    }

    /// The code of "Filtering and hybrid search" and "Collections and compaction from cron", run
    /// against a small segment with a BM25 column and a collection.
    func testFilteringHybridAndCollectionArticlesRun() throws {
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(tmp.path))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        var printed: [String] = []
        func print(_ items: Any...) { printed.append(items.map { "\($0)" }.joined(separator: " ")) }

        let schema = SegmentSchema(dimension: 2, elementType: .float32, metric: .l2,
                                   columns: [ColumnSpec(name: "month", type: .string), ColumnSpec(name: "rank", type: .int64, nullable: true),
                                             ColumnSpec(name: "summary", type: .string)])
        var writerOptions = SegmentWriterOptions()
        writerOptions.search = SearchSectionOptions(indexedColumns: ["month"], bm25Columns: ["summary"])
        let writer = try SegmentWriter(path: "f.seg", schema: schema, options: writerOptions)
        let months = ["2024-05", "2024-06"], summaries = ["a vector storage engine", "a cooking blog"]
        var rows: [SegmentRow] = []
        for i in 0..<40 {
            let rank: PayloadValue = i % 4 == 0 ? .null : .int64(Int64(i))
            let payload: [String: PayloadValue] = ["month": .string(months[i % 2]), "rank": rank, "summary": .string(summaries[i % 2])]
            rows.append(SegmentRow(id: UInt64(i), vector: [Float(i), 0], payload: payload))
        }
        try writer.append(rows)
        try writer.finish()
        let segment = try Segment.open(path: "f.seg")
        let q: [Float] = [0, 0]

        // --- FilteringAndHybridSearch.md ---
        let filter = Filter(must: [.match(key: "month", value: .string("2024-05")),
                                   .range(key: "rank", FilterRange(lte: .int(10)))],
                            mustNot: [.isNull(key: "rank")])
        let same = try Filter(json: """
            {"must": [{"key": "month", "match": {"value": "2024-05"}},
                      {"key": "rank", "range": {"lte": 10}}],
             "must_not": [{"is_null": {"key": "rank"}}]}
            """)
        let result = try segment.search(query: q, filter: filter, options: FilteredSearchOptions(k: 10))
        print(result.plan.kind, result.hits.map(\.id))
        let query = HybridQuery(dense: q, text: (column: "summary", query: "vector storage engine"),
                                filter: filter, k: 10)
        for hit in try segment.hybridSearch(query) {
            print(hit.id, hit.score, hit.denseRank as Any, hit.textRank as Any)
        }
        XCTAssertEqual(filter, same)
        XCTAssertEqual(result.hits.map(\.id), [2, 6, 10], "month 2024-05 (even ids), rank <= 10, rank not null (id % 4 != 0)")
        XCTAssertEqual(printed.count, 4, "\(printed)")

        // --- CollectionsAndCompaction.md ---
        let created = try StrataCollection.create(path: "coll", schema: schema)
        try created.insert([SegmentRow(id: 1, vector: [1, 1], payload: ["month": .string("2024-05"), "summary": .string("x")])])
        created.close()
        let collection = try StrataCollection.open(path: "coll")
        let hits = try collection.search(query: q, filter: Filter.only(.match(key: "month", value: .string("2024-05"))),
                                         options: SearchOptions(k: 10))
        XCTAssertEqual(hits.map(\.id), [1])
        _ = try collection.flush()
        collection.close()
        let result2 = try compactFromTimer()
        XCTAssertFalse(result2.lockBusy)
    }

    /// The article's in-process compaction block, in its own scope (its `result` is a
    /// ``CompactionResult``).
    func compactFromTimer() throws -> CompactionResult {
        var printed: [String] = []
        func print(_ items: Any...) { printed.append(items.map { "\($0)" }.joined(separator: " ")) }
        let result = try Compactor(path: "coll").run()
        if !result.lockBusy { print("\(result.done.count) tasks, \(result.filesRemoved) files removed") }
        return result
    }

    /// Every line of the articles' Swift blocks (except the package manifest) appears in the tests above.
    func testArticlesMatchThisTest() throws {
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let sourceLines = Set(source.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        for (name, minimumBlocks) in [("GettingStarted", 4), ("FilteringAndHybridSearch", 3), ("CollectionsAndCompaction", 2)] {
            let article = try String(contentsOf: repoRoot.appendingPathComponent("Sources/Strata/Strata.docc/\(name).md"), encoding: .utf8)
            let blocks = article.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```").first ?? "" }
            XCTAssertGreaterThanOrEqual(blocks.count, minimumBlocks, name)
            for block in blocks where !block.contains("Package.swift") {
                for line in block.split(separator: "\n") {
                    let t = line.trimmingCharacters(in: .whitespaces)
                    if t.isEmpty || t == "import Strata" { continue }
                    XCTAssertTrue(sourceLines.contains(t), "\(name).md line not in DocumentationExampleTests: \(t)")
                }
            }
        }
    }
}
