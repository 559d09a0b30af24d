// swift-tools-version:6.0
// Strata's examples, in a package of their own that depends on the repository by path, as a new
// user's package would. One package for both, so that Strata is compiled once for them.
//   swift run QuickStart     # the README's "Library" example (Sources/QuickStart/main.swift)
//   swift run LongRunning    # a collection used from a long-running process
// (from the repository root: `swift run --package-path tools/examples QuickStart`). `tools/test.sh`
// builds and runs both; `tools/examples/check-readme.sh` checks that the README's library code
// blocks equal the regions marked `// README:begin NAME` ... `// README:end` in these sources.
import PackageDescription

let package = Package(
    name: "StrataExamples",
    dependencies: [.package(name: "Strata", path: "../..")],
    targets: [
        .executableTarget(name: "QuickStart", dependencies: [.product(name: "Strata", package: "Strata")]),
        .executableTarget(name: "LongRunning", dependencies: [.product(name: "Strata", package: "Strata")]),
    ],
    swiftLanguageModes: [.v6]
)
