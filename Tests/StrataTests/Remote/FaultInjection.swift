// Fault-injection seams around the real object store and etcd: each wraps a real client and, when
// told to, fails the way a real outage does (connection refused, an answer lost after the request
// was carried out), so the failure tests drive the remote protocol through every step against
// SeaweedFS and etcd themselves.
import StrataFormat
@testable import StrataRemote
import Synchronization

/// How a wrapped call fails.
public enum InjectedFault: Sendable, Equatable {
    /// Nothing: the call goes through.
    case none
    /// The service is down: every call fails with `.io` before reaching it.
    case down
    /// Writes (PUT, upload, delete; put, txn) reach the service and are carried out, then the answer
    /// is lost: the call fails with `.io`.
    case loseWriteAnswers
    /// The next write is carried out and its answer lost, then the service is down (`.down`):
    /// a caller cannot read back whether its write happened.
    case loseWriteAnswerThenDown
}

/// An `ObjectStore` whose calls can be made to fail.
public final class FaultyObjectStore: ObjectStore {
    /// The real store.
    public let base: any ObjectStore
    private let fault = Mutex(InjectedFault.none)
    private let puts = Mutex([String]())

    /// Wraps `base`.
    public init(_ base: any ObjectStore) { self.base = base }

    /// Sets the fault for the calls that follow.
    public func inject(_ f: InjectedFault) { fault.withLock { $0 = f } }

    /// Keys written through this wrapper, in order.
    public var keysWritten: [String] { puts.withLock { $0 } }

    private func check(_ key: String, write: Bool) throws(StrataError) {
        if fault.withLock({ $0 }) == .down {
            throw StrataError(.io, "injected fault: object store unreachable", path: base.address(of: key))
        }
    }

    private func afterWrite(_ key: String) throws(StrataError) {
        puts.withLock { $0.append(key) }
        if fault.withLock({ $0 }) == .loseWriteAnswers {
            throw StrataError(.io, "injected fault: the store's answer was lost", path: base.address(of: key))
        }
    }

    public func address(of key: String) -> String { base.address(of: key) }

    public func get(_ key: String, range: Range<UInt64>?) async throws(StrataError) -> [UInt8] {
        try check(key, write: false)
        return try await base.get(key, range: range)
    }

    public func put(_ key: String, body: [UInt8], condition: PutCondition) async throws(StrataError) -> String {
        try check(key, write: true)
        let etag = try await base.put(key, body: body, condition: condition)
        try afterWrite(key)
        return etag
    }

    public func upload(_ key: String, fromFile path: String, condition: PutCondition) async throws(StrataError) -> String {
        try check(key, write: true)
        let etag = try await base.upload(key, fromFile: path, condition: condition)
        try afterWrite(key)
        return etag
    }

    public func download(_ key: String, toFile path: String) async throws(StrataError) -> UInt64 {
        try check(key, write: false)
        return try await base.download(key, toFile: path)
    }

    public func head(_ key: String) async throws(StrataError) -> ObjectInfo? {
        try check(key, write: false)
        return try await base.head(key)
    }

    public func delete(_ key: String) async throws(StrataError) {
        try check(key, write: true)
        try await base.delete(key)
    }

    public func list(prefix: String, startAfter: String?) async throws(StrataError) -> [ObjectInfo] {
        try check(prefix, write: false)
        return try await base.list(prefix: prefix, startAfter: startAfter)
    }

    public func pendingUploads(prefix: String) async throws(StrataError) -> [PendingUpload] {
        try check(prefix, write: false)
        return try await base.pendingUploads(prefix: prefix)
    }

    public func abortUpload(_ upload: PendingUpload) async throws(StrataError) {
        try check(upload.key, write: true)
        try await base.abortUpload(upload)
    }
}

/// A `MetadataStore` whose calls can be made to fail.
public final class FaultyMetadataStore: MetadataStore {
    /// The real etcd client.
    public let base: any MetadataStore
    private let fault = Mutex(InjectedFault.none)

    /// Wraps `base`.
    public init(_ base: any MetadataStore) { self.base = base }

    /// Sets the fault for the calls that follow.
    public func inject(_ f: InjectedFault) { fault.withLock { $0 = f } }

    public var endpoint: String { base.endpoint }

    private func check(_ key: String) throws(StrataError) {
        if fault.withLock({ $0 }) == .down { throw StrataError(.io, "injected fault: etcd at \(endpoint) unreachable", path: key) }
    }

    private func afterWrite(_ key: String) throws(StrataError) {
        let f = fault.withLock { f in
            defer { if f == .loseWriteAnswerThenDown { f = .down } }
            return f
        }
        if f == .loseWriteAnswers || f == .loseWriteAnswerThenDown {
            throw StrataError(.io, "injected fault: etcd's answer was lost", path: key)
        }
    }

    public func get(_ key: String) async throws(StrataError) -> KeyValue? {
        try check(key)
        return try await base.get(key)
    }

    public func range(prefix: String) async throws(StrataError) -> [KeyValue] {
        try check(prefix)
        return try await base.range(prefix: prefix)
    }

    @discardableResult
    public func put(_ key: String, value: [UInt8], lease: Int64) async throws(StrataError) -> Int64 {
        try check(key)
        let r = try await base.put(key, value: value, lease: lease)
        try afterWrite(key)
        return r
    }

    public func delete(_ key: String) async throws(StrataError) {
        try check(key)
        try await base.delete(key)
    }

    public func txn(compare: [TxnCompare], success: [TxnOperation], failure: [TxnOperation]) async throws(StrataError) -> TxnResult {
        try check("txn")
        let r = try await base.txn(compare: compare, success: success, failure: failure)
        try afterWrite("txn")
        return r
    }

    public func grantLease(ttlSeconds: Int) async throws(StrataError) -> Int64 {
        try check("lease")
        return try await base.grantLease(ttlSeconds: ttlSeconds)
    }

    public func keepAlive(lease: Int64) async throws(StrataError) -> Int {
        try check("lease")
        return try await base.keepAlive(lease: lease)
    }

    public func revoke(lease: Int64) async throws(StrataError) {
        try check("lease")
        try await base.revoke(lease: lease)
    }

    public func watch(prefix: String, afterRevision revision: Int64) -> AsyncThrowingStream<WatchEvent, any Error> {
        base.watch(prefix: prefix, afterRevision: revision)
    }
}
