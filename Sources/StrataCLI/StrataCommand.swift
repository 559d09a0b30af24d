import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Synchronization
import Logging
import Strata

/// `strata`: build, inspect, verify and search Strata segments.
struct StrataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "Strata: immutable, memory-mapped vector segments.",
        discussion: """
        Exit codes, one rule for every command (README.md, "Exit codes"):
          0  success (verify: sound; compact: also when another compaction
             holds the lock)
          1  bad data or a failed operation: badMagic, unsupportedVersion,
             unsupportedFeature, truncated, checksumMismatch, corrupt,
             dimensionMismatch, duplicateId, alreadyExists, nonFiniteValue,
             invalidValue, unknownColumn, typeMismatch, notFound (verify:
             damage found)
          2  usage: invalidArgument, unknown or malformed options;
             system: io, busy (another process holds the writer lock)
        Errors print as `strata: CODE: message (file, section, offset)` on
        stderr. In --json output a number that is not finite prints as null.
        """,
        version: StrataRelease.summary,
        subcommands: [BuildCommand.self, DumpCommand.self, VerifyCommand.self, SearchCommand.self, BenchCommand.self,
                      CollectionCreateCommand.self, CollectionInsertCommand.self, CollectionDeleteCommand.self,
                      CollectionFlushCommand.self, CollectionStatsCommand.self, CollectionCompactCommand.self, CollectionRecoverCommand.self,
                      CollectionScrubCommand.self, FilterBenchCommand.self, GenCommand.self]
    )
}

extension StrataCommand {
    /// Names `strata` accepts as its first word: every subcommand, and `help`.
    static var subcommandNames: Set<String> {
        Set(configuration.subcommands.map { $0._commandName } + ["help"])
    }

    /// The first non-option word of `arguments` (or the word after `help`) when it names no
    /// subcommand, else nil. The root command's only options (`--help`, `--version`) take no value and
    /// it has no positional arguments, so such a word is always an error; checking it before parsing
    /// keeps `strata serve --help` from printing the root help with exit 0.
    static func unknownSubcommand(in arguments: [String]) -> String? {
        let words = arguments.filter { !$0.hasPrefix("-") }
        guard let first = words.first else { return nil }
        guard subcommandNames.contains(first) else { return first }
        if first == "help", words.count > 1, !subcommandNames.contains(words[1]) { return words[1] }
        return nil
    }
}

@main
enum Entry {
    static func main() {
        CLIStartup.prepare()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["STRATA_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
            return handler
        }
        if let unknown = StrataCommand.unknownSubcommand(in: Array(CommandLine.arguments.dropFirst())) {
            FileHandle.standardError.write(Data("strata: unknown command '\(unknown)' (see 'strata --help' for the commands)\n".utf8))
            exit(2)
        }
        do {
            var command = try StrataCommand.parseAsRoot()
            try command.run()
        } catch let error as StrataError {
            FileHandle.standardError.write(Data("strata: \(error)\n".utf8))
            exit(Int32(CLIExit.code(for: error)))
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            let status = StrataCommand.exitCode(for: error)
            let message = StrataCommand.fullMessage(for: error)
            if status == .success {
                print(message)
                exit(0)
            }
            FileHandle.standardError.write(Data((message.isEmpty ? "\(error)" : message).utf8 + [0x0A]))
            exit(2)
        }
    }
}

/// Exit-code policy shared by the commands: one rule, by the error's category
/// (`StrataError.Code.category`): bad data or a failed operation is 1, usage and system (I/O, a
/// busy lock) are 2. README.md ("Exit codes") lists every code.
enum CLIExit {
    /// 1 for a `.data` error, 2 for `.usage` and `.system` errors.
    static func code(for error: StrataError) -> Int {
        switch error.code.category {
        case .data: return 1
        case .usage, .system: return 2
        }
    }
}

/// The format versions this build writes, as carried by `dump --json` and `stats --json`
/// (`"format_versions": {"manifest": "1.0", "segment": "1.2", "wal": "2.0"}`).
struct FormatVersionsJSON: Encodable {
    var segment = StrataRelease.segmentFormat
    var manifest = StrataRelease.manifestFormat
    var wal = StrataRelease.walFormat
}

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
        let t = now()
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

/// Seconds since an arbitrary origin, monotonic.
func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
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
