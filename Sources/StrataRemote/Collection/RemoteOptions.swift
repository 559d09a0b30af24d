// Knobs of a remote collection.
import Strata

/// How a ``RemoteCollection`` is opened.
public struct RemoteOptions: Sendable {
    /// The node-local cache of segments and bitmaps.
    public var cache: SegmentCacheOptions
    /// Flush thresholds, index and search-section options of flushed segments, as for a local
    /// collection (`obsoleteFileGraceSeconds` is not used: `strata gc` decides).
    public var collection = CollectionOptions()
    /// TTL of the writer's lease, seconds: a writer that dies is replaced this long after its last
    /// keepalive at the latest. Default 10.
    public var writerLeaseSeconds = 10
    /// TTL of a reader's pin lease, seconds. Default 30.
    public var pinLeaseSeconds = 30
    /// A snapshot reuses the view loaded less than this many seconds ago instead of asking etcd
    /// and the store again (a reader sees other processes' changes this much later at most; a
    /// writer always sees its own writes). Default 0.1; 0: ask on every snapshot.
    public var refreshIntervalSeconds = 0.1
    /// How many times a commit re-reads the head and rebases after losing a race. Default 20.
    public var commitAttempts = 20
    /// A name for this process in manifest object keys and the writer key (default: host name
    /// and process id).
    public var nodeName: String = RemoteOptions.defaultNodeName()

    /// Options with the cache in `cache`.
    public init(cache: SegmentCacheOptions) {
        self.cache = cache
    }

    static func defaultNodeName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        _ = gethostname(&buf, 255)
        let host = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let safe = host.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        return (safe.isEmpty ? "node" : String(safe.prefix(40))) + "-" + String(getpid())
    }
}

#if canImport(Glibc)
import Glibc
#endif
