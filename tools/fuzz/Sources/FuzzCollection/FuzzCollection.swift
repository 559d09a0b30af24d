// libFuzzer target: collection files from arbitrary bytes. The harness is `CollectionHarness`
// (StrataTestSupport): byte 0 picks the file of a template collection it replaces (MANIFEST, the
// current WAL, the delete bitmap) and whether to re-seal its checksums; verify, open read-only and
// read-write. A violated WAL rule traps (so libFuzzer keeps the input).
// `STRATA_FUZZ_WRITE_SEEDS=DIR` writes the three template files (and the WAL in format 1.0) as
// seeds into DIR and exits.
import Foundation
import StrataTestSupport

private let root: String = {
    let dir = NSTemporaryDirectory() + "strata-fuzz-collection-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "strata-fuzz-collection-\(getpid())") }
    return dir
}()

private let template: CollectionHarness.Template = {
    do { return try CollectionHarness.makeTemplate(in: root) } catch { fatalError("cannot build the template collection: \(error)") }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let bytes, count > 0 else { return 0 }
    if let violation = CollectionHarness.run(Array(UnsafeBufferPointer(start: bytes, count: count)), template: template, scratch: root) {
        fatalError("WAL rule violated: \(violation)")
    }
    return 0
}

// SwiftPM links an executable target with `--defsym main=FuzzCollection_main` and, under
// -parse-as-library, no such entry point is generated; so define it and hand over to libFuzzer's
// driver (the archive's own `main` is then never pulled in).
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("FuzzCollection_main")
public func fuzzCollectionMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    // Seed mode: write the template files and stop (outside libFuzzer, which calls exit() on a crash).
    if let seedDir = ProcessInfo.processInfo.environment["STRATA_FUZZ_WRITE_SEEDS"] {
        try? FileManager.default.createDirectory(atPath: seedDir, withIntermediateDirectories: true)
        for seed in CollectionHarness.seeds(template) {
            _ = FileManager.default.createFile(atPath: seedDir + "/" + seed.name, contents: Data(seed.bytes))
        }
        return 0
    }
    var argc = argc
    var argv = argv
    return llvmFuzzerRunDriver(&argc, &argv) { fuzzTestOneInput($0, $1) }
}
