// swift-tools-version:6.0
// libFuzzer targets for Strata. Kept out of the main package so that the main build and CI never
// compile them with sanitizer flags. Build and run with `tools/fuzz/run.sh TARGET SECONDS`:
//   swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// Each target is an executable whose `main` comes from libFuzzer; it exports LLVMFuzzerTestOneInput
// and hands each input to its harness in the main package's StrataTestSupport library, which the
// tests use to replay Fixtures/fuzz-regressions/<target>/* in the normal suite (one copy of each).
import PackageDescription

let package = Package(
    name: "StrataFuzz",
    dependencies: [.package(name: "Strata", path: "../..")],
    targets: [
        .executableTarget(name: "FuzzSegment", dependencies: [.product(name: "StrataTestSupport", package: "Strata")]),
        .executableTarget(name: "FuzzCollection", dependencies: [.product(name: "StrataTestSupport", package: "Strata")]),
        .executableTarget(name: "FuzzFilter", dependencies: [.product(name: "StrataTestSupport", package: "Strata")]),
        .executableTarget(name: "FuzzInput", dependencies: [.product(name: "StrataTestSupport", package: "Strata")]),
    ],
    swiftLanguageModes: [.v6]
)
