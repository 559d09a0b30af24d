// The head and object names read from etcd and from listings are input like any other: a hostile
// value is a typed error, never a trap or a wrong number.
import Foundation
import XCTest
@testable import Strata
@testable import StrataRemote
import StrataFormat

final class RemoteHeadTests: XCTestCase {
    private func head(generation: String, wal: String) -> [UInt8] {
        Array(#"{"bytes":10,"checksum":"0123456789abcdef","generation":\#(generation),"manifest":"p/man/x.man","wal_sequence":\#(wal)}"#.utf8)
    }

    func testAHeadWithZeroOrHugeCountersIsCorrupt() throws {
        XCTAssertNoThrow(try RemoteHead.decode(head(generation: "3", wal: "7"), key: "k"))
        for (g, w) in [("0", "7"), ("3", "0"), ("18446744073709551615", "7"), ("3", "18446744073709551615"), ("-1", "7"), ("\"3\"", "7")] {
            XCTAssertThrowsError(try RemoteHead.decode(head(generation: g, wal: w), key: "k"), "generation \(g), wal \(w)") { error in
                XCTAssertEqual((error as? StrataError)?.code, .corrupt)
                XCTAssertEqual((error as? StrataError)?.section, "head")
            }
        }
        XCTAssertThrowsError(try RemoteHead.decode(Array("not json".utf8), key: "k"))
    }

    func testKeyParsersTakeOnlyStrataNames() {
        let layout = RemoteLayout(bucket: "b", prefix: "c")
        XCTAssertEqual(layout.walSequence(ofKey: layout.walObject(42)), 42)
        XCTAssertNil(layout.walSequence(ofKey: "c/wal/+0000000000000000042.log"))
        XCTAssertNil(layout.walSequence(ofKey: "c/wal/0000000000000000004x.log"))
        XCTAssertEqual(layout.manifestGeneration(ofKey: layout.manifestObject(generation: 9, writer: "n")), 9)
        XCTAssertNil(layout.manifestGeneration(ofKey: "c/man/+0000000000000000009-n-x.man"))
        XCTAssertNil(layout.manifestGeneration(ofKey: "c/man/00000000000000000009-child/man/x.man"))
    }

    func testCreateRefusesAPrefixHoldingAnotherCollectionsWAL() async throws {
        let f = try RemoteFixture("stray-wal")
        defer { Task { await f.shutdown() } }
        _ = try await f.s3.put(f.layout.walObject(1), body: [1, 2, 3], condition: .ifAbsent)
        await XCTAssertThrowsErrorAsync(try await f.create()) { error in
            XCTAssertEqual((error as? StrataError)?.code, .alreadyExists, "\(error)")
        }
        let head = try await f.etcd.get(f.layout.headKey)
        XCTAssertNil(head, "create committed a head over another collection's WAL")
    }
}
