// The code of the DocC article "Getting started" (Sources/Strata/Strata.docc/GettingStarted.md),
// compiled and run here so that the article keeps matching the API. Keep the two in step: the
// test checks that every Swift line of the article's segment and collection blocks appears below.
import Foundation
import XCTest
@testable import Strata

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

    /// Every line of the article's Swift blocks (except the package manifest) appears in the test above.
    func testArticleMatchesThisTest() throws {
        let article = try String(contentsOf: repoRoot.appendingPathComponent("Sources/Strata/Strata.docc/GettingStarted.md"), encoding: .utf8)
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let sourceLines = Set(source.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        let blocks = article.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```").first ?? "" }
        XCTAssertGreaterThanOrEqual(blocks.count, 4)
        for block in blocks where !block.contains("Package.swift") {
            for line in block.split(separator: "\n") {
                let t = line.trimmingCharacters(in: .whitespaces)
                if t.isEmpty || t == "import Strata" { continue }
                XCTAssertTrue(sourceLines.contains(t), "GettingStarted.md line not in DocumentationExampleTests: \(t)")
            }
        }
    }
}
