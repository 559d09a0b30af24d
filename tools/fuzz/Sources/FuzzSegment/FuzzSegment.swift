// libFuzzer target: a segment file from arbitrary bytes (issue 6).
//
// Each input is written to a temp file and opened with `Segment.open`; then `verify()` runs and, sound
// or not, a few rows, ids, payload values, a column scan, an exact search and (when the segment has an
// index) an index search are read, then filtered / sparse / BM25 / hybrid search and payload-index
// lookups with queries steered by bytes 64..<320 of the input (SearchOperations.swift). Any thrown StrataError is an acceptable outcome; a trap, a hang or an
// AddressSanitizer report is a bug. Mirrored by `FuzzHarness.segment` in
// Tests/StrataTests/FuzzRegressionTests.swift, which replays Fixtures/fuzz-regressions/segment/*.
import Foundation
import FuzzSupport
import Strata

private let scratchDirectory: String = {
    let dir = NSTemporaryDirectory() + "strata-fuzz-segment-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "strata-fuzz-segment-\(getpid())") }
    return dir
}()

/// Exercises every read path of a segment that opened, whatever verify() said.
func exerciseSegment(_ seg: Segment, control: [UInt8]) {
    _ = seg.verify()
    let n = seg.rowCount
    let rows = Set([0, 1, n / 2, n - 1].filter { $0 >= 0 && $0 < n })
    for r in rows {
        if let id = try? seg.id(ofRow: r) { _ = try? seg.row(forId: id) }
        _ = try? seg.vector(row: r)
        _ = try? seg.payload(row: r)
        for c in seg.schema.columns.prefix(4) { _ = try? seg.value(row: r, column: c.name) }
    }
    _ = try? seg.row(forId: 0x5EED)
    for c in seg.schema.columns.prefix(4) {
        _ = try? seg.blocks(ofColumn: c.name)
        var seen = 0
        try? seg.scan(column: c.name) { _, _ in seen += 1 }
    }
    _ = seg.columnStatistics
    FuzzSearch.exercise(seg, control: control)
    let d = seg.schema.dimension
    guard d > 0, d <= 1 << 16 else { return }
    let query = (0..<d).map { Float(($0 % 7) - 3) * 0.25 }
    _ = try? seg.exactSearch(query: query, k: 5)
    _ = try? seg.exactSearch(queries: [query, query.map { -$0 }], k: 3)
    _ = try? seg.search(query: query, options: SearchOptions(k: 5, listSize: 16))
    _ = try? seg.search(query: query, options: SearchOptions(k: 3, listSize: 8, beamWidth: 2, exact: false, readAhead: true))
}

/// The harness body: bytes in, no trap out. The input runs as given; when re-sealing its header,
/// directory and footer checksums changes it, once more re-sealed (so mutations reach the parsers);
/// and when also re-sealing the payload block checksums and the section checksums changes it
/// further, a third time (so mutated block bytes reach LZ4 and the block decoders, and verify gets
/// past the section checksums).
func fuzzSegment(_ data: UnsafeRawBufferPointer) {
    fuzzSegmentOnce(data)
    guard data.count >= 4160 else { return }
    var sealed = [UInt8](data)
    Reseal.segment(&sealed)
    if !sealed.elementsEqual(data) { sealed.withUnsafeBytes { fuzzSegmentOnce($0) } }
    var deep = sealed
    Reseal.segmentDeep(&deep)
    if deep != sealed { deep.withUnsafeBytes { fuzzSegmentOnce($0) } }
}

func fuzzSegmentOnce(_ data: UnsafeRawBufferPointer) {
    let path = scratchDirectory + "/input.seg"
    unlink(path)
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { fatalError("cannot create \(path)") }
    var written = 0
    while written < data.count {
        let w = write(fd, data.baseAddress! + written, data.count - written)
        guard w > 0 else { fatalError("short write to \(path)") }
        written += w
    }
    close(fd)
    guard let seg = try? Segment.open(path: path) else { return }
    exerciseSegment(seg, control: data.count >= 320 ? [UInt8](data[64..<320]) : [])
    seg.close()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    if let bytes, count > 0 {
        fuzzSegment(UnsafeRawBufferPointer(start: bytes, count: count))
    } else {
        fuzzSegment(UnsafeRawBufferPointer(start: nil, count: 0))
    }
    return 0
}

// SwiftPM links an executable target with `--defsym main=FuzzSegment_main` and, under
// -parse-as-library, no such entry point is generated; so define it and hand over to libFuzzer's
// driver (the archive's own `main` is then never pulled in).
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("FuzzSegment_main")
public func fuzzSegmentMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    // Seed mode: write the seeds the fixtures lack and stop.
    if let seedDir = ProcessInfo.processInfo.environment["STRATA_FUZZ_WRITE_SEEDS"] {
        try? FileManager.default.createDirectory(atPath: seedDir, withIntermediateDirectories: true)
        let path = seedDir + "/seed-indexed-search.seg"
        unlink(path)
        do { try FuzzSearch.writeIndexedSearchSeed(to: path) } catch { fatalError("cannot write \(path): \(error)") }
        return 0
    }
    var argc = argc
    var argv = argv
    return llvmFuzzerRunDriver(&argc, &argv) { fuzzTestOneInput($0, $1) }
}
