// In-memory stand-ins for the object store and etcd with the semantics the remote tier relies on
// (conditional PUTs, ListObjectsV2 order, mod/create revisions, leases that expire): they let the
// maintenance logic be tested where SeaweedFS and etcd are not running, and let a test age
// objects (`backdate`) without waiting out a grace period.
import Foundation
import Strata
import StrataFormat
@testable import StrataRemote
import Synchronization

final class MemoryObjectStore: ObjectStore {
    struct Object { var body: [UInt8]; var etag: String; var modified: UInt64 }
    let bucket: String
    private let objects = Mutex<[String: Object]>([:])
    private let uploads = Mutex<[PendingUpload]>([])
    private let counter = Mutex(0)

    init(bucket: String = "mem") { self.bucket = bucket }

    func address(of key: String) -> String { "s3://\(bucket)/\(key)" }

    func get(_ key: String, range: Range<UInt64>?) async throws(StrataError) -> [UInt8] {
        guard let o = objects.withLock({ $0[key] }) else { throw StrataError(.notFound, "no such object", path: address(of: key)) }
        guard let range else { return o.body }
        let r = Int(range.lowerBound)..<min(o.body.count, Int(range.upperBound))
        return Array(o.body[r])
    }

    func put(_ key: String, body: [UInt8], condition: PutCondition) async throws(StrataError) -> String {
        let etag = counter.withLock { c -> String in c += 1; return String(c) }
        let ok = objects.withLock { all -> Bool in
            switch condition {
            case .none: break
            case .ifAbsent: if all[key] != nil { return false }
            case .ifMatch(let e): if all[key]?.etag != e { return false }
            }
            all[key] = Object(body: body, etag: etag, modified: WallClock.milliseconds())
            return true
        }
        guard ok else { throw StrataError(.alreadyExists, "precondition failed", path: address(of: key)) }
        return etag
    }

    func upload(_ key: String, fromFile path: String, condition: PutCondition) async throws(StrataError) -> String {
        try await put(key, body: try FileSystem.readAll(path), condition: condition)
    }

    func download(_ key: String, toFile path: String) async throws(StrataError) -> UInt64 {
        let body = try await get(key)
        try publishAtomically(body, to: path)
        return UInt64(body.count)
    }

    func head(_ key: String) async throws(StrataError) -> ObjectInfo? {
        objects.withLock { $0[key] }.map { ObjectInfo(key: key, size: UInt64($0.body.count), etag: $0.etag, lastModifiedMilliseconds: $0.modified) }
    }

    func delete(_ key: String) async throws(StrataError) { _ = objects.withLock { $0.removeValue(forKey: key) } }

    func list(prefix: String, startAfter: String?) async throws(StrataError) -> [ObjectInfo] {
        objects.withLock { all in
            all.filter { entry in entry.key.hasPrefix(prefix) && (startAfter.map { entry.key > $0 } ?? true) }
                .map { ObjectInfo(key: $0.key, size: UInt64($0.value.body.count), etag: $0.value.etag, lastModifiedMilliseconds: $0.value.modified) }
                .sorted { $0.key < $1.key }
        }
    }

    func pendingUploads(prefix: String) async throws(StrataError) -> [PendingUpload] {
        uploads.withLock { $0.filter { $0.key.hasPrefix(prefix) } }
    }

    func abortUpload(_ upload: PendingUpload) async throws(StrataError) {
        uploads.withLock { $0.removeAll { $0 == upload } }
    }

    // Test hooks.
    func startUpload(_ key: String, initiated: UInt64) {
        uploads.withLock { $0.append(PendingUpload(key: key, uploadId: UUID().uuidString, initiatedMilliseconds: initiated)) }
    }
    /// Makes every object look `seconds` older.
    func backdate(_ seconds: Double) {
        objects.withLock { all in for k in all.keys { all[k]!.modified -= UInt64(seconds * 1000) } }
    }
    func keys() -> [String] { objects.withLock { $0.keys.sorted() } }
}

final class MemoryMetadataStore: MetadataStore {
    struct Entry { var kv: KeyValue }
    struct State {
        var revision: Int64 = 1
        var keys: [String: KeyValue] = [:]
        var leases: [Int64: (ttl: Int, expires: Double)] = [:]
        var nextLease: Int64 = 100
    }
    private let state = Mutex(State())
    let endpoint = "memory://etcd"

    private static func now() -> Double { Date().timeIntervalSince1970 }

    /// Drops keys whose lease expired.
    private static func expire(_ s: inout State) {
        let t = now()
        for (id, l) in s.leases where l.expires < t {
            s.leases[id] = nil
            s.keys = s.keys.filter { $0.value.lease != id }
        }
    }

    func get(_ key: String) async throws(StrataError) -> KeyValue? { state.withLock { Self.expire(&$0); return $0.keys[key] } }

    func range(prefix: String) async throws(StrataError) -> [KeyValue] {
        state.withLock { s in Self.expire(&s); return s.keys.values.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key } }
    }

    private static func put(_ s: inout State, _ key: String, _ value: [UInt8], lease: Int64) {
        s.revision += 1
        if var kv = s.keys[key] {
            kv.value = value; kv.modRevision = s.revision; kv.version += 1; kv.lease = lease
            s.keys[key] = kv
        } else {
            s.keys[key] = KeyValue(key: key, value: value, createRevision: s.revision, modRevision: s.revision, version: 1, lease: lease)
        }
    }

    func put(_ key: String, value: [UInt8], lease: Int64) async throws(StrataError) -> Int64 {
        state.withLock { s in Self.expire(&s); Self.put(&s, key, value, lease: lease); return s.revision }
    }

    func delete(_ key: String) async throws(StrataError) {
        state.withLock { s in if s.keys.removeValue(forKey: key) != nil { s.revision += 1 } }
    }

    func txn(compare: [TxnCompare], success: [TxnOperation], failure: [TxnOperation]) async throws(StrataError) -> TxnResult {
        state.withLock { s in
            Self.expire(&s)
            let ok = compare.allSatisfy { c in
                switch c {
                case .modRevision(let k, let r): return (s.keys[k]?.modRevision ?? 0) == r
                case .createRevision(let k, let r): return (s.keys[k]?.createRevision ?? 0) == r
                case .value(let k, let v): return s.keys[k]?.value == v
                }
            }
            var reads: [KeyValue?] = []
            for op in ok ? success : failure {
                switch op {
                case .put(let k, let v, let lease): Self.put(&s, k, v, lease: lease)
                case .delete(let k): s.keys[k] = nil; s.revision += 1
                case .get(let k): reads.append(s.keys[k])
                }
            }
            return TxnResult(succeeded: ok, revision: s.revision, reads: reads)
        }
    }

    func grantLease(ttlSeconds: Int) async throws(StrataError) -> Int64 {
        state.withLock { s in
            s.nextLease += 1
            s.leases[s.nextLease] = (ttlSeconds, Self.now() + Double(ttlSeconds))
            return s.nextLease
        }
    }

    func keepAlive(lease: Int64) async throws(StrataError) -> Int {
        try state.withLock { (s) throws(StrataError) -> Int in
            Self.expire(&s)
            guard let l = s.leases[lease] else { throw StrataError(.notFound, "lease expired", path: endpoint) }
            s.leases[lease] = (l.ttl, Self.now() + Double(l.ttl))
            return l.ttl
        }
    }

    func revoke(lease: Int64) async throws(StrataError) {
        state.withLock { s in
            s.leases[lease] = nil
            s.keys = s.keys.filter { $0.value.lease != lease }
        }
    }

    func watch(prefix: String, afterRevision revision: Int64) -> AsyncThrowingStream<WatchEvent, any Error> {
        AsyncThrowingStream { $0.finish() }
    }
}
