// swift-tools-version:6.0
// libFuzzer targets for Strata (issue 6). Kept out of the main package so that the main build and CI
// never compile them with sanitizer flags. Build and run with `tools/fuzz/run.sh TARGET SECONDS`:
//   swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// Each target is an executable whose `main` comes from libFuzzer; it exports LLVMFuzzerTestOneInput.
// The harness bodies are mirrored in Tests/StrataTests/FuzzRegressionTests.swift (keep them in sync),
// which replays Fixtures/fuzz-regressions/<target>/* in the normal test suite.
import PackageDescription

let package = Package(
    name: "StrataFuzz",
    dependencies: [.package(name: "Strata", path: "../..")],
    targets: [
        // libxxhash (Debian libxxhash-dev, as the main package): the harnesses re-seal checksums of
        // mutated inputs so that the fuzzer gets past them into the decoders.
        .systemLibrary(name: "CFuzzXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .target(name: "FuzzSupport", dependencies: ["CFuzzXXHash"]),
        .executableTarget(name: "FuzzSegment", dependencies: ["FuzzSupport", .product(name: "Strata", package: "Strata")]),
        .executableTarget(name: "FuzzCollection", dependencies: ["FuzzSupport", .product(name: "Strata", package: "Strata")]),
        .executableTarget(name: "FuzzFilter", dependencies: [.product(name: "Strata", package: "Strata")]),
    ],
    swiftLanguageModes: [.v6]
)
