// swift-tools-version:6.0
// ANN benchmark harness for Strata's index (issue 3). Its own package so the main build and CI never
// compile it. Build: `swift build -c release` here; run `.build/release/ann-bench --help`.
import PackageDescription

let package = Package(
    name: "ann-bench",
    dependencies: [.package(name: "Strata", path: "../..")],
    targets: [
        .executableTarget(name: "ann-bench", dependencies: [.product(name: "Strata", package: "Strata")]),
    ],
    swiftLanguageModes: [.v5]
)
