import ArgumentParser
import Foundation
import Strata

/// `strata delete DIR --ids ...`: delete rows by id (unknown ids are ignored and counted).
struct CollectionDeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete rows by id (durable when it returns; ids that are not live are ignored and reported).")

    @Argument(help: "Collection directory.")
    var directory: String

    @Option(name: .long, help: "Comma-separated ids, and ranges A..B (half-open).")
    var ids: String?

    @Option(name: .customLong("ids-file"), help: "A text file with one id per line.")
    var idsFile: String?

    @Option(name: .long, help: "Ids per WAL record.")
    var batch: Int = 1000

    @Flag(name: .long, help: "Flush at the end (pending deletes become delete bitmaps).")
    var flush = false

    @OptionGroup var write: CollectionWriteFlags

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    func validate() throws {
        guard (ids == nil) != (idsFile == nil) else { throw ValidationError("give exactly one of --ids and --ids-file") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let ids, Self.parse(ids) == nil { throw ValidationError("--ids must be comma-separated unsigned integers or A..B ranges") }
    }

    static func parse(_ text: String) -> [UInt64]? {
        var out: [UInt64] = []
        for part in text.split(separator: ",") {
            let p = part.trimmingCharacters(in: .whitespaces)
            if let r = p.range(of: "..") {
                guard let a = UInt64(p[..<r.lowerBound]), let b = UInt64(p[r.upperBound...]), b >= a, b - a <= 100_000_000 else { return nil }
                out += Array(a..<b)
            } else {
                guard let v = UInt64(p) else { return nil }
                out.append(v)
            }
        }
        return out
    }

    struct Output: Encodable { var requested: Int; var deleted: Int; var ignored: Int; var seconds: Double }

    func run() throws {
        var list: [UInt64]
        if let ids { list = Self.parse(ids)! } else {
            list = []
            for (n, line) in try LineReader(path: idsFile!).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let v = UInt64(line.trimmingCharacters(in: .whitespaces)) else {
                    throw StrataError(.invalidArgument, "line \(n + 1) is not an unsigned integer", path: idsFile)
                }
                list.append(v)
            }
        }
        let c = try StrataCollection.open(path: directory, access: .readWrite, options: write.options())
        defer { c.close() }
        let start = now()
        var deleted = 0
        var i = 0
        while i < list.count {
            deleted += try c.delete(ids: Array(list[i..<min(list.count, i + batch)]))
            i += batch
        }
        if flush { try c.flush() }
        let out = Output(requested: list.count, deleted: deleted, ignored: list.count - deleted, seconds: now() - start)
        if json { try printJSON(out); return }
        print("deleted \(deleted) of \(list.count) ids (\(out.ignored) not live, ignored)")
    }
}
