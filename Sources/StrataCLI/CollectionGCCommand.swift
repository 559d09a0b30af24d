import ArgumentParser
import Foundation
import Strata
import StrataFormat
import StrataRemote

/// `strata gc s3://BUCKET/PATH`: removes the objects a remote collection no longer needs, once
/// their grace period has passed (exit 0 done, 1 failed, 2 usage or I/O).
struct CollectionGCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove what a collection in an object store no longer needs (obsolete segments, bitmaps, WAL objects and manifests, orphans, stale uploads).",
        discussion: """
        Safe beside writers, readers and compactions: nothing the head or a reader's pin names is removed, and everything else only once it has been unneeded (obsolete, or for an orphan written) for --grace-seconds, which must be longer than any commit takes. Stale multipart uploads older than that are aborted. Then a manifest whose obsolete list no longer names what was removed is committed. A local collection removes its obsolete files itself (writer open, compact).
        """)

    @Argument(help: "The collection, s3://BUCKET/PATH.")
    var address: String

    @Option(name: .customLong("grace-seconds"), help: "Remove an object only this long after it stopped being needed.")
    var graceSeconds: Double = 3600

    @Flag(name: .customLong("dry-run"), help: "Report what would be removed and change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @OptionGroup var remote: RemoteFlags

    func validate() throws {
        guard graceSeconds.isFinite, graceSeconds >= 0, graceSeconds <= 1e12 else {
            throw ValidationError("--grace-seconds must be a number from 0 to 1e12")
        }
        guard S3Address.isAddress(address) else {
            throw ValidationError("gc takes s3://BUCKET/PATH; a local collection removes its obsolete files itself (writer open, compact)")
        }
    }

    struct TallyJSON: Encodable { var objects: Int; var bytes: UInt64 }
    struct Output: Encodable {
        var path: String; var dry_run: Bool; var grace_seconds: Double; var generation: UInt64; var pinned_generations: [UInt64]
        var missing_pins: [String]; var minimum_wal_sequence: UInt64; var kept: [String: TallyJSON]; var deleted: [String: TallyJSON]
        var deleted_by: [String: TallyJSON]; var deleted_objects: Int; var deleted_bytes: UInt64; var deleted_keys: [String]
        var uploads_aborted: Int; var obsolete_entries_removed: Int; var committed_generation: UInt64?; var commit_skipped: String?
        var seconds: Double
    }

    /// Counts by kind or reason, keyed by its name.
    static func tally<K: RawRepresentable>(_ counts: [K: ObjectTally]) -> [String: TallyJSON] where K.RawValue == String {
        Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, TallyJSON(objects: $0.value.objects, bytes: $0.value.bytes)) })
    }

    func run() async throws {
        guard case .remote(let target) = try CollectionLocation(address) else { return }  // validate() has checked it
        let s = try await RemoteTarget.with(target, flags: remote) { t in
            var gc = RemoteGarbageCollector(layout: t.layout, store: t.s3, metadata: t.etcd)
            gc.graceSeconds = graceSeconds
            gc.dryRun = dryRun
            return try await t.mapMissing { () async throws(StrataError) in try await gc.run() }
        }
        let out = Output(path: address, dry_run: s.dryRun, grace_seconds: s.graceSeconds, generation: s.generation,
                         pinned_generations: s.pinnedGenerations, missing_pins: s.missingPins, minimum_wal_sequence: s.minimumWALSequence,
                         kept: Self.tally(s.kept), deleted: Self.tally(s.deleted), deleted_by: Self.tally(s.deletedBy),
                         deleted_objects: s.deletedTotal.objects, deleted_bytes: s.deletedTotal.bytes, deleted_keys: s.deletedKeys,
                         uploads_aborted: s.uploadsAborted, obsolete_entries_removed: s.obsoleteEntriesRemoved,
                         committed_generation: s.committedGeneration, commit_skipped: s.commitSkipped, seconds: s.seconds)
        if json { try printJSON(out); return }
        let verb = dryRun ? "would remove" : "removed"
        print("\(address): generation \(s.generation); \(verb) \(s.deletedTotal.objects) objects (\(formatBytes(s.deletedTotal.bytes))), "
              + "kept \(s.keptTotal.objects) (\(formatBytes(s.keptTotal.bytes))), grace \(String(format: "%.0f", s.graceSeconds)) s")
        for (kind, t) in s.deleted.sorted(by: { $0.key < $1.key }) where t.objects > 0 {
            print("  \(kind.rawValue): \(t.objects) objects, \(formatBytes(t.bytes))")
        }
        if !s.pinnedGenerations.isEmpty { print("  pinned generations: \(s.pinnedGenerations.map(String.init).joined(separator: ", "))") }
        if s.uploadsAborted > 0 { print("  \(dryRun ? "would abort" : "aborted") \(s.uploadsAborted) stale multipart uploads") }
        if let g = s.committedGeneration { print("  committed generation \(g) (\(s.obsoleteEntriesRemoved) obsolete entries dropped)") }
        if let why = s.commitSkipped { print("  no commit: \(why)") }
    }
}
