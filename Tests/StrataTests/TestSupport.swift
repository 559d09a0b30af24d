// Shared helpers for the segment and CLI tests that need XCTest or the repository: temp directories,
// error assertions, the CLI runner, the golden v1 fixture generator and the sample-dataset generator
// (see tools/make-fixtures/README.md). Builders that need neither (a deterministic PRNG, row
// builders, payload comparison, a naive exact-search reference, texmex bytes) are in StrataTestSupport.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools
@_exported import StrataTestSupport

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Test base class with a private temp directory

/// Gives each test a unique temporary directory, removed in tearDown.
class StrataTestCase: XCTestCase {
    private(set) var tmp: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("strata-tests-\(getpid())-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        tmp = dir
    }

    override func tearDownWithError() throws {
        if let tmp { try? FileManager.default.removeItem(at: tmp) }
        tmp = nil
        try super.tearDownWithError()
    }

    /// A path inside the test's temp directory.
    func tmpPath(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    /// Files in the temp directory (to check that failed writers leave nothing behind).
    func tmpContents() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []).sorted()
    }
}

/// Asserts that `body` throws a `StrataError` with `code`; returns the error.
@discardableResult
func assertStrataError<T>(_ code: StrataError.Code, _ message: @autoclosure () -> String = "",
                          file: StaticString = #filePath, line: UInt = #line,
                          _ body: () throws -> T) -> StrataError? {
    do {
        let value = try body()
        XCTFail("expected StrataError.\(code), got a result: \(value) \(message())", file: file, line: line)
        return nil
    } catch let e as StrataError {
        XCTAssertEqual(e.code, code, "\(e) \(message())", file: file, line: line)
        return e
    } catch {
        XCTFail("expected StrataError.\(code), got \(error) \(message())", file: file, line: line)
        return nil
    }
}

// MARK: - Paths

/// Repository root, from this file's location (Tests/StrataTests/TestSupport.swift).
let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Whether the fixture-writing mode is on (`STRATA_WRITE_FIXTURES=1`).
var writeFixturesRequested: Bool { ProcessInfo.processInfo.environment["STRATA_WRITE_FIXTURES"] == "1" }

/// The built `strata` executable: next to the test bundle (the build products directory), else
/// `.build/debug/strata` under the repository root.
func strataExecutable() -> URL? { builtExecutable("strata") }

/// The built `strata-soak` executable (the collection test rig, tools/soak), found like `strata`.
func strataSoakExecutable() -> URL? { builtExecutable("strata-soak") }

/// The package's executable `name`: next to the test bundle (the build products directory), else
/// `.build/debug/NAME` under the repository root.
func builtExecutable(_ name: String) -> URL? {
    var candidates: [URL] = []
    for bundle in [Bundle.main] + Bundle.allBundles {
        candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent(name))
        candidates.append(bundle.bundleURL.appendingPathComponent(name))
        if let exe = bundle.executableURL { candidates.append(exe.deletingLastPathComponent().appendingPathComponent(name)) }
    }
    if let arg0 = CommandLine.arguments.first {
        candidates.append(URL(fileURLWithPath: arg0).deletingLastPathComponent().appendingPathComponent(name))
    }
    candidates.append(repoRoot.appendingPathComponent(".build/debug/\(name)"))
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
}

/// Output of one CLI run.
struct CLIResult {
    var status: Int32
    /// Killed by a signal (a trap in the CLI), rather than exiting.
    var crashed: Bool
    var stdout: Data
    var stderr: String
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs `strata args...` with the repository root as working directory; stdout and stderr go to
/// files (no pipe-buffer deadlock on large outputs). With `fileSizeLimitKiB`, the child runs under
/// that file-size limit (`ulimit -f`) with SIGXFSZ ignored, so a full disk shows up as EFBIG. With
/// `environment`, the child's environment is this process's with those variables set (an empty
/// value unsets one).
func runStrata(_ args: [String], scratch: URL, fileSizeLimitKiB: Int? = nil, environment: [String: String]? = nil) throws -> CLIResult {
    guard let exe = strataExecutable() else { throw XCTSkip("strata executable not built (run swift build first)") }
    let outURL = scratch.appendingPathComponent("cli-\(UUID().uuidString).out")
    let errURL = scratch.appendingPathComponent("cli-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    let process = Process()
    if let limit = fileSizeLimitKiB {
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        // bash's `ulimit -f` counts 1024-byte blocks; an ignored signal stays ignored across exec.
        process.arguments = ["-c", "ulimit -f \(limit) && trap '' XFSZ && exec \"$0\" \"$@\"", exe.path] + args
    } else {
        process.executableURL = exe
        process.arguments = args
    }
    process.currentDirectoryURL = repoRoot
    if let environment {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v.isEmpty ? nil : v }
        process.environment = env
    }
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    process.standardOutput = out
    process.standardError = err
    try process.run()
    process.waitUntilExit()
    try out.close()
    try err.close()
    return CLIResult(status: process.terminationStatus, crashed: process.terminationReason == .uncaughtSignal, stdout: try Data(contentsOf: outURL),
                     stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
}

/// Fails when any string in a parsed `--json` document spells a non-finite number ("inf", "-inf",
/// "nan", "infinity"...): JSON output prints numbers as numbers, or null when not finite.
func assertNoNumberAsString(_ value: Any, path: String = "$", file: StaticString = #filePath, line: UInt = #line) {
    switch value {
    case let s as String:
        let spelled = Double(s.trimmingCharacters(in: .whitespaces)).map { !$0.isFinite } ?? false
        XCTAssertFalse(spelled, "\(path) is the string \"\(s)\", a number printed as text", file: file, line: line)
    case let a as [Any]:
        for (i, x) in a.enumerated() { assertNoNumberAsString(x, path: "\(path)[\(i)]", file: file, line: line) }
    case let o as [String: Any]:
        for (k, x) in o { assertNoNumberAsString(x, path: "\(path).\(k)", file: file, line: line) }
    default: break
    }
}

// MARK: - Golden v1 fixture

/// The content of `Fixtures/v1/small.seg`: 20 rows, dimension 8, float32, l2, five columns (one
/// of every type, three nullable), 4 rows per payload block. Everything is a pure function of the
/// row number, so the file can be regenerated and compared byte for byte. Do not change: the file
/// is the compatibility contract of format v1.
enum GoldenV1 {
    static let rowCount = 20
    static let rowsPerBlock = 4
    static let schema = SegmentSchema(dimension: 8, elementType: .float32, metric: .l2, columns: [
        ColumnSpec(name: "title", type: .string),
        ColumnSpec(name: "count", type: .int64, nullable: true),
        ColumnSpec(name: "score", type: .float64, nullable: true),
        ColumnSpec(name: "flag", type: .bool),
        ColumnSpec(name: "tags", type: .stringList, nullable: true),
    ])

    static func id(_ r: Int) -> UInt64 {
        switch r {
        case 0: return 0
        case 1: return UInt64.max
        case 2: return 1 << 63
        default: return (UInt64(r) &* 0x9E37_79B9_7F4A_7C15) >> 8 // scattered, not sorted
        }
    }

    /// Exact binary fractions, so float32 storage is lossless.
    static func vector(_ r: Int) -> [Float] {
        (0..<8).map { d in Float((r * 7 + d * 3) % 17 - 8) * 0.25 + Float(d) * 0.125 }
    }

    static let titles = ["", "alpha", "héllo wörld", "日本語のタイトル", "🚀 launch", "e\u{301}", "a longer title over eight bytes",
                         "zero\u{0}byte", "tab-free text", "Ω"]

    static func values(_ r: Int) -> [PayloadValue] {
        let title = PayloadValue.string(titles[r % titles.count] + (r >= titles.count ? " #\(r)" : ""))
        let count: PayloadValue = r % 3 == 1 ? .null : .int64(r == 5 ? Int64.min : r == 6 ? Int64.max : Int64(r * r) - 40)
        let score: PayloadValue
        switch r {
        case 4..<8: score = .null // a whole block of nulls
        case 9: score = .float64(-0.0)
        case 10: score = .float64(.greatestFiniteMagnitude) // (non-finite values: see CLITests.testDumpJSONWithNonFiniteFloats)
        case 11: score = .float64(Double(bitPattern: 0x0000_1234_5678_9ABC)) // subnormal
        default: score = .float64(Double(r) * 0.5 - 3.25)
        }
        let flag = PayloadValue.bool(r % 2 == 0)
        let tags: PayloadValue
        switch r % 5 {
        case 0: tags = .stringList([])
        case 1: tags = .null
        case 2: tags = .stringList(["a"])
        case 3: tags = .stringList(["x", "", "ünï", "🏷️"])
        default: tags = .stringList((0..<(r % 7)).map { "t\($0)" })
        }
        return [title, count, score, flag, tags]
    }

    static func rows() -> [TestRow] { (0..<rowCount).map { TestRow(id: id($0), vector: vector($0), values: values($0)) } }

    /// Writes the golden segment (always through the batch API in one call per 4 rows, for a fixed history).
    static func write(to path: String) throws {
        var options = SegmentWriterOptions()
        options.rowsPerBlock = rowsPerBlock
        let writer = try SegmentWriter(path: path, schema: schema, options: options)
        for r in 0..<rowCount {
            try vector(r).withUnsafeBufferPointer { v in try writer.append(id: id(r), vector: v, values: values(r)) }
        }
        try writer.finish()
    }

    static var fixtureURL: URL { repoRoot.appendingPathComponent("Fixtures/v1/small.seg") }
    static var dumpURL: URL { repoRoot.appendingPathComponent("Fixtures/v1/small.dump.json") }
    /// The path handed to `strata dump` (relative to the repo root; it is echoed in the JSON).
    static let fixtureRelativePath = "Fixtures/v1/small.seg"
}

// MARK: - Sample dataset

/// `Fixtures/sample/`: a small clustered dataset shaped like pypi-minilm-100k (L2-normalised
/// vectors, inner-product ground truth, a 5-column payload). Pure function of fixed seeds; float
/// arithmetic uses only +, *, / and sqrt, so it is bit-reproducible.
enum SampleDataset {
    static let baseCount = 2000
    static let queryCount = 50
    static let dimension = 32
    static let clusters = 16
    static let groundtruthK = 100
    /// Queries whose score gap at ranks 1, 10 or 100 is below this are skipped when generating, so
    /// that float32 search must reproduce the ground truth exactly.
    static let minimumGap = 1e-4
    static let schemaSpec = "name:string,version:string,month:string,rank:int64?,summary:string"
    static let fileNames = ["base.fvecs", "query.fvecs", "groundtruth.ivecs", "payload.tsv"]

    static var directory: URL { repoRoot.appendingPathComponent("Fixtures/sample") }

    struct Generated {
        var base: [[Float]]
        var queries: [[Float]]
        var groundtruth: [[Int32]]
        var payloadLines: [String]

        var files: [String: Data] {
            ["base.fvecs": fvecsData(base), "query.fvecs": fvecsData(queries), "groundtruth.ivecs": ivecsData(groundtruth),
             "payload.tsv": Data(payloadLines.map { $0 + "\n" }.joined().utf8)]
        }
    }

    static func normalized(_ v: [Float]) -> [Float] {
        let n = v.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        return v.map { $0 / n }
    }

    static func generate() -> Generated {
        var rng = SplitMix64(seed: 0x5354_5241_5441_0001)
        let centers = (0..<clusters).map { _ in normalized((0..<dimension).map { _ in rng.gaussianish() }) }
        func point(_ rng: inout SplitMix64) -> [Float] {
            let c = centers[rng.int(clusters)]
            return normalized(c.map { $0 + 0.11 * rng.gaussianish() })
        }
        let base = (0..<baseCount).map { _ in point(&rng) }

        var queries: [[Float]] = []
        var truth: [[Int32]] = []
        var qrng = SplitMix64(seed: 0x5354_5241_5441_0002)
        while queries.count < queryCount {
            let q = point(&qrng)
            var scored = base.enumerated().map { (i, v) in
                (row: i, score: zip(q, v).reduce(0.0) { $0 + Double($1.0) * Double($1.1) })
            }
            scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.row < $1.row }
            let gapsOK = [1, 10, groundtruthK].allSatisfy { k in scored[k - 1].score - scored[k].score >= minimumGap }
            guard gapsOK else { continue }
            queries.append(q)
            truth.append(scored.prefix(groundtruthK).map { Int32($0.row) })
        }

        var prng = SplitMix64(seed: 0x5354_5241_5441_0003)
        let syllables = ["py", "data", "flask", "json", "ml", "net", "kit", "tool", "web", "async", "io", "lib", "fast",
                         "geo", "viz", "test", "cli", "auth", "db", "log"]
        let words = ["a", "simple", "library", "for", "parsing", "fast", "async", "HTTP", "client", "tools", "data",
                     "machine", "learning", "utilities", "wrapper", "around", "the", "API", "command", "line", "interface",
                     "plugin", "framework", "with", "support", "JSON", "YAML", "files", "café", "naïve", "日本語", "🚀",
                     "tiny", "server", "python", "package", "image", "processing", "database", "driver", "testing"]
        var lines: [String] = []
        var names = Set<String>()
        for i in 0..<baseCount {
            var name = ""
            repeat {
                name = (0..<(2 + prng.int(2))).map { _ in syllables[prng.int(syllables.count)] }.joined()
                if prng.int(4) == 0 { name += "-" + syllables[prng.int(syllables.count)] }
                if names.contains(name) { name += String(i) }
            } while names.contains(name)
            names.insert(name)
            let version = "\(prng.int(4)).\(prng.int(20)).\(prng.int(10))"
            let year = 2019 + prng.int(8), month = 1 + prng.int(12)
            let monthText = "\(year)-" + (month < 10 ? "0\(month)" : "\(month)")
            let rank = prng.int(5) == 0 ? String(1 + prng.int(15000)) : ""
            let summary = (0..<(5 + prng.int(9))).map { _ in words[prng.int(words.count)] }.joined(separator: " ")
            lines.append([name, version, monthText, rank, summary].joined(separator: "\t"))
        }
        return Generated(base: base, queries: queries, groundtruth: truth, payloadLines: lines)
    }

    /// The parsed payload row `i` of the generated TSV, as the CLI should store it.
    static func payload(line: String) -> [PayloadValue] {
        let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        return [.string(f[0]), .string(f[1]), .string(f[2]), f[3].isEmpty ? .null : .int64(Int64(f[3])!), .string(f[4])]
    }
}
