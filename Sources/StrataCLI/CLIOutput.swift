// Output and small helpers shared by the commands: JSON on stdout, progress on stderr, byte counts,
// row ranges, opening a collection for writing with its torn-tail note.
import Foundation
import Strata
import StrataFormat
import Synchronization

/// Writes a JSON document to stdout (sorted keys, one document).
func printJSON<T: Encodable>(_ value: T) throws {
    FileHandle.standardOutput.write(try encodeJSON(value))
    FileHandle.standardOutput.write(Data([0x0A]))
}

/// Encodes `value` as pretty, key-sorted JSON in which every number is a JSON number or null: a
/// Float or Double that is infinite or NaN (JSON has no spelling for them) prints as `null`, never
/// as a string, so a consumer that reads a number field never meets text there.
func encodeJSON<T: Encodable>(_ value: T) throws -> Data {
    // JSONEncoder can only throw or write a string for a non-finite number. It writes a marker
    // string that no input can contain (a fresh random UUID per call, letters, digits and '-',
    // which the encoder copies verbatim), and every quoted marker is then replaced by null.
    let marker = "strata-non-finite-" + UUID().uuidString
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: marker, negativeInfinity: marker, nan: marker)
    return replacingQuoted(marker, with: "null", in: try encoder.encode(value))
}

/// `data` with every `"marker"` (quotes included) replaced by `replacement`. O(bytes).
func replacingQuoted(_ marker: String, with replacement: String, in data: Data) -> Data {
    let needle = Array("\"\(marker)\"".utf8), bytes = [UInt8](data)
    guard bytes.count >= needle.count else { return data }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    while i < bytes.count {
        if bytes[i] == needle[0], i + needle.count <= bytes.count, bytes[i..<(i + needle.count)].elementsEqual(needle) {
            out += Array(replacement.utf8)
            i += needle.count
        } else {
            out.append(bytes[i])
            i += 1
        }
    }
    return Data(out)
}

/// Progress and notes go to stderr, and only when it is a terminal.
func progress(_ message: String) {
    if isatty(2) != 0 { FileHandle.standardError.write(Data((message + "\n").utf8)) }
}

/// A progress callback for index builds that prints phase, rows done, rate and ETA to stderr at most
/// twice a second, or nil when stderr is not a terminal.
func indexBuildProgressPrinter() -> (@Sendable (IndexBuildProgress) -> Void)? {
    guard isatty(2) != 0 else { return nil }
    struct State { var phase = ""; var phaseStart = 0.0; var lastPrint = 0.0 }
    let state = Mutex(State())
    return { p in
        let t = monotonicSeconds()
        let line: String? = state.withLock { s in
            if s.phase != p.phase { s.phase = p.phase; s.phaseStart = t; s.lastPrint = 0 }
            guard t - s.lastPrint >= 0.5 || p.done == p.total || !p.detail.isEmpty else { return nil }
            s.lastPrint = t
            let elapsed = t - s.phaseStart
            var text = "index \(p.phase): \(p.done)/\(p.total)"
            if elapsed > 1, p.done > 0, p.total > p.done {
                let rate = Double(p.done) / elapsed
                text += String(format: ", %.0f/s, ETA %.0f s", rate, Double(p.total - p.done) / rate)
            }
            if !p.detail.isEmpty { text += " (\(p.detail))" }
            return text
        }
        if let line { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }
}

/// Human-readable byte count.
func formatBytes(_ n: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024, u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}

/// Parses `A..B` (half-open) or a single row `A`.
func parseRowRange(_ text: String) -> Range<Int>? {
    if let r = text.range(of: "..") {
        guard let a = Int(text[..<r.lowerBound]), let b = Int(text[r.upperBound...]), a >= 0, b >= a else { return nil }
        return a..<b
    }
    guard let a = Int(text), a >= 0, a < Int.max else { return nil }
    return a..<(a + 1)
}

/// Opens a collection for writing and says on stderr (always: it is a warning, not progress) when the
/// open moved a torn WAL tail, a record cut short by a crash and never acknowledged, to a side file.
func openCollectionForWriting(_ directory: String, options: CollectionOptions) throws -> StrataCollection {
    let c = try StrataCollection.open(path: directory, access: .readWrite, options: options)
    if let side = c.recovery.tornTailFile {
        FileHandle.standardError.write(Data(("strata: note: the WAL ended in a torn record (\(c.recovery.droppedBytes) bytes, cut short by a crash "
            + "and never acknowledged); its bytes were moved to \(side)\n").utf8))
    }
    return c
}
