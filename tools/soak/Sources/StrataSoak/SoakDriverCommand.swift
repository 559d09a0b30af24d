import StrataFormat
import StrataIndex
import StrataTestSupport
import StrataTools
import ArgumentParser
import Foundation
import Strata

#if canImport(Glibc)
import Glibc
#endif

/// `strata-soak`: the collection test rig, an executable of its own so that the `strata` product
/// ships no test code. It provides the child processes of the collection crash and concurrency tests
/// (Tests/StrataTests/CollectionCrashTests.swift: `writer`, `compact-loop`, `reader`) and the soak
/// run of tools/soak/run.sh (`soak`, with its `soak-writer` / `soak-reader` children, and
/// `soak-check`). It uses only the library's public API. Not a user command.
@main
struct SoakDriverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata-soak",
        abstract: "Test driver: writer / compact-loop / reader child processes for the collection tests, and the soak run.")

    @Argument(help: "writer | compact-loop | reader | soak | soak-writer | soak-reader | soak-check | remote-writer")
    var mode: String

    @Argument(help: "Collection directory (remote-writer: its cache directory).")
    var directory: String

    @Option(name: .long) var seed: UInt64 = 1
    @Option(name: .long) var ops: Int = 1_000_000
    @Option(name: .customLong("op-base")) var opBase: Int64 = 0
    @Option(name: .customLong("id-space")) var idSpace: UInt64 = 4000
    @Option(name: .customLong("flush-rows")) var flushRows: Int = 300
    @Option(name: .long) var seconds: Double = 2
    // Soak (`tools/soak/run.sh`; SoakDriverCommand+Soak.swift).
    @Option(name: .long) var journal: String = ""
    @Option(name: .customLong("max-rows")) var maxRows: Int = 20_000
    @Option(name: .long) var readers: Int = 2
    @Option(name: .customLong("mean-kill-interval")) var meanKillInterval: Double = 1.5
    @Option(name: .long, help: "The `strata` executable the soak runs `compact` and `verify` with (default: `strata` next to this one).")
    var strata: String?

    /// The vector of (id, version): a pure function, so the test can check what it reads back.
    static func vector(id: UInt64, version: Int64, dimension: Int) -> [Float] {
        (0..<dimension).map { d in Float((Int64(id % 100_000) &* 31 &+ version &* 17 &+ Int64(d) &* 7) % 1000) / 100 - 5 }
    }

    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    func run() throws {
        switch mode {
        case "writer": try writer()
        case "compact-loop": try compactLoop()
        case "reader": try reader()
        case "soak": try soak()
        case "soak-writer": try soakWriter()
        case "soak-reader": try soakReader()
        case "soak-check": try soakCheckOnly()
        case "remote-writer": try remoteWriter()
        default: throw ValidationError("unknown mode \(mode)")
        }
    }

    func writer() throws {
        var o = CollectionOptions()
        o.flushThresholdRows = flushRows
        o.index = nil
        o.obsoleteFileGraceSeconds = 0
        let c = try StrataCollection.open(path: directory, access: .readWrite, options: o)
        var live = Set<UInt64>()
        try c.snapshot().forEachRow { live.insert($0.id) }
        var rng = IndexRandom(seed: seed)
        let dim = c.schema.dimension
        for n in 0..<ops {
            let version = opBase + Int64(n)
            let r = rng.int(100)
            if r < 40 || live.isEmpty {
                var ids: [UInt64] = []
                var tries = 0
                while ids.count < 1 + rng.int(40), tries < 200 {
                    tries += 1
                    let id = rng.next() % idSpace
                    if !live.contains(id), !ids.contains(id) { ids.append(id) }
                }
                guard !ids.isEmpty else { continue }
                Self.say("B \(n) P \(version) \(ids.map(String.init).joined(separator: ","))")
                try c.insert(ids.map { SegmentRow(id: $0, vector: Self.vector(id: $0, version: version, dimension: dim), payload: ["ver": .int64(version)]) })
                live.formUnion(ids)
            } else if r < 65 {
                var ids: [UInt64] = []
                let liveList = Array(live)
                for _ in 0..<(1 + rng.int(20)) {
                    let id = rng.int(2) == 0 ? liveList[rng.int(liveList.count)] : rng.next() % idSpace
                    if !ids.contains(id) { ids.append(id) }
                }
                Self.say("B \(n) P \(version) \(ids.map(String.init).joined(separator: ","))")
                try c.upsert(ids.map { SegmentRow(id: $0, vector: Self.vector(id: $0, version: version, dimension: dim), payload: ["ver": .int64(version)]) })
                live.formUnion(ids)
            } else if r < 92 {
                var ids: [UInt64] = []
                let liveList = Array(live)
                for _ in 0..<(1 + rng.int(20)) {
                    ids.append(rng.int(3) > 0 ? liveList[rng.int(liveList.count)] : rng.next() % idSpace)
                }
                Self.say("B \(n) D \(ids.map(String.init).joined(separator: ","))")
                try c.delete(ids: ids)
                live.subtract(ids)
            } else {
                Self.say("B \(n) F")
                try c.flush()
            }
            Self.say("A \(n)")
        }
        c.close()
    }

    func compactLoop() throws {
        var p = CompactionPolicy()
        p.mergeFactor = 2
        p.tierBaseRows = 100
        p.deletedFractionThreshold = 0.1
        p.index = nil
        p.graceSeconds = 0
        let end = now() + seconds
        var runs = 0
        while now() < end {
            let r = try Compactor(path: directory, policy: p).run()
            runs += 1
            if r.done.isEmpty { usleep(5_000) }
        }
        Self.say("runs \(runs)")
    }

    struct ReaderReport: Encodable { var searches: Int; var mismatches: Int; var errors: Int; var messages: [String]; var generations: Int }

    /// Searches continuously; each result is compared with a brute-force scan of the same snapshot.
    func reader() throws {
        let c = try StrataCollection.open(path: directory, access: .readOnly)
        var rng = IndexRandom(seed: seed)
        var report = ReaderReport(searches: 0, mismatches: 0, errors: 0, messages: [], generations: 0)
        var gens = Set<UInt64>()
        let end = now() + seconds
        let dim = c.schema.dimension
        while now() < end {
            do {
                let snap = try c.snapshot()
                gens.insert(snap.generation)
                let q = (0..<dim).map { _ in Float(rng.int(1000)) / 100 - 5 }
                let hits = try snap.search(query: q, options: SearchOptions(k: 10))
                var all: [(UInt64, Double)] = []
                try snap.forEachRow { r in
                    all.append((r.id, zip(q, r.vector).reduce(0.0) { let d = Double($1.0) - Double($1.1); return $0 + d * d }))
                }
                all.sort { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
                let ref = all.prefix(10)
                report.searches += 1
                var ok = hits.count == ref.count
                if ok {
                    for (h, r) in zip(hits, ref) where h.id != r.0 || abs(Double(h.distance) - r.1) > 1e-3 * max(1, r.1) {
                        // A tie at equal distance may order differently only if distances agree.
                        if abs(Double(h.distance) - r.1) > 1e-3 * max(1, r.1) { ok = false }
                    }
                    let liveIds = Set(all.map(\.0))
                    if !hits.allSatisfy({ liveIds.contains($0.id) }) { ok = false }
                }
                if !ok {
                    report.mismatches += 1
                    if report.messages.count < 5 { report.messages.append("gen \(snap.generation): got \(hits) want \(ref.map { "\($0.0)@\($0.1)" })") }
                }
            } catch {
                report.errors += 1
                if report.messages.count < 5 { report.messages.append("\(error)") }
            }
        }
        report.generations = gens.count
        try printJSON(report)
    }
}

/// Seconds since an arbitrary origin, monotonic: the library's one clock.
func now() -> Double { monotonicSeconds() }

/// Writes a JSON document to stdout as `strata --json` does (pretty, sorted keys); the reports here
/// hold only finite numbers, so the CLI's null-for-non-finite rewriting is not needed.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try encoder.encode(value) + Data([0x0A]))
}

