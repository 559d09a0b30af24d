// LineReader cursors started at a recorded position (StrataTools/LineReader.swift) and InputRows
// started from recorded side-file positions read the same lines, with the same line numbers, as
// cursors that skipped from line 1.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataTools

final class LineReaderPositionTests: StrataTestCase {
    func testCursorAtARecordedPositionReadsWhatASkippingCursorReads() throws {
        // Empty lines, CRLF, a multi-byte character and no final newline.
        let text = "a\r\n\nb\tc\n\u{00E9}t\u{00E9}\r\n\n\nlast-but-one\nlast"
        let path = tmpPath("lines.txt")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let reader = try LineReader(path: path)
        var all: [String] = []
        var walker = reader.makeCursor()
        var positions: [LineReader.Position] = [walker.position]
        while let line = try walker.next() {
            all.append(line)
            positions.append(walker.position)
        }
        XCTAssertEqual(all, ["a", "", "b\tc", "\u{00E9}t\u{00E9}", "", "", "last-but-one", "last"])
        for (k, position) in positions.enumerated() {
            XCTAssertEqual(position.lineNumber, k)
            var skipping = reader.makeCursor()
            XCTAssertEqual(skipping.skip(k), k)
            var started = reader.makeCursor(at: position)
            XCTAssertEqual(started.lineNumber, skipping.lineNumber)
            XCTAssertEqual(started.position, skipping.position)
            while true {
                let (a, b) = (try started.next(), try skipping.next())
                XCTAssertEqual(a, b, "from line \(k + 1)")
                XCTAssertEqual(started.lineNumber, skipping.lineNumber)
                if a == nil || b == nil { break }
            }
            XCTAssertEqual(started.hasMoreContent(), false)
        }
        // A position past the end: a cursor at the end.
        var past = reader.makeCursor(at: LineReader.Position(offset: text.utf8.count + 10, lineNumber: 9))
        XCTAssertNil(try past.next())
    }

    func testInputRowsFromRecordedStartsEqualInputRowsThatSkip() throws {
        let n = 50
        let vectors = tmpPath("v.fvecs"), payload = tmpPath("p.tsv"), ids = tmpPath("ids.txt")
        try fvecsData((0..<n).map { r in [Float(r), Float(-r)] }).write(to: URL(fileURLWithPath: vectors))
        try ((0..<n).map { "name-\($0)\t\($0 % 3 == 0 ? "" : String($0 * 7))" }.joined(separator: "\r\n") + "\r\n")
            .write(toFile: payload, atomically: true, encoding: .utf8)
        try ((0..<n).map { String(900 + $0 * 2) }.joined(separator: "\n")).write(toFile: ids, atomically: true, encoding: .utf8)
        let columns = [ColumnSpec(name: "name", type: .string), ColumnSpec(name: "n", type: .int64, nullable: true)]
        let payloadStarts = try BulkImport.checkLineCount(payload, rows: n, vectors: vectors, every: 12)
        let idStarts = try BulkImport.checkLineCount(ids, rows: n, vectors: vectors, every: 12)
        XCTAssertEqual(payloadStarts.map(\.lineNumber), [0, 12, 24, 36, 48])
        XCTAssertEqual(idStarts.map(\.lineNumber), [0, 12, 24, 36, 48])
        for k in 0..<5 {
            let range = (k * 12)..<min(n, (k + 1) * 12)
            let skipping = try InputRows(vectors: vectors, rows: range, payload: payload, columns: columns, ids: .file(ids))
            let started = try InputRows(vectors: vectors, rows: range, payload: payload, columns: columns, ids: .file(ids),
                                        starts: InputRows.SideFileStarts(payload: payloadStarts[k], ids: idStarts[k]))
            var a: [(Int, UInt64, [PayloadValue])] = [], b: [(Int, UInt64, [PayloadValue])] = []
            try skipping.forEach { a.append(($0.fileRow, $0.id, $0.values)) }
            try started.forEach { b.append(($0.fileRow, $0.id, $0.values)) }
            XCTAssertEqual(b.map(\.0), Array(range))
            XCTAssertEqual(b.map(\.1), range.map { UInt64(900 + $0 * 2) })
            XCTAssertEqual(b.map(\.2), range.map { [.string("name-\($0)"), $0 % 3 == 0 ? .null : .int64(Int64($0 * 7))] })
            XCTAssertEqual(a.map(\.0), b.map(\.0))
            XCTAssertEqual(a.map(\.1), b.map(\.1))
            XCTAssertEqual(a.map(\.2), b.map(\.2))
            // An earlier recorded start (segment 0's) still reaches the range's first line.
            let early = try InputRows(vectors: vectors, rows: range, payload: payload, columns: columns, ids: .file(ids),
                                      starts: InputRows.SideFileStarts(payload: payloadStarts[0], ids: idStarts[0]))
            var c: [UInt64] = []
            try early.forEach { c.append($0.id) }
            XCTAssertEqual(c, b.map(\.1))
        }
    }

    func testLineCountErrorsNameTheLine() throws {
        let vectors = tmpPath("v.fvecs"), short = tmpPath("short.txt"), long = tmpPath("long.txt")
        try fvecsData((0..<10).map { [Float($0)] }).write(to: URL(fileURLWithPath: vectors))
        try ((0..<7).map(String.init).joined(separator: "\n") + "\n").write(toFile: short, atomically: true, encoding: .utf8)
        try ((0..<11).map(String.init).joined(separator: "\n") + "\n").write(toFile: long, atomically: true, encoding: .utf8)
        let e = assertStrataError(.corrupt) { _ = try BulkImport.checkLineCount(short, rows: 10, vectors: vectors, every: 3) }
        XCTAssertTrue(e?.message.hasPrefix("the file ends before line 8, which row 7 of") ?? false, e?.message ?? "")
        let e2 = assertStrataError(.corrupt) { _ = try BulkImport.checkLineCount(long, rows: 10, vectors: vectors, every: 3) }
        XCTAssertTrue(e2?.message.hasPrefix("more lines than the 10 rows") ?? false, e2?.message ?? "")
    }
}
