// libFuzzer target: the input files of `strata build` / `strata insert` from arbitrary bytes. The
// harness is `InputHarness` (StrataTestSupport: layout and the properties checked). A thrown
// StrataError is a fine outcome; a broken property traps (so libFuzzer keeps the input), as does any
// trap in Strata.
// `STRATA_FUZZ_WRITE_SEEDS=DIR` writes seed inputs into DIR and exits.
import Foundation
import StrataTestSupport

private let scratch = NSTemporaryDirectory() + "strata-fuzz-input-\(getpid())"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let bytes, count > 0 else { return 0 }
    if case .violation(let what) = InputHarness.run(Array(UnsafeBufferPointer(start: bytes, count: count)), scratch: scratch) {
        fatalError("input property violated: \(what)")
    }
    return 0
}

// SwiftPM links an executable target with `--defsym main=FuzzInput_main` and, under
// -parse-as-library, no such entry point is generated; so define it and hand over to libFuzzer's
// driver (the archive's own `main` is then never pulled in).
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("FuzzInput_main")
public func fuzzInputMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "strata-fuzz-input-\(getpid())") }
    if let seedDir = ProcessInfo.processInfo.environment["STRATA_FUZZ_WRITE_SEEDS"] {
        try? FileManager.default.createDirectory(atPath: seedDir, withIntermediateDirectories: true)
        for (i, seed) in InputHarness.seeds().enumerated() {
            _ = FileManager.default.createFile(atPath: seedDir + "/seed-\(i)", contents: Data(seed))
        }
        return 0
    }
    var argc = argc
    var argv = argv
    return llvmFuzzerRunDriver(&argc, &argv) { fuzzTestOneInput($0, $1) }
}
