// Output and small helpers shared by the commands: JSON on stdout, progress on stderr, byte counts,
// row ranges, opening a collection for writing with its torn-tail note.
import Foundation
import Strata
import StrataFormat
import Synchronization
import ArgumentParser
import StrataIndex

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

/// Where long commands report their progress (`--progress`): `auto` prints a line on stderr when it
/// is a terminal (and nothing otherwise), `json` writes one JSON object per line on stderr whatever
/// it is, `none` prints nothing.
enum ProgressMode: String, ExpressibleByArgument, CaseIterable, Sendable {
    case auto, json, none
}

/// The `--progress` option of the long commands (build, compact, verify, scrub, gen).
struct ProgressFlags: ParsableArguments {
    @Option(name: .long, help: "Progress on stderr: auto (a line when stderr is a terminal), json (one JSON object per line), none.")
    var progress: ProgressMode = .auto

    /// A reporter for `command`.
    func reporter(_ command: String) -> ProgressReporter { ProgressReporter(command: command, mode: progress) }
}

/// One progress report as `--progress json` writes it: phase, units done and in all, rate and ETA.
struct ProgressEvent: Codable, Equatable {
    /// The command reporting (`build`, `compact`, ...).
    var command: String
    /// What is running (`rows`, `index:graph`, `segments`, ...).
    var phase: String
    /// Units done so far in this phase.
    var done: Int
    /// Units in all, when known.
    var total: Int?
    /// What is counted (`rows`, `segments`, `bytes`, ...).
    var unit: String
    /// Seconds since the phase began.
    var elapsed_s: Double
    /// Units per second over the phase so far (nil before a second has passed or nothing is done).
    var rate: Double?
    /// Seconds left at that rate (nil without a rate or a total).
    var eta_s: Double?
    /// A short note, may be empty.
    var detail: String

    /// Every key always present (null when unknown), so that a script reads a fixed shape.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(command, forKey: .command)
        try c.encode(phase, forKey: .phase)
        try c.encode(done, forKey: .done)
        try c.encode(total, forKey: .total)
        try c.encode(unit, forKey: .unit)
        try c.encode(elapsed_s, forKey: .elapsed_s)
        try c.encode(rate, forKey: .rate)
        try c.encode(eta_s, forKey: .eta_s)
        try c.encode(detail, forKey: .detail)
    }
}

/// Reports the progress of a long command on stderr: a line at most twice a second per phase when
/// stderr is a terminal (mode `auto`), one JSON object per report in mode `json` (throttled the
/// same way; the first and last report of a phase are always written). Thread-safe: index builds
/// report from worker threads.
final class ProgressReporter: Sendable {
    let command: String
    let mode: ProgressMode
    /// The first phase is timed from the reporter's creation (work may run a while before its
    /// first report), later ones from their first report.
    private struct State { var phase: String? = nil; var phaseStart = monotonicSeconds(); var lastWrite = 0.0 }
    private let state = Mutex(State())
    private let created = monotonicSeconds()
    /// Where lines go (stderr); replaceable for tests.
    private let sink: @Sendable (String) -> Void

    init(command: String, mode: ProgressMode, sink: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) {
        self.command = command
        self.mode = mode == .auto && isatty(2) == 0 ? .none : mode
        self.sink = sink
    }

    /// Whether anything is reported.
    var isActive: Bool { mode != .none }

    /// Reports `done` of `total` units of `phase`.
    func update(phase: String, done: Int, total: Int?, unit: String = "rows", detail: String = "") {
        guard isActive else { return }
        let t = monotonicSeconds()
        let event: ProgressEvent? = state.withLock { s in
            let first = s.phase != phase
            if first {
                if s.phase != nil { s.phaseStart = t }
                s.phase = phase
                s.lastWrite = 0
            }
            let last = total.map { done >= $0 } ?? false
            guard first || last || t - s.lastWrite >= 0.5 || !detail.isEmpty else { return nil }
            s.lastWrite = t
            let elapsed = t - s.phaseStart
            let rate: Double? = elapsed >= 1 && done > 0 ? Double(done) / elapsed : nil
            let eta: Double? = rate.flatMap { r in total.map { Double(max(0, $0 - done)) / r } }
            return ProgressEvent(command: command, phase: phase, done: done, total: total, unit: unit, elapsed_s: elapsed,
                                 rate: rate, eta_s: eta, detail: detail)
        }
        if let event { sink(render(event)) }
    }

    /// The last report of a command: phase `done`, `done` units of `done` in all, timed from the
    /// reporter's creation (always written).
    func finish(done: Int, unit: String = "rows") {
        guard isActive else { return }
        let elapsed = monotonicSeconds() - created
        sink(render(ProgressEvent(command: command, phase: "done", done: done, total: done, unit: unit, elapsed_s: elapsed,
                                  rate: elapsed > 0 && done > 0 ? Double(done) / elapsed : nil, eta_s: 0, detail: "")))
    }

    /// A note (what a phase found, a step begun) without counts: a line on a terminal, an event
    /// with `done` 0 in JSON.
    func note(_ message: String, phase: String = "note") {
        guard isActive else { return }
        if mode == .json {
            sink(render(ProgressEvent(command: command, phase: phase, done: 0, total: nil, unit: "", elapsed_s: 0, rate: nil, eta_s: nil,
                                      detail: message)))
        } else {
            sink(message)
        }
    }

    /// The callback for an index build (`SegmentWriterOptions.progress`), or nil when inactive.
    var indexBuild: (@Sendable (IndexBuildProgress) -> Void)? {
        guard isActive else { return nil }
        return { [self] p in update(phase: "index:" + p.phase, done: p.done, total: p.total, unit: p.phase == "graph" ? "partitions" : "rows", detail: p.detail) }
    }

    private func render(_ e: ProgressEvent) -> String {
        if mode == .json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(e)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
        var text = "\(e.command) \(e.phase): \(e.done)" + (e.total.map { "/\($0)" } ?? "") + (e.unit.isEmpty ? "" : " \(e.unit)")
        if let r = e.rate { text += String(format: ", %.0f/s", r) }
        if let eta = e.eta_s, eta > 0 { text += String(format: ", ETA %.0f s", eta) }
        if !e.detail.isEmpty { text += " (\(e.detail))" }
        return text
    }
}

/// The index build callback of a command without `--progress` (bench): lines on a terminal only.
func indexBuildProgressPrinter() -> (@Sendable (IndexBuildProgress) -> Void)? {
    ProgressReporter(command: "index", mode: .auto).indexBuild
}

extension ProgressReporter {
    /// A ``VerifyProgress`` (bytes checked of bytes in all) reported as `phase`; nil when
    /// nothing is reported.
    func verifyProgress(phase: String) -> VerifyProgress? {
        guard isActive else { return nil }
        return { [self] done, total in update(phase: phase, done: done, total: total, unit: "bytes") }
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
