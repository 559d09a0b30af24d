// The `input` fuzz harness (tools/fuzz FuzzInput; InputFuzzTests replays its crashers and runs a
// seeded campaign through it): the files `strata build` and `strata insert` read (vectors, TSV
// payload, ids, sparse vectors), from bytes.
//
// Input layout: 11 header bytes, then four parts separated by "\n\u{1E}\n":
//   0 control: bits 0-1 ids (0 row numbers, 1 sequential from `first`, 2 ids file, 3 row numbers),
//              bit 2 upsert, bit 3 a --rows range, bit 4 payload file, bit 5 sparse file,
//              bit 6 cosine (else l2), bit 7 float16 storage
//   1 first row of the range (% 64)   2 rows in the range (% 64)   3..<11 first id, u64 LE
//   parts: .fvecs bytes, payload TSV, ids text, sparse text
// Collection: dimension 4, columns name:string,n:int64?,tags:string_list?,x:float64?,b:bool?, with
// ids 1, 2 and 1000 already live. Properties checked (a violation is returned, and the fuzz
// target traps on it):
//   - every error is a StrataError that names a file (path set);
//   - a rejected preflight writes nothing (live rows, WAL bytes, generation unchanged);
//   - a passed preflight means the whole input inserts (or upserts), in batches, without error;
//   - a passed upsert-mode preflight means `build` of the same files succeeds and verifies;
//   - a failed build leaves no file in its directory.
import Foundation
import Strata
import StrataTools

/// The input fuzz harness.
public enum InputHarness {
    static let columns = try! SegmentSchema.parseColumns("name:string,n:int64?,tags:string_list?,x:float64?,b:bool?")
    static let separator: [UInt8] = [0x0A, 0x1E, 0x0A]
    static let headerLength = 11
    static let liveIds: [UInt64] = [1, 2, 1000]

    /// What one input came to.
    public enum Outcome: Equatable, Sendable {
        /// The files could not be opened as input (a bad vector file, a bad range).
        case unreadable(StrataError.Code)
        /// Preflight refused the input; nothing was written.
        case refused(StrataError.Code)
        /// Everything was inserted: this many rows.
        case inserted(Int)
        /// A property did not hold.
        case violation(String)
    }

    /// Seeds: valid inputs of each shape (ids modes, payload, sparse, range, cosine, float16).
    public static func seeds() -> [[UInt8]] {
        let v = [UInt8](fvecsData((0..<8).map { i in [Float(i + 1), Float(i % 3), 0.5, -1] }))
        let payload = Array((0..<8).map { "name \($0)\t\($0 % 3 == 0 ? "" : String($0))\ta,b\t\(Double($0) / 4)\t\($0 % 2 == 0)\n" }.joined().utf8)
        let ids = Array((0..<8).map { "\(10 + $0 * 3)\n" }.joined().utf8)
        let sparse = Array((0..<8).map { $0 % 4 == 3 ? "\n" : "\($0):0.5,\($0 + 7):\($0)\n" }.joined().utf8)
        return [
            encode(control: 0x34, parts: [v, payload, ids, sparse]),
            encode(control: 0x12, parts: [v, payload, ids, sparse]),
            encode(control: 0x5D, rowStart: 2, rowCount: 5, firstId: 500, parts: [v, payload, ids, sparse]),
            encode(control: 0xB6, parts: [v, payload, ids, sparse]),
        ]
    }

    /// Builds an input from its parts.
    package static func encode(control: UInt8, rowStart: UInt8 = 0, rowCount: UInt8 = 0, firstId: UInt64 = 0, parts: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [control, rowStart, rowCount]
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: firstId >> (8 * UInt64(i)))) }
        for (i, p) in parts.enumerated() {
            if i > 0 { out += separator }
            out += p
        }
        return out
    }

    /// The four parts of `data` after the header (missing ones empty).
    static func parts(_ data: [UInt8]) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        var rest = data.count > headerLength ? Array(data[headerLength...]) : []
        while parts.count < 3, let r = firstRange(of: separator, in: rest) {
            parts.append(Array(rest[..<r.lowerBound]))
            rest = Array(rest[r.upperBound...])
        }
        parts.append(rest)
        while parts.count < 4 { parts.append([]) }
        return parts
    }

    static func firstRange(of needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i..<(i + needle.count) }
        }
        return nil
    }

    /// Runs one input in `scratch` (a directory this harness owns).
    public static func run(_ data: [UInt8], scratch: String) -> Outcome {
        guard data.count >= headerLength else { return .unreadable(.truncated) }
        let control = data[0]
        var firstId: UInt64 = 0
        for i in 0..<8 { firstId |= UInt64(data[3 + i]) << (8 * UInt64(i)) }
        let p = parts(data)
        let fm = FileManager.default
        try? fm.removeItem(atPath: scratch)
        try? fm.createDirectory(atPath: scratch + "/out", withIntermediateDirectories: true)
        let vectors = scratch + "/v.fvecs", payload = scratch + "/p.tsv", ids = scratch + "/ids.txt", sparse = scratch + "/s.txt"
        _ = fm.createFile(atPath: vectors, contents: Data(p[0]))
        _ = fm.createFile(atPath: payload, contents: Data(p[1]))
        _ = fm.createFile(atPath: ids, contents: Data(p[2]))
        _ = fm.createFile(atPath: sparse, contents: Data(p[3]))
        let idSource: InputIdSource
        switch control & 3 {
        case 1: idSource = .sequential(first: firstId)
        case 2: idSource = .file(ids)
        default: idSource = .rowNumbers
        }
        let upsert = control & 4 != 0
        let rows: Range<Int>? = control & 8 != 0 ? Int(data[1] % 64)..<(Int(data[1] % 64) + Int(data[2] % 64)) : nil
        let schema = SegmentSchema(dimension: 4, elementType: control & 0x80 != 0 ? .float16 : .float32,
                                   metric: control & 0x40 != 0 ? .cosine : .l2, columns: columns)
        let input: InputRows
        do throws(StrataError) {
            input = try InputRows(vectors: vectors, rows: rows, payload: control & 0x10 != 0 ? payload : nil, columns: columns,
                                  ids: idSource, sparse: control & 0x20 != 0 ? sparse : nil)
        } catch {
            return error.path == nil ? .violation("input error without a file: \(error)") : .unreadable(error.code)
        }
        // The collection: ids 1, 2, 1000 live.
        var options = CollectionOptions()
        options.index = nil
        options.flushThresholdRows = 1 << 30
        let collection: StrataCollection
        do throws(StrataError) {
            collection = try StrataCollection.create(path: scratch + "/coll", schema: schema, options: options)
            try collection.insert(liveIds.map { SegmentRow(id: $0, vector: [1, Float($0), 0.5, -2], payload: ["name": .string("live \($0)")]) })
        } catch {
            return .violation("cannot make the collection: \(error)")
        }
        defer { collection.close() }
        func state() -> [UInt64] {
            guard let s = try? collection.stats() else { return [] }
            return [UInt64(s.liveRows), s.walBytes, s.walSequence, s.generation]
        }
        let before = state()
        // The build property needs the upsert-mode verdict.
        let upsertVerdict: StrataError?
        do throws(StrataError) { try collection.preflight(input, upsert: true); upsertVerdict = nil } catch { upsertVerdict = error }
        if let e = upsertVerdict, e.path == nil { return .violation("preflight error without a file: \(e)") }
        if let v = checkBuild(input, schema: schema, mustSucceed: upsertVerdict == nil, scratch: scratch) { return .violation(v) }
        var verdict = upsertVerdict
        if !upsert, verdict == nil {
            do throws(StrataError) { try collection.preflight(input, upsert: false) } catch { verdict = error }
        }
        if let verdict {
            if verdict.path == nil { return .violation("preflight error without a file: \(verdict)") }
            if state() != before { return .violation("a refused input changed the collection: \(before) -> \(state()) after \(verdict)") }
            return .refused(verdict.code)
        }
        // Passed: every row must go in.
        var batch: [SegmentRow] = []
        var inserted = 0
        do throws(StrataError) {
            try input.forEach { (row) throws(StrataError) in
                var payload: [String: PayloadValue] = [:]
                for (spec, v) in zip(input.columns, row.values) { payload[spec.name] = v }
                batch.append(SegmentRow(id: row.id, vector: input.vectors.row(row.fileRow), payload: payload))
                if batch.count == 7 {
                    if upsert { try collection.upsert(batch) } else { try collection.insert(batch) }
                    inserted += batch.count
                    batch.removeAll()
                }
            }
            if upsert { try collection.upsert(batch) } else { try collection.insert(batch) }
            inserted += batch.count
        } catch {
            return .violation("input passed preflight (upsert \(upsert)) but row \(inserted + batch.count) failed: \(error)")
        }
        let replaced = upsert ? liveIds.filter { id in (try? input.firstRow(withId: id)) != nil }.count : 0
        guard let live = try? collection.count(), live == liveIds.count + inserted - replaced else {
            return .violation("expected \(liveIds.count + inserted - replaced) live rows, got \(String(describing: try? collection.count()))")
        }
        if let v = checkFidelity(input, ids: idSource, rawPayload: control & 0x10 != 0 ? p[1] : nil, rawIds: p[2], collection) { return .violation(v) }
        return .inserted(inserted)
    }

    /// Each row is in the collection under the id the input says (row number, first id + k, or the
    /// ids file's line, computed here independently of `InputRows`), with its `name` cell's bytes
    /// exactly as in the TSV (no U+FFFD). Returns a violation, or nil.
    static func checkFidelity(_ input: InputRows, ids: InputIdSource, rawPayload: [UInt8]?, rawIds: [UInt8],
                              _ collection: StrataCollection) -> String? {
        let payloadLines = rawPayload.map { $0.split(separator: 0x0A, omittingEmptySubsequences: false) }
        let idLines = rawIds.split(separator: 0x0A, omittingEmptySubsequences: false)
        for (k, r) in input.rows.enumerated() {
            let id: UInt64
            switch ids {
            case .rowNumbers: id = UInt64(r)
            case .sequential(let first):
                let (sum, overflow) = first.addingReportingOverflow(UInt64(k))
                guard !overflow else { return "row \(r): first id \(first) + \(k) passes UInt64.max but was accepted" }
                id = sum
            case .file:
                let text = String(decoding: idLines[r], as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \t\r"))
                guard let v = UInt64(text) else { return "row \(r): ids line '\(text)' was accepted" }
                id = v
            }
            guard let record = try? collection.get(id: id) else { return "row \(r): no live row with id \(id)" }
            if let payloadLines, case .string(let name) = record.payload[0] {
                let cell = payloadLines[r].split(separator: 0x09, omittingEmptySubsequences: false)[0]
                guard Array(name.utf8) == Array(cell) else { return "row \(r): name \(Array(name.utf8)) stored for cell \(Array(cell))" }
            }
        }
        return nil
    }

    /// `build` of the input (the ingest loop of `strata build`): when it must succeed, it does and verifies; when it fails, it leaves
    /// nothing behind. Returns a violation, or nil.
    static func checkBuild(_ input: InputRows, schema: SegmentSchema, mustSucceed: Bool, scratch: String) -> String? {
        let out = scratch + "/out/b.seg"
        let buildSchema = SegmentSchema(dimension: 4, elementType: schema.elementType, metric: schema.metric, columns: input.columns)
        do throws(StrataError) {
            let writer = try SegmentWriter(path: out, schema: buildSchema)
            try SegmentBuild.append(input, to: writer)
            let summary = try writer.finish()
            let seg = try Segment.open(path: out)
            defer { seg.close() }
            guard seg.verify().isSound, summary.rowCount == input.rows.count else { return "built segment is not sound or has the wrong rows" }
            try? FileManager.default.removeItem(atPath: out)
        } catch {
            if mustSucceed { return "input passed preflight but build failed: \(error)" }
            if error.path == nil { return "build error without a file: \(error)" }
            let left = (try? FileManager.default.contentsOfDirectory(atPath: scratch + "/out")) ?? []
            if !left.isEmpty { return "failed build left \(left)" }
        }
        return nil
    }
}
