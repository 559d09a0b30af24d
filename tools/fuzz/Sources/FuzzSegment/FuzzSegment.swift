// libFuzzer target: a segment file from arbitrary bytes. The harness is `SegmentHarness`
// (StrataTestSupport): open, verify, read rows / payload / columns, filtered / sparse / BM25 /
// hybrid search steered by bytes 64..<320, exact and index search; each input also re-sealed.
// `STRATA_FUZZ_WRITE_SEEDS=DIR` writes the seed the fixtures lack (an ANN index with every search
// section) into DIR and exits.
import Foundation
import StrataTestSupport

private let scratchDirectory: String = {
    let dir = NSTemporaryDirectory() + "strata-fuzz-segment-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "strata-fuzz-segment-\(getpid())") }
    return dir
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    SegmentHarness.run(data, scratch: scratchDirectory)
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
    if let seedDir = ProcessInfo.processInfo.environment["STRATA_FUZZ_WRITE_SEEDS"] {
        do { try SegmentHarness.writeSeeds(to: seedDir) } catch { fatalError("cannot write seeds into \(seedDir): \(error)") }
        return 0
    }
    var argc = argc
    var argv = argv
    return llvmFuzzerRunDriver(&argc, &argv) { fuzzTestOneInput($0, $1) }
}
