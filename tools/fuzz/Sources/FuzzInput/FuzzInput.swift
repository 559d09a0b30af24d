// libFuzzer target: the input files of `strata build` / `strata insert` from arbitrary bytes
// (InputHarness.swift: layout and the properties checked). A thrown StrataError is a fine outcome;
// a broken property traps (so libFuzzer keeps the input), as does any trap in Strata.
//
// `STRATA_FUZZ_WRITE_SEEDS=DIR` writes seed inputs into DIR and exits.
import Foundation
import Strata

private let scratch = NSTemporaryDirectory() + "strata-fuzz-input-\(getpid())"

/// Seeds: valid inputs of each shape (ids modes, payload, sparse, range, cosine, float16).
func inputSeeds() -> [[UInt8]] {
    func fvecs(_ n: Int) -> [UInt8] {
        var b: [UInt8] = []
        for i in 0..<n {
            b += withUnsafeBytes(of: Int32(4).littleEndian) { Array($0) }
            for v in [Float(i + 1), Float(i % 3), 0.5, -1] { b += withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        }
        return b
    }
    let payload = Array((0..<8).map { "name \($0)\t\($0 % 3 == 0 ? "" : String($0))\ta,b\t\(Double($0) / 4)\t\($0 % 2 == 0)\n" }.joined().utf8)
    let ids = Array((0..<8).map { "\(10 + $0 * 3)\n" }.joined().utf8)
    let sparse = Array((0..<8).map { $0 % 4 == 3 ? "\n" : "\($0):0.5,\($0 + 7):\($0)\n" }.joined().utf8)
    return [
        InputHarness.encode(control: 0x34, parts: [fvecs(8), payload, ids, sparse]),
        InputHarness.encode(control: 0x12, parts: [fvecs(8), payload, ids, sparse]),
        InputHarness.encode(control: 0x5D, rowStart: 2, rowCount: 5, firstId: 500, parts: [fvecs(8), payload, ids, sparse]),
        InputHarness.encode(control: 0xB6, parts: [fvecs(8), payload, ids, sparse]),
    ]
}

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
        for (i, seed) in inputSeeds().enumerated() {
            _ = FileManager.default.createFile(atPath: seedDir + "/seed-\(i)", contents: Data(seed))
        }
        return 0
    }
    var argc = argc
    var argv = argv
    return llvmFuzzerRunDriver(&argc, &argv) { fuzzTestOneInput($0, $1) }
}
