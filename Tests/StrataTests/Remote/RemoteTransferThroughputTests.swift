// Push and pull throughput on a real collection, for the figures that tools/bench-transfer.sh sets
// beside `aws s3 cp --recursive` and boto3 on the same SeaweedFS. Opt-in
// (STRATA_TRANSFER_BENCH_DIR=<a local collection>): it measures, it does not assert speed; it does
// check that what came back is what went up.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataRemote

final class RemoteTransferThroughputTests: RemoteMaintenanceTestCase {
    /// One push of the collection to a fresh prefix and one pull of it into a fresh directory;
    /// prints one line `transfer push MB/s … pull MB/s …` (and the bytes and seconds of each).
    func testPushAndPullThroughput() async throws {
        guard let source = ProcessInfo.processInfo.environment["STRATA_TRANSFER_BENCH_DIR"] else {
            throw XCTSkip("set STRATA_TRANSFER_BENCH_DIR to a local collection to measure push and pull MB/s")
        }
        let transfer = RemoteTransfer(store: store, metadata: metadata, options: remoteOptions(cache: "transfer"))
        let pushed = try await transfer.push(localDirectory: source, to: layout)
        let target = tmpPath("pulled")
        let pulled = try await transfer.pull(from: layout, to: target)
        // What came back is what went up: the same manifest, file for file, and the same WAL records.
        let a = try Manifest.read(directory: source), b = try Manifest.read(directory: target)
        XCTAssertEqual(a.segments, b.segments)
        for s in a.segments {
            XCTAssertEqual(try FileSystem.fileSize("\(target)/\(s.name)"), s.fileBytes)
        }
        XCTAssertEqual(pushed.walRecords, pulled.walRecords)
        print(String(format: "transfer push %.1f MB/s (%.0f MB in %.2f s, %d files) pull %.1f MB/s (%.0f MB in %.2f s)",
                     pushed.megabytesPerSecond, Double(pushed.bytes) / 1e6, pushed.seconds,
                     pushed.segments + pushed.bitmaps + pushed.walObjects + 1,
                     pulled.megabytesPerSecond, Double(pulled.bytes) / 1e6, pulled.seconds))
        // Leave nothing behind in the shared bucket.
        for o in try await store.list(prefix: layout.root) { try await store.delete(o.key) }
        try await metadata.delete(layout.headKey)
    }
}
