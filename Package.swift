// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Strata",
    products: [
        .library(name: "Strata", targets: ["Strata"]),
        .executable(name: "strata", targets: ["StrataCLI"]),
        // The collection test rig (crash-test child processes, tools/soak/run.sh); not part of `strata`.
        .executable(name: "strata-soak", targets: ["StrataSoak"]),
        // Test support shared by Tests and tools/fuzz (fuzz harnesses, checksum re-sealing, fixture
        // builders, the kernels' reference implementations); not part of the engine users link.
        .library(name: "StrataTestSupport", targets: ["StrataTestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        // `swift package generate-documentation` (the DocC catalog in Sources/Strata/Strata.docc; see tools/test.sh).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // The object-store tier (StrataRemote): HTTP to S3 and to etcd's JSON gateway, SigV4 signing.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // ByteBuffer and HTTPMethod, the types async-http-client speaks (already resolved as its dependency).
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        // `strata serve` (StrataServer): the HTTP server, the process's lifecycle and its metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // liblz4 from Debian (liblz4-dev): payload block compression.
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // libxxhash from Debian (libxxhash-dev): XXH3-64 section and block checksums.
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        // Distance kernels with run-time CPU dispatch (AVX-512 / AVX2+FMA / scalar); no compiler flags.
        .target(name: "CStrataKernels"),
        // The bottom layer: files and system calls, errors, bytes and checksums, the segment's section
        // layout and schema, payload column blocks. Knows nothing of indexes or collections.
        .target(
            name: "StrataFormat",
            dependencies: ["CLZ4", "CXXHash"]
        ),
        // Vector indexes: distances, PQ, k-means, Vamana (in memory and out of core), the sector
        // graph layout, node cache and beam search. Reads and writes bytes through StrataFormat.
        .target(
            name: "StrataIndex",
            dependencies: [
                "StrataFormat", "CStrataKernels",
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        // The engine users link: segments (writer, reader, verify), queries (filters, planner, payload
        // index, BM25, sparse, hybrid) and collections (WAL, manifest, delete bitmaps, snapshots,
        // compaction). Re-exports the public types of the layers below.
        .target(
            name: "Strata",
            dependencies: [
                // No CStrataKernels: the engine reaches the C kernels only through StrataIndex's
                // safe wrappers (Distance, DistanceKernels, QuantizedScanKernels, Prefetch).
                "StrataFormat", "StrataIndex",
                .product(name: "HeapModule", package: "swift-collections"),
                // The application's logger and metrics (CollectionOptions.logger / metricsFactory).
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // Collections in an object store: an S3 client (SigV4), an etcd client (v3 JSON gateway), the
        // remote commit protocol (WAL objects, manifests, a head in etcd), the node-local segment
        // cache and garbage collection. Builds on the engine; the engine knows nothing of it.
        .target(
            name: "StrataRemote",
            dependencies: [
                "Strata", "StrataFormat", "StrataIndex",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // `strata serve`: Qdrant's REST API over sharded remote collections, nodes that find each
        // other and share shard ownership through etcd, metrics. Builds on the object-store tier.
        .target(
            name: "StrataServer",
            dependencies: [
                "Strata", "StrataFormat", "StrataIndex", "StrataRemote",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // What the command-line tools need beside the engine: vector files, TSV payloads, input
        // validation, the segment ingest loop, synthetic datasets, the benchmark sweep and recall.
        .target(
            name: "StrataTools",
            dependencies: ["Strata", "StrataFormat", "StrataIndex"]
        ),
        .executableTarget(
            name: "StrataCLI",
            dependencies: [
                "Strata", "StrataFormat", "StrataIndex", "StrataTools", "StrataRemote", "StrataServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "StrataSoak",
            dependencies: ["Strata", "StrataFormat", "StrataIndex", "StrataTools", "StrataRemote", "StrataTestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "tools/soak/Sources/StrataSoak"
        ),
        // The fuzz harness bodies (tools/fuzz runs them under libFuzzer, the tests replay their
        // crashers), checksum re-sealing, fixture builders and test oracles.
        .target(
            name: "StrataTestSupport",
            dependencies: ["Strata", "StrataFormat", "StrataIndex", "StrataTools"]
        ),
        .testTarget(name: "StrataTests", dependencies: ["Strata", "StrataFormat", "StrataIndex", "StrataTools", "StrataRemote", "StrataServer", "StrataTestSupport", "CStrataKernels",
                                                  .product(name: "AsyncHTTPClient", package: "async-http-client"),
                                                  .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                                                  .product(name: "MetricsTestKit", package: "swift-metrics")],
                    // Python checks run by the tests with the venv python tools/qdrant-client.sh makes.
                    exclude: ["Server/qdrant_shapes.py", "Server/qdrant_client_check.py", "Server/qdrant_hybrid_check.py"]),
    ],
    swiftLanguageModes: [.v6]
)
