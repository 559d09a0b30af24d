// Corruption sweep over a small collection: three sealed segments, two delete bitmaps, a
// MANIFEST and a WAL with three records. For every file: zero every 4 KiB page, truncate at every
// length (sampled for segments), flip every byte with xor 0xFF and xor 0x01 (a deterministic sample
// for segments). Each damaged copy is opened read-only, verified, read (count, every row, search)
// and opened read-write. Acceptable outcomes:
// - a thrown StrataError (the API is typed-throws, so every error is one);
// - content and search identical to the original;
// - a WAL replay that stopped early: the content equals the state after the first k of the WAL's
//   records. For the live WAL (format 2.0, C.4) this is allowed only for a truncation, and k must be
//   the number of records wholly before the cut; the read-write open must have moved the cut-off
//   bytes, exactly, to the side file it reports. Every flipped byte and zeroed page of the live WAL
//   must be a typed error: a complete record that does not verify is damage, never a torn tail
//   (see also testDamagedWALRecordIsRefusedNotDropped);
// - different content while verify reports a problem (the damage is detected; segment open is
//   O(1) and checks block checksums lazily, verify checks all of them).
// Different content while verify says sound is a failure, and so is a trap or a hang. For segment
// damage, `scrub` must agree with verify, and a read-only open with verified reads
// (`CollectionOptions.verifyReads`) must either throw or read exactly the original content.
import Foundation
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataIndex
@testable import StrataTools

final class CollectionCorruptionTests: CollectionTestCase {
    /// Everything observable: id -> (version, tag, vector bits), count, and search results.
    struct State: Equatable {
        var rows: [UInt64: String]
        var count: Int
        var hits: [[CollectionHit]]

        static let queries: [[Float]] = (0..<3).map { q in CollectionTestCase.vector(UInt64(7_000 + q), 1) }

        init(_ c: StrataCollection) throws(StrataError) {
            let snap = try c.snapshot()
            var rows: [UInt64: String] = [:]
            var duplicate = false
            do {
                try snap.forEachRow { r in
                    let v = "\(r.payload) \(r.vector.map(\.bitPattern))"
                    if rows.updateValue(v, forKey: r.id) != nil { duplicate = true }
                }
            } catch let e as StrataError { throw e } catch { throw StrataError(.corrupt, "untyped error \(error)") }
            if duplicate { rows[UInt64.max] = "duplicate id" }
            self.rows = rows
            count = snap.count
            hits = try Self.queries.map { q throws(StrataError) in try snap.search(query: q, options: SearchOptions(k: 6)) }
        }
    }

    enum Outcome: Hashable {
        case error(String)          // a StrataError from open (read-only) or from reading
        case identical              // content and search equal the original, verify sound
        case identicalUnsound       // equal content, verify reports a problem (e.g. damage in padding it checks)
        case walPrefix(Int)         // replay stopped early: the state after the first k WAL records
        case detected               // different content, verify reports a problem
        case failure(String)
    }

    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var counts: [String: [Outcome: Int]] = [:]
        private(set) var failures: [String] = []
        func record(_ kind: String, _ o: Outcome, _ what: String) {
            lock.lock(); defer { lock.unlock() }
            if case .failure(let m) = o { failures.append("\(kind) \(what): \(m)"); return }
            counts[kind, default: [:]][o, default: 0] += 1
        }
    }

    struct Fixture {
        var files: [String: [UInt8]]
        var original: State
        /// prefixes[k]: the state after the first k WAL records (the last one is `original`).
        var prefixes: [State]
    }

    /// The WAL named by the fixture's manifest; any other WAL file is obsolete (kept until a later
    /// publish removes it).
    static let liveWAL = CollectionFiles.walName(4)

    static func kind(of name: String) -> String {
        if name == "MANIFEST" { return "manifest" }
        if CollectionFiles.isWAL(name) { return name == liveWAL ? "wal" : "obsolete wal" }
        if name.hasSuffix(".del") { return "bitmap" }
        return "segment"
    }

    /// seg 0..<40 | seg 40..<80 (+ bitmap of seg 1: 3, 5 deleted) | seg 80..<100 (+ bitmap of seg 2:
    /// 41, 50 deleted) | WAL: insert 100..<110, delete 7 and 85, upsert 2 and 105.
    func makeFixture() throws -> Fixture {
        let dir = tmpPath("orig.coll")
        let c = try StrataCollection.create(path: dir, schema: Self.schema, options: options())
        try c.insert(rows(0..<40))
        try c.flush()
        try c.insert(rows(40..<80))
        _ = try c.delete(ids: [3, 5])
        try c.flush()
        try c.insert(rows(80..<100))
        _ = try c.delete(ids: [41, 50])
        try c.flush()
        var prefixes = [try State(c)]
        try c.insert(rows(100..<110))
        prefixes.append(try State(c))
        _ = try c.delete(ids: [7, 85])
        prefixes.append(try State(c))
        try c.upsert(rows([2, 105], version: 1))
        let original = try State(c)
        prefixes.append(original)
        c.close()
        let stats = try StrataCollection.open(path: dir, access: .readOnly).stats()
        XCTAssertEqual(stats.segments.count, 3)
        XCTAssertEqual(stats.segments.filter { $0.deleteFile != nil }.count, 2)
        let report = try StrataCollection.verify(path: dir)
        XCTAssertTrue(report.isSound && report.notes.isEmpty, "\(report.problems) \(report.notes)")
        var files: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where !name.hasSuffix(".lock") && name != "LOCK" {
            files[name] = Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name)")))
        }
        XCTAssertEqual(Set(files.keys.map(Self.kind)), ["manifest", "wal", "obsolete wal", "bitmap", "segment"])
        XCTAssertEqual(files.count, 8, "\(files.keys.sorted())")
        return Fixture(files: files, original: original, prefixes: prefixes)
    }

    /// Restores `dir` to the fixture with `name` replaced by `bytes`, then probes it.
    static func probe(dir: String, fixture: Fixture, name: String, bytes: [UInt8], options: CollectionOptions) -> Outcome {
        let fm = FileManager.default
        try? fm.removeItem(atPath: dir)
        do {
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: false)
            for (n, b) in fixture.files { try Data(n == name ? bytes : b).write(to: URL(fileURLWithPath: "\(dir)/\(n)")) }
        } catch { return .failure("cannot write the copy: \(error)") }
        let ro: Result<State, StrataError>
        do throws(StrataError) {
            let c = try StrataCollection.open(path: dir, access: .readOnly)
            ro = .success(try State(c))
            c.close()
        } catch { ro = .failure(error) }
        let sound: Bool
        do throws(StrataError) { sound = try StrataCollection.verify(path: dir).isSound } catch { return .failure("verify threw \(error)") }
        if kind(of: name) == "segment" {
            // Scrub runs the same per-segment checks as verify: it must agree on segment damage.
            let scrubSound: Bool
            do throws(StrataError) { scrubSound = try StrataCollection.scrub(path: dir).isSound } catch { return .failure("scrub threw \(error)") }
            if scrubSound != sound { return .failure("scrub says \(scrubSound ? "sound" : "damaged"), verify \(sound ? "sound" : "damaged")") }
            // With verified reads, reading either fails or answers as the sound collection does.
            var verified = CollectionOptions()
            verified.verifyReads = true
            do throws(StrataError) {
                let c = try StrataCollection.open(path: dir, access: .readOnly, options: verified)
                let state = try State(c)
                c.close()
                if state != fixture.original { return .failure("verified reads answered differently, without an error") }
            } catch {
                if sound { return .failure("verified reads threw \(error) on a collection verify calls sound") }
            }
        }
        // Read-write open (cleans up, cuts a torn WAL tail) must agree with the read-only one.
        var rwState: State? = nil
        do throws(StrataError) {
            let c = try StrataCollection.open(path: dir, access: .readWrite, options: options)
            rwState = try State(c)
            let dropped = Int(c.recovery.droppedBytes)
            if dropped > 0 {
                // A torn tail is never destroyed: its bytes are in the side file the open reports.
                guard let side = c.recovery.tornTailFile,
                      let kept = try? Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(side)")), Array(kept) == Array(bytes.suffix(dropped)),
                      let wal = try? Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name)")), Array(wal) == Array(bytes.dropLast(dropped)) else {
                    return .failure("\(dropped) bytes of torn tail not kept exactly (side file \(c.recovery.tornTailFile ?? "none"))")
                }
            }
            c.close()
        } catch {
            if case .success = ro { return .failure("read-write open threw \(error.code) where read-only opened") }
        }
        switch ro {
        case .failure(let e):
            if rwState != nil { return .failure("read-only open threw \(e.code) where read-write opened") }
            if sound { return .failure("open threw \(e) but verify says sound") }
            return .error(e.code.rawValue)
        case .success(let state):
            guard rwState == state else { return .failure("read-write state differs from read-only state") }
            if state == fixture.original { return sound ? .identical : .identicalUnsound }
            if let k = fixture.prefixes.dropLast().firstIndex(of: state), Self.kind(of: name) == "wal" { return .walPrefix(k) }
            return sound ? .failure("verify sound but content or search differ (\(state.count) rows, want \(fixture.original.count))") : .detected
        }
    }

    /// Where damaged copies live: tmpfs when there is one (the read-write open of a torn WAL writes
    /// a side file and cuts the WAL, with fsyncs, and thousands of fsyncs to disk would dominate the
    /// time), else the test's temp directory.
    func probeBase() throws -> String {
        guard FileManager.default.isWritableFile(atPath: "/dev/shm") else { return tmp.path }
        let base = "/dev/shm/strata-corruption-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        return base
    }

    /// The mutations of one file: (description, bytes).
    func mutations(of bytes: [UInt8], sampled: Bool) -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        for page in stride(from: 0, to: bytes.count, by: 4096) {
            var b = bytes
            for i in page..<min(page + 4096, b.count) { b[i] = 0 }
            out.append(("zero page at \(page)", b))
        }
        let n = bytes.count
        let lengths = sampled ? Array(Set(Array(stride(from: 0, to: n, by: 509)) + Array(0..<min(n, 80)) + Array(max(0, n - 300)..<n))).sorted()
            : Array(0..<n)
        for len in lengths { out.append(("truncate to \(len)", Array(bytes[0..<len]))) }
        let offsets = sampled ? Array(Set(Array(stride(from: 0, to: n, by: 97)) + Array(0..<min(n, 64)) + Array(max(0, n - 256)..<n))).sorted()
            : Array(0..<n)
        for mask: UInt8 in sampled ? [0xFF] : [0xFF, 0x01] {
            for i in offsets {
                var b = bytes
                b[i] ^= mask
                out.append(("byte \(i) ^ 0x\(String(mask, radix: 16))", b))
            }
        }
        return out
    }

    /// What the live WAL's mutation `what` must give (nil when `outcome` is right): a truncation at
    /// or after the header keeps exactly the records wholly before the cut; anything else is a typed
    /// error. `ends`: where each record ends.
    static func walExpectation(_ what: String, _ outcome: Outcome, ends: [Int]) -> String? {
        if what.hasPrefix("truncate to "), let length = Int(what.dropFirst("truncate to ".count)), length >= WALFormat.headerLength {
            let k = ends.filter { $0 <= length }.count
            return outcome == .walPrefix(k) ? nil : "want the first \(k) records, got \(outcome)"
        }
        if case .error = outcome { return nil }
        return "want a typed error (damage, not a torn tail), got \(outcome)"
    }

    /// A flipped bit anywhere in a WAL record, the last one included (its length field too, which
    /// the 2.0 header checksum covers), makes open and verify fail with `checksumMismatch`: dropping
    /// the record and every later one would lose acknowledged writes silently.
    func testDamagedWALRecordIsRefusedNotDropped() throws {
        let fixture = try makeFixture()
        let wal = try XCTUnwrap(fixture.files[Self.liveWAL])
        let spans = Self.walRecordSpans(wal)
        XCTAssertEqual(spans.last?.upperBound, wal.count)
        XCTAssertEqual(spans.count, 3)
        let base = try probeBase()
        defer { if base != tmp.path { try? FileManager.default.removeItem(atPath: base) } }
        let dir = "\(base)/probe.coll"
        var cases = 0
        for (r, span) in spans.enumerated() {
            for i in stride(from: span.lowerBound, to: span.upperBound, by: max(1, span.count / 40)) {
                var bytes = wal
                bytes[i] ^= 0x01
                let outcome = Self.probe(dir: dir, fixture: fixture, name: Self.liveWAL, bytes: bytes, options: options(grace: 3600))
                XCTAssertEqual(outcome, .error(StrataError.Code.checksumMismatch.rawValue), "record \(r), byte \(i)")
                cases += 1
            }
        }
        XCTAssertGreaterThan(cases, 100)
    }

    func testCorruptEveryFileOfACollection() throws {
        let fixture = try makeFixture()
        let tally = Tally()
        let start = Date()
        var list: [(name: String, what: String, bytes: [UInt8])] = []
        for (name, bytes) in fixture.files.sorted(by: { $0.key < $1.key }) {
            for (what, b) in mutations(of: bytes, sampled: ["segment", "obsolete wal"].contains(Self.kind(of: name))) { list.append((name, what, b)) }
        }
        let jobs = list
        // A long grace period: the read-write open then removes no obsolete file and publishes no
        // manifest, so a case costs no fsync (the sweep would take minutes otherwise).
        let opts = options(grace: 3600)
        let workers = 2
        let base = try probeBase()
        defer { if base != tmp.path { try? FileManager.default.removeItem(atPath: base) } }
        let dirs = (0..<workers).map { "\(base)/probe-\($0).coll" }
        let ends = Self.walRecordSpans(try XCTUnwrap(fixture.files[Self.liveWAL])).map(\.upperBound)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for j in stride(from: w, to: jobs.count, by: workers) {
                let job = jobs[j]
                var outcome = Self.probe(dir: dirs[w], fixture: fixture, name: job.name, bytes: job.bytes, options: opts)
                if job.name == Self.liveWAL, let wrong = Self.walExpectation(job.what, outcome, ends: ends) { outcome = .failure(wrong) }
                tally.record(Self.kind(of: job.name), outcome, "\(job.name) \(job.what)")
            }
        }
        let seconds = Date().timeIntervalSince(start)
        for (kind, counts) in tally.counts.sorted(by: { $0.key < $1.key }) {
            let size = fixture.files.filter { Self.kind(of: $0.key) == kind }.map { "\($0.value.count)" }.joined(separator: "+")
            var errors: [String: Int] = [:]
            var identical = 0, identicalUnsound = 0, detected = 0
            var prefixes: [Int: Int] = [:]
            for (o, n) in counts {
                switch o {
                case .error(let code): errors[code, default: 0] += n
                case .identical: identical += n
                case .identicalUnsound: identicalUnsound += n
                case .walPrefix(let k): prefixes[k, default: 0] += n
                case .detected: detected += n
                case .failure: break
                }
            }
            let total = counts.values.reduce(0, +)
            print("collection corruption [\(kind), \(size) bytes]: \(total) cases: typed error \(errors.values.reduce(0, +)) "
                  + "[\(errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))]; identical \(identical); "
                  + "identical but verify reports \(identicalUnsound); WAL replay stopped early \(prefixes.values.reduce(0, +)) "
                  + "[\(prefixes.sorted { $0.key < $1.key }.map { "after \($0.key) of 3 records: \($0.value)" }.joined(separator: ", "))]; "
                  + "different, detected by verify \(detected)")
        }
        print(String(format: "collection corruption: %d cases in %.1f s, %d failures", jobs.count, seconds, tally.failures.count))
        XCTAssertEqual(tally.failures.prefix(20).map { $0 }, [])
        // Damage to the manifest or a bitmap is always refused at open: both are small and checksummed.
        for kind in ["manifest", "bitmap"] {
            let c = tally.counts[kind] ?? [:]
            XCTAssertEqual(c.filter { if case .error = $0.key { return false }; return true }.values.reduce(0, +), 0, "\(kind): \(c)")
        }
    }
}
