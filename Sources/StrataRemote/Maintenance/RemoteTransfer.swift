// Copying whole collections between a local directory and an object store: `strata push DIR
// s3://…` publishes a local collection as a new remote one (RemoteTransfer+Push.swift), `strata
// pull s3://… DIR` writes a consistent local copy of one remote generation (RemoteTransfer+Pull.swift).
// Both move segments and bitmaps as files, several at a time, and check every file's checksums on
// the side that reads it: a damaged file is never copied into a sound-looking collection.
import Strata
import StrataFormat

/// What a push or pull moved.
public struct TransferSummary: Sendable {
    /// The manifest generation copied.
    public var generation: UInt64
    /// Segment files copied.
    public var segments: Int
    /// Delete bitmap files copied.
    public var bitmaps: Int
    /// Rows in the copied segments (deleted ones included).
    public var segmentRows: UInt64
    /// WAL records carried (the rows written after the generation was flushed).
    public var walRecords: Int
    /// WAL objects written (push) or read (pull).
    public var walObjects: Int
    /// Bytes moved: segments, bitmaps, WAL and manifest.
    public var bytes: UInt64
    /// Wall-clock seconds.
    public var seconds: Double

    /// Bytes moved per second, in MB (10^6 bytes).
    public var megabytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds / 1e6 : 0 }
}

/// Push and pull of whole collections.
public struct RemoteTransfer: Sendable {
    let store: any ObjectStore
    let metadata: any MetadataStore
    /// The node name (manifest object keys, pin tokens) and the pin lease's TTL.
    public let options: RemoteOptions
    /// Files moved at once (each large one is itself moved in parallel parts). Default 4.
    public var parallelFiles = 4

    /// A transfer through `store` and `metadata`.
    public init(store: any ObjectStore, metadata: any MetadataStore, options: RemoteOptions) {
        self.store = store
        self.metadata = metadata
        self.options = options
    }

    /// Checks every checksum of a segment or bitmap file (`name` says which) at `path`, and its
    /// size against `bytes` when known. Errors name `path`, prefixed with `context`.
    static func verify(name: String, path: String, bytes: UInt64?, context: String) throws(StrataError) {
        do throws(StrataError) {
            if let bytes {
                let size = try FileSystem.fileSize(path)
                guard size == bytes else {
                    throw StrataError(.truncated, "file is \(size) bytes, the manifest says \(bytes)", path: path)
                }
            }
            if name.hasPrefix("del-") {
                _ = try DeleteBitmap.read(path: path)
            } else {
                let segment = try Segment.open(path: path)
                try segment.checkSectionChecksums(Set(SectionKind.allCases))
            }
        } catch {
            var e = error
            e.message = context + ": " + e.message
            throw e
        }
    }

    /// Runs `body` for every item, at most `limit` at a time; the first error cancels the rest.
    static func forEach<T: Sendable>(_ items: [T], limit: Int, _ body: @escaping @Sendable (T) async throws(StrataError) -> Void) async throws(StrataError) {
        guard !items.isEmpty else { return }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = 0
                func add() {
                    let item = items[next]
                    next += 1
                    group.addTask { try await body(item) }
                }
                for _ in 0..<min(max(1, limit), items.count) { add() }
                while try await group.next() != nil {
                    if next < items.count { add() }
                }
            }
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError(.io, "transfer failed: \(error)")
        }
    }
}
