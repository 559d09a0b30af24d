// A StrataError prints as one readable line everywhere Swift turns an error into text:
// `print(error)`, `String(reflecting:)` / `debugPrint` (what an uncaught top-level error shows),
// and Foundation's `localizedDescription`.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class StrataErrorDescriptionTests: XCTestCase {
    func testEveryRenderingIsTheOneLine() {
        let errors = [
            StrataError(.typeMismatch, "row 0 (id 1): column 'name' is not nullable"),
            StrataError(.checksumMismatch, "section checksum", path: "/d/a.seg", section: "vectors", offset: 4096),
            StrataError(.io, "open failed", path: "/nope", errno: 2),
        ]
        let want = ["typeMismatch: row 0 (id 1): column 'name' is not nullable",
                    "checksumMismatch: section checksum (file /d/a.seg, section vectors, offset 4096)",
                    "io: open failed (file /nope, errno 2)"]
        for (error, line) in zip(errors, want) {
            XCTAssertEqual(String(describing: error), line)
            XCTAssertEqual(String(reflecting: error), line, "debugDescription (uncaught top-level errors print this)")
            XCTAssertEqual(error.localizedDescription, line)
            XCTAssertEqual((error as Error).localizedDescription, line, "through an existential Error")
            XCTAssertEqual(String(reflecting: error as Error), line)
            XCTAssertFalse(line.contains("\n"))
        }
    }

    func testThrownFromTheLibrary() throws {
        do {
            _ = try Segment.open(path: "/nonexistent/strata-test.seg")
            XCTFail("opening a missing file throws")
        } catch {
            XCTAssertTrue(error.localizedDescription.hasPrefix("io: "), error.localizedDescription)
            XCTAssertEqual(String(reflecting: error), "\(error)")
        }
    }
}
