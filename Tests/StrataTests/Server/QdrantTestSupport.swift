// Helpers of the Qdrant REST layer's tests.
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataServer

/// Parses `text` as a request body with `limits`.
func qdrantBody(_ text: String, limits: ServerLimits = ServerLimits()) throws -> JSONValue {
    try RequestBody.parse(Array(text.utf8), limits: limits)
}

/// Asserts that `body` throws a `QdrantError` with `status` whose message contains every one of
/// `fragments`; returns the error.
@discardableResult
func assertQdrantError<T>(_ status: Int, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
                          _ body: () throws -> T) -> QdrantError? {
    do {
        let value = try body()
        XCTFail("expected a \(status) error containing \(fragments), got \(value)", file: file, line: line)
        return nil
    } catch let e as QdrantError {
        XCTAssertEqual(e.status, status, "status of: \(e.message)", file: file, line: line)
        for f in fragments { XCTAssertTrue(e.message.contains(f), "'\(e.message)' lacks '\(f)'", file: file, line: line) }
        return e
    } catch {
        XCTFail("expected a QdrantError, got \(error)", file: file, line: line)
        return nil
    }
}
