import StrataFormat
import StrataIndex
import StrataTools
import ArgumentParser
import Foundation
import Strata

/// `strata delete DIR|s3://BUCKET/PATH --ids ...`: delete rows by id (unknown ids are ignored and counted).
///
/// Ids are streamed in batches of `--batch`, so memory stays bounded whatever the argument or the
/// file holds; an `--ids-file` is checked whole before the first delete.
struct CollectionDeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete rows by id (durable when it returns; ids that are not live are ignored and reported).")

    @Argument(help: "Collection directory, or s3://BUCKET/PATH.")
    var directory: String

    @Option(name: .long, help: "Comma-separated ids, and ranges A..B (half-open); at most \(Self.maximumIds) ids in all.")
    var ids: String?

    @Option(name: .customLong("ids-file"), help: "A text file with one id per line (blank lines are skipped).")
    var idsFile: String?

    @Option(name: .long, help: "Ids per WAL record (at most 1,000,000).")
    var batch: Int = 1000

    @Flag(name: .long, help: "Flush at the end (pending deletes become delete bitmaps).")
    var flush = false

    @OptionGroup var write: CollectionWriteFlags

    @OptionGroup var remote: RemoteFlags

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    func validate() throws {
        guard (ids == nil) != (idsFile == nil) else { throw ValidationError("give exactly one of --ids and --ids-file") }
        guard batch >= 1, batch <= 1_000_000 else { throw ValidationError("--batch must be in 1...1000000") }
        if let ids {
            guard let list = IdList(parsing: ids) else { throw ValidationError("--ids must be comma-separated unsigned integers or A..B ranges with A <= B") }
            guard list.total <= Self.maximumIds else {
                throw ValidationError("--ids names \(list.total) ids; at most \(Self.maximumIds) in one command (use several, or --ids-file)")
            }
        }
    }

    /// At most this many ids in one `--ids` argument (ranges count their length): bounds the time
    /// one command can take; memory is bounded by the batch size anyway.
    static let maximumIds: UInt64 = 100_000_000

    struct Output: Encodable { var requested: Int; var deleted: Int; var ignored: Int; var seconds: Double }

    func run() async throws {
        try await CollectionHandles.with(directory, access: .readWrite, options: write.options(), remote: remote) { c in
            try await delete(from: c)
        }
    }

    private func delete(from c: any CollectionHandle) async throws {
        try write.check(against: c.schema)
        let start = monotonicSeconds()
        var requested = 0, deleted = 0
        var pending: [UInt64] = []
        pending.reserveCapacity(batch)
        func send() async throws {
            guard !pending.isEmpty else { return }
            deleted += try await c.delete(ids: pending)
            pending.removeAll(keepingCapacity: true)
        }
        if let ids {
            for id in IdList(parsing: ids)! {
                pending.append(id)
                requested += 1
                if pending.count >= batch { try await send() }
            }
        } else {
            // Check the whole file first, so that a bad line fails before anything is deleted.
            let reader = try LineReader(path: idsFile!)
            _ = try await Self.forEachId(in: reader) { _ in }
            requested = try await Self.forEachId(in: reader) { id in
                pending.append(id)
                if pending.count >= batch { try await send() }
            }
        }
        try await send()
        if flush { _ = try await c.flush() }
        let out = Output(requested: requested, deleted: deleted, ignored: requested - deleted, seconds: monotonicSeconds() - start)
        if json { try printJSON(out); return }
        print("deleted \(deleted) of \(requested) ids (\(out.ignored) not live, ignored)")
    }

    /// Calls `body` with each id of an ids file; returns how many. Blank lines are skipped; a line
    /// that is not an unsigned 64-bit integer throws `.corrupt` naming it.
    static func forEachId(in reader: LineReader, _ body: (UInt64) async throws -> Void) async throws -> Int {
        var cursor = reader.makeCursor()
        var count = 0
        while let line = try cursor.next() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            guard let v = UInt64(text) else {
                throw StrataError(.corrupt, "line \(cursor.lineNumber): '\(text.prefix(40))' is not an unsigned 64-bit integer", path: reader.path)
            }
            try await body(v)
            count += 1
        }
        return count
    }
}
