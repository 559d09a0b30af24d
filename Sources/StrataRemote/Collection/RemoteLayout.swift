// Where a remote collection's objects and keys live (docs/REMOTE-FORMAT.md).
//
// In the bucket, under the collection's prefix, every object is immutable and written once, with
// `If-None-Match: *`:
//   collection.json                         what the collection is (written by create)
//   seg/<segment file name>                 segments (`seg-w….seg`, `seg-c….seg`, as in a local directory)
//   del/<bitmap file name>                  delete bitmaps (`del-….del`)
//   man/<generation:020>-<writer>-<random>.man   manifests (the local MANIFEST format)
//   wal/<sequence:020>.log                  WAL objects, one per acknowledged batch (group)
// In etcd, under /strata/v1/<bucket>/<prefix>/:
//   head        the commit point: which manifest is current (RemoteHead)
//   writer      the writer's token, attached to its lease (one writer at a time)
//   compactor   a compactor's token, attached to its lease (saves duplicate work only)
//   pins/<id>   a reader's pinned manifest key, attached to its lease (gc keeps what it names)
import StrataFormat

/// The names of one remote collection's objects and keys.
public struct RemoteLayout: Sendable, Equatable {
    /// The bucket.
    public let bucket: String
    /// The collection's prefix in the bucket (no leading or trailing slash).
    public let prefix: String

    /// A layout for the collection at `prefix` in `bucket`.
    public init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix
    }

    /// `s3://bucket/prefix`.
    public var address: String { "s3://\(bucket)/\(prefix)" }

    /// The prefix every object of the collection starts with (`prefix/`).
    public var root: String { prefix + "/" }

    var collectionObject: String { root + "collection.json" }
    func segmentObject(_ name: String) -> String { root + "seg/" + name }
    func bitmapObject(_ name: String) -> String { root + "del/" + name }
    var manifestPrefix: String { root + "man/" }
    var walPrefix: String { root + "wal/" }
    var segmentPrefix: String { root + "seg/" }
    var bitmapPrefix: String { root + "del/" }

    /// The object of a segment or bitmap file name (`seg-…` or `del-…`).
    func object(forFile name: String) -> String {
        name.hasPrefix("del-") ? bitmapObject(name) : segmentObject(name)
    }

    /// `man/<generation:020>-<writer>-<random>.man`.
    func manifestObject(generation: UInt64, writer: String) -> String {
        manifestPrefix + Self.padded(generation) + "-" + writer + "-" + Self.randomHex() + ".man"
    }

    /// `wal/<sequence:020>.log`.
    func walObject(_ sequence: UInt64) -> String { walPrefix + Self.padded(sequence) + ".log" }

    /// The sequence number of a WAL object key, or nil when `key` is not one.
    func walSequence(ofKey key: String) -> UInt64? {
        guard key.hasPrefix(walPrefix), key.hasSuffix(".log") else { return nil }
        let digits = key.dropFirst(walPrefix.count).dropLast(4)
        guard digits.count == 20, digits.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
        return UInt64(digits)
    }

    /// The generation a manifest object key names, or nil when `key` is not one.
    func manifestGeneration(ofKey key: String) -> UInt64? {
        guard key.hasPrefix(manifestPrefix), key.hasSuffix(".man") else { return nil }
        let rest = key.dropFirst(manifestPrefix.count)
        guard rest.count > 21, rest.prefix(20).allSatisfy({ $0 >= "0" && $0 <= "9" }), !rest.contains("/") else { return nil }
        return UInt64(rest.prefix(20))
    }

    /// The etcd key prefix of the collection (`/strata/v1/bucket/prefix/`).
    public var keyPrefix: String { "/strata/v1/\(bucket)/\(prefix)/" }
    var headKey: String { keyPrefix + "head" }
    var writerKey: String { keyPrefix + "writer" }
    var compactorKey: String { keyPrefix + "compactor" }
    var pinPrefix: String { keyPrefix + "pins/" }
    func pinKey(_ id: String) -> String { pinPrefix + id }

    static func padded(_ n: UInt64) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 20 - s.count)) + s
    }

    /// 16 random lower-case hex digits: unique names for tokens and objects.
    package static func randomHex() -> String {
        let s = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
