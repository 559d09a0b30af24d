// libFuzzer target: filter JSON text from arbitrary bytes. The harness is `FilterHarness`
// (StrataTestSupport): `Filter(json:)`, then for a parsed filter validation, rows(matching:), the
// planner, exact / graph / planned filtered search and the reference evaluator on a 40-row template
// segment with every column indexed. A slow input (libFuzzer -timeout) is a bug too.
// `STRATA_FUZZ_WRITE_SEEDS=DIR` writes the seed filters into DIR and exits.
import Foundation
import Strata
import StrataTestSupport

/// The template segment (`FilterHarness.writeTemplate`), opened once.
private let filterSegment: Segment = {
    let dir = NSTemporaryDirectory() + "strata-fuzz-filter-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "strata-fuzz-filter-\(getpid())") }
    let path = dir + "/template.seg"
    do {
        try FilterHarness.writeTemplate(to: path)
        return try Segment.open(path: path)
    } catch {
        fatalError("cannot build the template segment: \(error)")
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let bytes else { return 0 }
    FilterHarness.run(Array(UnsafeBufferPointer(start: bytes, count: count)), segment: filterSegment)
    return 0
}

// SwiftPM links an executable target with `--defsym main=FuzzFilter_main` and, under
// -parse-as-library, no such entry point is generated; so define it and hand over to libFuzzer's
// driver (the archive's own `main` is then never pulled in).
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("FuzzFilter_main")
public func fuzzFilterMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    if let seedDir = ProcessInfo.processInfo.environment["STRATA_FUZZ_WRITE_SEEDS"] {
        try? FileManager.default.createDirectory(atPath: seedDir, withIntermediateDirectories: true)
        for (i, seed) in FilterHarness.seeds.enumerated() {
            _ = FileManager.default.createFile(atPath: seedDir + "/seed-\(i).json", contents: Data(seed.utf8))
        }
        return 0
    }
    var argc = argc
    var argv = argv
    return llvmFuzzerRunDriver(&argc, &argv) { fuzzTestOneInput($0, $1) }
}
