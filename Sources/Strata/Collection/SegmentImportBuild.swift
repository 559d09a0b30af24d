// The build half of a bulk import (local: Collection+Import.swift; remote: StrataRemote's
// RemoteCollection+Import.swift): segments filled by the caller and finished (index built) in
// parallel, under their final `seg-w*` names in one directory, and removed again unless the import
// published them.
import Dispatch
import StrataFormat
import StrataIndex
import Synchronization

/// The segments of one import while they are built: their files, and the parallel build.
package final class SegmentImportBuild: Sendable {
    let directory: String
    let schema: SegmentSchema
    let options: SegmentWriterOptions
    let describe: @Sendable (Int, Int) -> String
    /// Hears each segment's file name before its file is created (a cache holds it from then on).
    let created: @Sendable (String) -> Void
    /// Files made so far (finished segments); removed on failure unless kept.
    private let files = Mutex<(names: [String], keep: Bool)>(([], false))

    /// A build of segments of `schema` in `directory`, written with `options`; errors name rows by
    /// `describe(segment, row)`; `created` hears each file name before the file is made.
    package init(directory: String, schema: SegmentSchema, options: SegmentWriterOptions,
                 describe: @escaping @Sendable (Int, Int) -> String, created: @escaping @Sendable (String) -> Void = { _ in }) {
        self.describe = describe
        self.created = created
        self.directory = directory
        self.schema = schema
        self.options = options
    }

    /// Builds segments 0..<count with up to `threads` at once; returns their entries in order.
    /// The first failure (lowest segment number among those that failed) is thrown once the
    /// running builds have stopped; segments not yet started are not started.
    package func run(count: Int, threads: Int,
             fill: @escaping @Sendable (Int, SegmentWriter) throws(StrataError) -> Void) throws(StrataError) -> [ManifestSegment] {
        let nextSegment = Atomic<Int>(0)
        let results = Mutex<[Int: ManifestSegment]>([:])
        let failure = Mutex<(segment: Int, error: StrataError)?>(nil)
        let workers = max(1, min(threads, count))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while failure.withLock({ $0 == nil }) {
                let k = nextSegment.add(1, ordering: .relaxed).oldValue
                guard k < count else { return }
                do throws(StrataError) {
                    let entry = try self.build(segment: k, fill: fill)
                    results.withLock { $0[k] = entry }
                } catch {
                    failure.withLock { f in if f == nil || f!.segment > k { f = (k, error) } }
                }
            }
        }
        if let f = failure.withLock({ $0 }) { throw f.error }
        return results.withLock { r in (0..<count).map { r[$0]! } }
    }

    private func build(segment k: Int, fill: @Sendable (Int, SegmentWriter) throws(StrataError) -> Void) throws(StrataError) -> ManifestSegment {
        let name = CollectionFiles.newSegmentName(.writer)
        files.withLock { $0.names.append(name) }
        created(name)
        var options = self.options
        let describe = self.describe
        options.rowLabel = { describe(k, $0) }
        let writer = try SegmentWriter(path: "\(directory)/\(name)", schema: schema, options: options)
        do {
            try fill(k, writer)
        } catch {
            writer.abort()
            throw error
        }
        let summary = try writer.finish()
        return ManifestSegment(name: name, deleteFile: nil, rowCount: UInt64(summary.rowCount), deletedCount: 0,
                               fileBytes: summary.fileBytes, indexed: summary.sections.contains { $0.kind == .graph },
                               columnCount: schema.columns.count)
    }

    /// The files are referenced (or may be): never remove them.
    package func keepFiles() { files.withLock { $0.keep = true } }

    /// Removes the finished segments unless they were kept.
    package func removeFiles() {
        let names = files.withLock { $0.keep ? [] : $0.names }
        for n in names { FileSystem.removeIfPresent("\(directory)/\(n)") }
    }
}
