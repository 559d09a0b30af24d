import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

#if canImport(Glibc)
import Glibc
#endif

// The soak run of `tools/soak/run.sh`: `strata-soak soak WORKDIR` is the supervisor. It creates
// WORKDIR/coll and starts, as separate processes, one `strata-soak soak-writer`, N
// `strata-soak soak-reader`s and `strata compact` runs one after another (small tiers, so
// compactions happen). At random
// intervals it SIGKILLs one of them (writer, compactor, sometimes a reader) and restarts it. After
// each writer kill, with the writer dead and the compactor and readers still running, it checks
// the collection against the writer's journal (every acknowledged row present once with its vector
// and payload, every acknowledged delete absent, exact search against the model) and runs
// `strata verify`.
//
// Journal (WORKDIR/journal.log), one line per event, appended by the writer:
//   B <n> I <version> <id,id,...>   insert begun       B <n> U <version> <ids>   upsert begun
//   B <n> D <ids>                   delete begun       B <n> F                   flush begun
//   A <n>                           op n acknowledged: written and fdatasync'ed only after the
//                                   library call returned
// and by the supervisor's check, for the one op begun but not acknowledged when the writer died:
//   R <n> 1|0                       op n was found applied (1) or not applied (0)
// Op numbers are unique across writer sessions (`--op-base`), and an op's version is its number.

struct SoakError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The writer's append-only journal: `write` then, for acknowledgements, `fdatasync`. Raw POSIX
/// calls on purpose: this is the test rig's own record of what the library acknowledged, kept apart
/// from the code under test (the library's file layer is internal and has no public durable append).
struct SoakJournal {
    let fd: Int32
    init(path: String) throws {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SoakError("cannot open journal \(path): errno \(errno)") }
    }
    func append(_ line: String, sync: Bool) throws {
        let bytes = Array((line + "\n").utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw SoakError("journal write failed: errno \(errno)") }
        if sync, fdatasync(fd) != 0 { throw SoakError("journal fdatasync failed: errno \(errno)") }
    }
    func close() { _ = Glibc.close(fd) }
}

extension SoakDriverCommand {
    static let soakDimension = 8

    // MARK: writer

    /// Inserts, upserts, deletes and flushes in batches; logs each op to the journal before the call
    /// ("B") and acknowledges it ("A", fdatasync) after the call returned. Keeps at most `maxRows`
    /// live rows. Runs until killed or `seconds` have passed.
    func soakWriter() throws {
        var o = CollectionOptions()
        o.flushThresholdRows = flushRows
        o.index = nil
        o.obsoleteFileGraceSeconds = 10
        let c = try StrataCollection.open(path: directory, access: .readWrite, options: o)
        var live = Set<UInt64>()
        try c.snapshot().forEachRow { live.insert($0.id) }
        let j = try SoakJournal(path: journal)
        var rng = IndexRandom(seed: seed)
        let dim = c.schema.dimension
        let end = now() + seconds
        func rows(_ ids: [UInt64], _ version: Int64) -> [SegmentRow] {
            ids.map { SegmentRow(id: $0, vector: Self.vector(id: $0, version: version, dimension: dim), payload: ["ver": .int64(version)]) }
        }
        func list(_ ids: [UInt64]) -> String { ids.map(String.init).joined(separator: ",") }
        var n = 0
        while n < ops, now() < end {
            let op = opBase + Int64(n)
            n += 1
            let r = rng.int(100)
            let roomFor = maxRows - live.count
            if (r < 45 && roomFor > 0) || live.isEmpty {
                var ids: [UInt64] = []
                let want = min(1 + rng.int(50), max(1, roomFor))
                var tries = 0
                while ids.count < want, tries < 400 {
                    tries += 1
                    let id = rng.next() % idSpace
                    if !live.contains(id), !ids.contains(id) { ids.append(id) }
                }
                guard !ids.isEmpty else { continue }
                try j.append("B \(op) I \(op) \(list(ids))", sync: false)
                try c.insert(rows(ids, op))
                live.formUnion(ids)
            } else if r < 65 {
                let liveList = Array(live)
                var ids: [UInt64] = []
                for _ in 0..<(1 + rng.int(20)) {
                    let id = (rng.int(3) > 0 || roomFor <= 20) ? liveList[rng.int(liveList.count)] : rng.next() % idSpace
                    if !ids.contains(id) { ids.append(id) }
                }
                try j.append("B \(op) U \(op) \(list(ids))", sync: false)
                try c.upsert(rows(ids, op))
                live.formUnion(ids)
            } else if r < 97 {
                let liveList = Array(live)
                var ids: [UInt64] = []
                for _ in 0..<(1 + rng.int(30)) {
                    let id = rng.int(5) > 0 ? liveList[rng.int(liveList.count)] : rng.next() % idSpace
                    if !ids.contains(id) { ids.append(id) }
                }
                try j.append("B \(op) D \(list(ids))", sync: false)
                _ = try c.delete(ids: ids)
                live.subtract(ids)
            } else {
                try j.append("B \(op) F", sync: false)
                _ = try c.flush()
            }
            try j.append("A \(op)", sync: true)
        }
        j.close()
        c.close()
    }

    // MARK: reader

    struct SoakReaderReport: Codable { var searches = 0; var mismatches = 0; var errors = 0; var generations = 0 }

    /// Searches in a loop, each result checked against a brute-force scan of the same snapshot.
    /// Prints its running totals as one JSON line about once a second (it expects to be killed) and
    /// each mismatch or error on stderr.
    func soakReader() throws {
        let c = try StrataCollection.open(path: directory, access: .readOnly)
        var rng = IndexRandom(seed: seed)
        var report = SoakReaderReport()
        var gens = Set<UInt64>()
        let end = now() + seconds
        let dim = c.schema.dimension
        let encoder = JSONEncoder()
        var lastReport = now()
        func emit() {
            report.generations = gens.count
            if let d = try? encoder.encode(report) { FileHandle.standardOutput.write(d + Data([0x0A])) }
        }
        while now() < end {
            do {
                let snap = try c.snapshot()
                gens.insert(snap.generation)
                let q = (0..<dim).map { _ in Float(rng.int(1000)) / 100 - 5 }
                let k = 1 + rng.int(20)
                let hits = try snap.search(query: q, options: SearchOptions(k: k))
                var all: [(UInt64, Double)] = []
                try snap.forEachRow { r in all.append((r.id, Self.l2(q, r.vector))) }
                report.searches += 1
                if let problem = Self.compare(hits: hits, reference: all, k: k) {
                    report.mismatches += 1
                    FileHandle.standardError.write(Data("mismatch (generation \(snap.generation)): \(problem)\n".utf8))
                }
            } catch {
                report.errors += 1
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            }
            if now() - lastReport >= 1 { emit(); lastReport = now() }
        }
        emit()
    }

    static func l2(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0.0) { let d = Double($1.0) - Double($1.1); return $0 + d * d }
    }

    /// nil when `hits` are an exact top-k of `reference` (every (id, distance) of the rows): the
    /// same count, the same distances in order (ids may differ only among equal distances), every
    /// id present in the reference with the distance reported, no id twice.
    static func compare(hits: [CollectionHit], reference: [(UInt64, Double)], k: Int) -> String? {
        let sorted = reference.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
        let want = sorted.prefix(k)
        guard hits.count == want.count else { return "got \(hits.count) hits, want \(want.count)" }
        let byId = Dictionary(reference, uniquingKeysWith: { a, _ in a })
        guard Set(hits.map(\.id)).count == hits.count else { return "an id twice in \(hits)" }
        for (h, w) in zip(hits, want) {
            let tol = 1e-3 * max(1, w.1)
            guard abs(Double(h.distance) - w.1) <= tol else { return "got \(hits) want \(want.map { "\($0.0)@\($0.1)" })" }
            guard let d = byId[h.id], abs(d - Double(h.distance)) <= tol else { return "hit \(h) is not a live row at that distance" }
        }
        return nil
    }

    // MARK: supervisor

    final class Child {
        let kind: String
        let process: Process
        let out: String
        let err: String
        init(kind: String, process: Process, out: String, err: String) { self.kind = kind; self.process = process; self.out = out; self.err = err }
        func tail(_ path: String, _ n: Int = 600) -> String {
            let d = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
            return String(decoding: d.suffix(n), as: UTF8.self)
        }
    }

    struct SoakSummary: Encodable {
        var seconds_requested: Double
        var seconds_elapsed: Double = 0
        var max_rows: Int
        var readers: Int
        var acknowledged_ops = 0
        var acknowledged_inserts = 0
        var acknowledged_upserts = 0
        var acknowledged_deletes = 0
        var acknowledged_flushes = 0
        var rows_inserted = 0
        var rows_upserted = 0
        var ids_deleted = 0
        var searches_checked = 0
        var searches_by_readers = 0
        var searches_by_checks = 0
        var search_mismatches = 0
        var reader_errors = 0
        var compaction_runs = 0
        var compactions_completed = 0
        var compaction_lock_busy = 0
        var compaction_failures = 0
        var kills: [String: Int] = ["writer": 0, "compactor": 0, "reader": 0]
        var restarts = 0
        var checks = 0
        var verify_failures = 0
        var inflight_applied = 0
        var inflight_not_applied = 0
        var losses = 0
        var unexpected_rows = 0
        var duplicates = 0
        var wrong_vectors = 0
        var unexpected_exits = 0
        var live_rows_final = 0
        var live_rows_max = 0
        var messages: [String] = []
        var ok = false
    }

    enum SoakOp { case put(version: Int64, ids: [UInt64], upsert: Bool), delete([UInt64]), flush }

    /// The journal's acknowledged state (id -> version), the counts, and the op begun but neither
    /// acknowledged nor resolved. A trailing partial line (a kill inside `write`) is cut off first.
    static func readJournal(_ path: String, summary: inout SoakSummary) throws -> (model: [UInt64: Int64], pending: (Int64, SoakOp)?) {
        var data = (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()
        if let last = data.last, last != 0x0A {
            let keep = (data.lastIndex(of: 0x0A).map { $0 + 1 }) ?? 0
            guard truncate(path, off_t(keep)) == 0 else { throw SoakError("cannot truncate the journal's partial line") }
            data = data.prefix(keep)
        }
        var model: [UInt64: Int64] = [:]
        var pending: (Int64, SoakOp)? = nil
        summary.acknowledged_ops = 0; summary.acknowledged_inserts = 0; summary.acknowledged_upserts = 0
        summary.acknowledged_deletes = 0; summary.acknowledged_flushes = 0
        summary.rows_inserted = 0; summary.rows_upserted = 0; summary.ids_deleted = 0
        func apply(_ op: SoakOp) {
            switch op {
            case .put(let v, let ids, _): for id in ids { model[id] = v }
            case .delete(let ids): for id in ids { model[id] = nil }
            case .flush: break
            }
        }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 2, let n = Int64(f[1]) else { throw SoakError("bad journal line \(line)") }
            func ids(_ i: Int) -> [UInt64] { f.count > i ? f[i].split(separator: ",").compactMap { UInt64($0) } : [] }
            switch f[0] {
            case "B":
                guard pending == nil else { throw SoakError("journal: op \(n) begun while \(pending!.0) is unresolved") }
                switch f.count > 2 ? f[2] : "" {
                case "I": pending = (n, .put(version: Int64(f[3])!, ids: ids(4), upsert: false))
                case "U": pending = (n, .put(version: Int64(f[3])!, ids: ids(4), upsert: true))
                case "D": pending = (n, .delete(ids(3)))
                case "F": pending = (n, .flush)
                default: throw SoakError("bad journal line \(line)")
                }
            case "A", "R":
                guard let (p, op) = pending, p == n else { throw SoakError("journal: \(line) without its begin") }
                pending = nil
                if f[0] == "R", f.count > 2, f[2] == "0" { continue }
                apply(op)
                if f[0] == "R" { continue }
                summary.acknowledged_ops += 1
                switch op {
                case .put(_, let ids, false): summary.acknowledged_inserts += 1; summary.rows_inserted += ids.count
                case .put(_, let ids, true): summary.acknowledged_upserts += 1; summary.rows_upserted += ids.count
                case .delete(let ids): summary.acknowledged_deletes += 1; summary.ids_deleted += ids.count
                case .flush: summary.acknowledged_flushes += 1
                }
            default: throw SoakError("bad journal line \(line)")
            }
        }
        return (model, pending)
    }

    /// With the writer dead: compares the collection with the journal, resolves the in-flight op
    /// (appends "R n 1|0"), searches against the model, and runs `strata verify` (`strata`: its path).
    func soakCheck(collection: String, journalPath: String, strata: String, logs: String, tag: String,
                   rng: inout IndexRandom, summary: inout SoakSummary) throws {
        summary.checks += 1
        func note(_ m: String) {
            if summary.messages.count < 40 { summary.messages.append("check \(summary.checks): \(m)") }
            FileHandle.standardError.write(Data("soak: check \(summary.checks): \(m)\n".utf8))
        }
        let (model, pending) = try Self.readJournal(journalPath, summary: &summary)
        let c = try StrataCollection.open(path: collection, access: .readOnly)
        let snap = try c.snapshot()
        var got: [UInt64: Int64] = [:]
        var dup = 0, wrongVector = 0
        var all: [(UInt64, [Float])] = []
        try snap.forEachRow { r in
            guard case .int64(let v) = r.payload.first ?? .null else { wrongVector += 1; return }
            if got.updateValue(v, forKey: r.id) != nil { dup += 1 }
            if r.vector != Self.vector(id: r.id, version: v, dimension: Self.soakDimension) { wrongVector += 1 }
            all.append((r.id, r.vector))
        }
        func diff(_ m: [UInt64: Int64]) -> (lost: Int, extra: Int) {
            (m.filter { got[$0.key] != $0.value }.count, got.keys.filter { m[$0] == nil }.count)
        }
        var expected = model
        var d = diff(model)
        if let (n, op) = pending {
            var withOp = model
            switch op {
            case .put(let v, let ids, _): for id in ids { withOp[id] = v }
            case .delete(let ids): for id in ids { withOp[id] = nil }
            case .flush: break
            }
            let d2 = diff(withOp)
            let applied = withOp != model && d2.lost + d2.extra < d.lost + d.extra
            if applied { expected = withOp; d = d2; summary.inflight_applied += 1 } else { summary.inflight_not_applied += 1 }
            let j = try SoakJournal(path: journalPath)
            try j.append("R \(n) \(applied ? 1 : 0)", sync: true)
            j.close()
        }
        summary.live_rows_max = max(summary.live_rows_max, got.count)
        summary.live_rows_final = got.count
        if d.lost > 0 || d.extra > 0 || dup > 0 || wrongVector > 0 || snap.count != expected.count {
            let missing = expected.filter { got[$0.key] != $0.value }.prefix(5).map { "\($0.key)@v\($0.value) got \(got[$0.key].map(String.init) ?? "none")" }
            note("lost \(d.lost), unexpected \(d.extra), duplicates \(dup), wrong vectors \(wrongVector), count \(snap.count) want \(expected.count); e.g. \(missing)")
        }
        summary.losses += d.lost
        summary.unexpected_rows += d.extra
        summary.duplicates += dup
        summary.wrong_vectors += wrongVector
        // Exact search against the journal's model (not against the collection's own rows).
        let reference = expected.map { ($0.key, $0.value) }
        for _ in 0..<4 {
            let q = (0..<Self.soakDimension).map { _ in Float(rng.int(1000)) / 100 - 5 }
            let k = 1 + rng.int(20)
            let hits = try snap.search(query: q, options: SearchOptions(k: k))
            let ref = reference.map { ($0.0, Self.l2(q, Self.vector(id: $0.0, version: $0.1, dimension: Self.soakDimension))) }
            summary.searches_by_checks += 1
            if let problem = Self.compare(hits: hits, reference: ref, k: k) {
                summary.search_mismatches += 1
                note("search: \(problem)")
            }
        }
        c.close()
        let v = try spawn(kind: "verify", args: ["verify", collection, "--json"], exe: strata, logs: logs, tag: tag)
        v.process.waitUntilExit()
        if v.process.terminationStatus != 0 {
            summary.verify_failures += 1
            note("strata verify exited \(v.process.terminationStatus): \(v.tail(v.out, 1500)) \(v.tail(v.err))")
        }
    }

    /// The `strata` executable: `--strata`, else `strata` in this executable's directory (SwiftPM
    /// builds both products into the same one).
    func strataExecutable() throws -> String {
        if let strata { return strata }
        let me = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let path = URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("strata").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("no strata executable at \(path): build it (swift build --product strata) or pass --strata")
        }
        return path
    }

    func spawn(kind: String, args: [String], exe: String, logs: String, tag: String) throws -> Child {
        let out = "\(logs)/\(tag).out", err = "\(logs)/\(tag).err"
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try p.run()
        return Child(kind: kind, process: p, out: out, err: err)
    }

    /// One check of a soak work directory (`directory`) after a run, e.g. of a kept failing one; no
    /// writer may be running.
    func soakCheckOnly() throws {
        let strataExe = try strataExecutable()
        var rng = IndexRandom(seed: seed)
        var summary = SoakSummary(seconds_requested: 0, max_rows: maxRows, readers: 0)
        try soakCheck(collection: "\(directory)/coll", journalPath: "\(directory)/journal.log", strata: strataExe, logs: "\(directory)/logs",
                      tag: "check-only", rng: &rng, summary: &summary)
        summary.ok = summary.losses == 0 && summary.unexpected_rows == 0 && summary.duplicates == 0 && summary.wrong_vectors == 0
            && summary.search_mismatches == 0 && summary.verify_failures == 0
        try printJSON(summary)
        if !summary.ok { throw ExitCode(1) }
    }

    /// Supervisor: `directory` is the work directory (created; must not exist or be empty).
    func soak() throws {
        let fm = FileManager.default
        let work = directory
        let coll = "\(work)/coll", journalPath = "\(work)/journal.log", logs = "\(work)/logs"
        try fm.createDirectory(atPath: logs, withIntermediateDirectories: true)
        guard !fm.fileExists(atPath: coll) else { throw ValidationError("\(coll) exists: use an empty work directory") }
        let exe = try fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let strataExe = try strataExecutable()
        let schema = SegmentSchema(dimension: Self.soakDimension, elementType: .float32, metric: .l2, columns: [ColumnSpec(name: "ver", type: .int64)])
        try StrataCollection.create(path: coll, schema: schema).close()
        FileManager.default.createFile(atPath: journalPath, contents: nil)

        var rng = IndexRandom(seed: seed)
        var summary = SoakSummary(seconds_requested: seconds, max_rows: maxRows, readers: readers)
        var spawned = 0
        func tag(_ kind: String) -> String { spawned += 1; return String(format: "%05d-%@", spawned, kind) }
        var session: Int64 = 0
        func startWriter() throws -> Child {
            session += 1
            return try spawn(kind: "writer", args: ["soak-writer", coll, "--journal", journalPath,
                                                    "--seed", String(seed &* 1000 &+ UInt64(session)), "--op-base", String(session * 10_000_000),
                                                    "--id-space", String(maxRows * 2), "--max-rows", String(maxRows),
                                                    "--flush-rows", String(200 + rng.int(1200)), "--seconds", String(seconds + 600)],
                             exe: exe, logs: logs, tag: tag("writer"))
        }
        func startReader() throws -> Child {
            try spawn(kind: "reader", args: ["soak-reader", coll, "--seed", String(rng.next() % 1_000_000),
                                             "--seconds", String(seconds + 600)], exe: exe, logs: logs, tag: tag("reader"))
        }
        func startCompactor() throws -> Child {
            try spawn(kind: "compactor", args: ["compact", coll, "--json", "--no-index", "--tier-base-rows", "300", "--merge-factor", "2",
                                                "--deleted-threshold", "0.1", "--grace-seconds", "10"],
                      exe: strataExe, logs: logs, tag: tag("compactor"))
        }
        var readerOutputs: [String] = []
        func note(_ m: String) {
            if summary.messages.count < 40 { summary.messages.append(m) }
            FileHandle.standardError.write(Data("soak: \(m)\n".utf8))
        }
        /// A compactor that exited by itself: counts its tasks.
        func finishCompactor(_ c: Child) {
            summary.compaction_runs += 1
            let status = c.process.terminationStatus
            guard c.process.terminationReason == .exit, status == 0,
                  let doc = try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: c.out))) as? [String: Any] else {
                summary.compaction_failures += 1
                note("compactor exited \(status): \(c.tail(c.err))")
                return
            }
            if doc["lock_busy"] as? Bool == true { summary.compaction_lock_busy += 1 }
            summary.compactions_completed += (doc["tasks"] as? [Any])?.count ?? 0
        }
        func killAndWait(_ c: Child) {
            kill(c.process.processIdentifier, SIGKILL)
            c.process.waitUntilExit()
        }

        let start = now()
        let end = start + seconds
        var writer = try startWriter()
        var readerProcs = try (0..<readers).map { _ in try startReader() }
        readerOutputs += readerProcs.map(\.out)
        var compactor: Child? = nil
        var nextCompact = now() + 0.3
        func nextKillDelay() -> Double { 0.2 + Double(rng.int(1000)) / 1000 * 2 * max(0, meanKillInterval - 0.2) }
        var nextKill = now() + nextKillDelay()
        var lastProgress = now()

        while now() < end {
            usleep(20_000)
            if let c = compactor, !c.process.isRunning {
                c.process.waitUntilExit()
                finishCompactor(c)
                compactor = nil
                nextCompact = now() + 0.1 + Double(rng.int(500)) / 1000
            }
            if compactor == nil, now() >= nextCompact { compactor = try startCompactor() }
            if !writer.process.isRunning {
                writer.process.waitUntilExit()
                summary.unexpected_exits += 1
                note("writer exited by itself (status \(writer.process.terminationStatus)): \(writer.tail(writer.err))")
                try soakCheck(collection: coll, journalPath: journalPath, strata: strataExe, logs: logs, tag: tag("verify"), rng: &rng, summary: &summary)
                writer = try startWriter()
                summary.restarts += 1
            }
            for i in readerProcs.indices where !readerProcs[i].process.isRunning {
                summary.unexpected_exits += 1
                note("reader exited by itself (status \(readerProcs[i].process.terminationStatus)): \(readerProcs[i].tail(readerProcs[i].err))")
                readerProcs[i] = try startReader()
                readerOutputs.append(readerProcs[i].out)
                summary.restarts += 1
            }
            if now() >= nextKill {
                let r = rng.int(100)
                if r < 45 || (r < 80 && compactor == nil) {
                    killAndWait(writer)
                    summary.kills["writer", default: 0] += 1
                    try soakCheck(collection: coll, journalPath: journalPath, strata: strataExe, logs: logs, tag: tag("verify"), rng: &rng, summary: &summary)
                    writer = try startWriter()
                } else if r < 80, let c = compactor {
                    killAndWait(c)
                    summary.kills["compactor", default: 0] += 1
                    summary.compaction_runs += 1
                    compactor = nil
                    nextCompact = now() + Double(rng.int(300)) / 1000
                } else if !readerProcs.isEmpty {
                    let i = rng.int(readerProcs.count)
                    killAndWait(readerProcs[i])
                    summary.kills["reader", default: 0] += 1
                    readerProcs[i] = try startReader()
                    readerOutputs.append(readerProcs[i].out)
                }
                summary.restarts += 1
                nextKill = now() + nextKillDelay()
            }
            if now() - lastProgress >= 10 {
                lastProgress = now()
                FileHandle.standardError.write(Data(String(format: "soak: %.0f s, %d checks, kills %@, live rows %d\n", now() - start, summary.checks,
                                                           summary.kills.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
                                                           summary.live_rows_final).utf8))
            }
        }

        // Stop: the writer is killed like any other time (its in-flight op is resolved by the check),
        // the running compaction finishes, the readers are killed after their last report line.
        killAndWait(writer)
        summary.kills["writer", default: 0] += 1
        if let c = compactor { c.process.waitUntilExit(); finishCompactor(c) }
        usleep(1_100_000)
        for r in readerProcs { killAndWait(r) }
        // One last compaction run to completion, then the final check.
        let last = try startCompactor()
        last.process.waitUntilExit()
        finishCompactor(last)
        try soakCheck(collection: coll, journalPath: journalPath, strata: strataExe, logs: logs, tag: tag("verify"), rng: &rng, summary: &summary)

        for path in readerOutputs {
            let text = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data(), as: UTF8.self)
            // The last complete line holds the running totals (a kill may have cut the line after it).
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
            guard let line = lines.last(where: { (try? JSONDecoder().decode(SoakReaderReport.self, from: Data($0.utf8))) != nil }),
                  let rep = try? JSONDecoder().decode(SoakReaderReport.self, from: Data(line.utf8)) else { continue }
            summary.searches_by_readers += rep.searches
            summary.search_mismatches += rep.mismatches
            summary.reader_errors += rep.errors
        }
        summary.searches_checked = summary.searches_by_readers + summary.searches_by_checks
        summary.seconds_elapsed = ((now() - start) * 100).rounded() / 100
        summary.ok = summary.losses == 0 && summary.unexpected_rows == 0 && summary.duplicates == 0 && summary.wrong_vectors == 0
            && summary.search_mismatches == 0 && summary.verify_failures == 0 && summary.reader_errors == 0
            && summary.unexpected_exits == 0 && summary.compaction_failures == 0
        Self.say(String(format: "soak %@: %.0f s, %d ops acknowledged (%d inserts, %d upserts, %d deletes, %d flushes), %d searches checked, "
                     + "%d compactions in %d runs, kills writer=%d compactor=%d reader=%d, %d restarts, %d checks; losses %d, "
                     + "unexpected rows %d, duplicates %d, search mismatches %d, verify failures %d",
                     summary.ok ? "ok" : "FAILED", summary.seconds_elapsed, summary.acknowledged_ops, summary.acknowledged_inserts,
                     summary.acknowledged_upserts, summary.acknowledged_deletes, summary.acknowledged_flushes, summary.searches_checked,
                     summary.compactions_completed, summary.compaction_runs, summary.kills["writer"] ?? 0, summary.kills["compactor"] ?? 0,
                     summary.kills["reader"] ?? 0, summary.restarts, summary.checks, summary.losses, summary.unexpected_rows,
                     summary.duplicates, summary.search_mismatches, summary.verify_failures))
        try printJSON(summary)
        if !summary.ok { throw ExitCode(1) }
    }
}
