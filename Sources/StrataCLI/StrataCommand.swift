import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Synchronization
import Logging
import Strata

/// `strata`: build, inspect, verify and search Strata segments and collections (local directories
/// or `s3://BUCKET/PATH`). Async, because the commands that reach an object store and etcd are.
struct StrataCommand: AsyncParsableCommand {
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
             system: io, busy (another process holds the writer lock,
             or for s3:// the writer lease); an s3:// address with no
             collection, as a missing directory
        Collections are directories or s3://BUCKET/PATH (settings:
        --s3-endpoint, --etcd, --cache-dir, --cache-bytes, or STRATA_S3_ENDPOINT,
        STRATA_ETCD, STRATA_CACHE_DIR, STRATA_CACHE_BYTES; AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY, AWS_REGION).
        Errors print as `strata: CODE: message (file, section, offset)` on
        stderr. In --json output a number that is not finite prints as null.
        """,
        version: StrataRelease.summary,
        subcommands: [BuildCommand.self, DumpCommand.self, VerifyCommand.self, SearchCommand.self, BenchCommand.self,
                      CollectionCreateCommand.self, CollectionInsertCommand.self, ImportCommand.self, CollectionDeleteCommand.self,
                      CollectionFlushCommand.self, CollectionStatsCommand.self, ScrollCommand.self, CollectionCompactCommand.self, CollectionRecoverCommand.self,
                      CollectionScrubCommand.self, CollectionGCCommand.self, CollectionPushCommand.self, CollectionPullCommand.self,
                      FilterBenchCommand.self, BenchRemoteCommand.self, BenchIngestCommand.self, GenCommand.self, ServeCommand.self]
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
    /// keeps `strata frobnicate --help` from printing the root help with exit 0.
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
    static func main() async {
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
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
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
