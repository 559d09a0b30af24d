// The metadata store as the remote tier sees it: etcd's key-value API (v3), reduced to what a
// commit, a lease and a watch need, behind a protocol so that tests can inject faults. The real one
// is `EtcdClient` (the v3 JSON gateway).
//
// Errors are `StrataError`s whose `path` is the key or the endpoint: `.io` when etcd is unreachable
// or answers an error, `.corrupt` when its answer is not what the protocol promises, `.notFound` for
// an expired or unknown lease.
import StrataFormat

/// One key's value and revisions.
public struct KeyValue: Sendable, Equatable {
    /// The key.
    public var key: String
    /// The value.
    public var value: [UInt8]
    /// Revision of the put that created the key.
    public var createRevision: Int64
    /// Revision of the last put to the key.
    public var modRevision: Int64
    /// Puts since the key was created.
    public var version: Int64
    /// The lease the key is attached to (0: none).
    public var lease: Int64

    /// Creates a key-value pair.
    public init(key: String, value: [UInt8], createRevision: Int64, modRevision: Int64, version: Int64, lease: Int64) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }
}

/// One comparison of a transaction (etcd's `Compare`, with the `EQUAL` result).
public enum TxnCompare: Sendable, Equatable {
    /// The key's mod_revision equals the revision (0: the key does not exist).
    case modRevision(String, equals: Int64)
    /// The key's create_revision equals the revision (0: the key does not exist).
    case createRevision(String, equals: Int64)
    /// The key's value equals the bytes.
    case value(String, equals: [UInt8])
}

/// One operation of a transaction branch.
public enum TxnOperation: Sendable, Equatable {
    /// Put the value (attached to the lease when not 0).
    case put(String, [UInt8], lease: Int64)
    /// Delete the key.
    case delete(String)
    /// Read the key (its value comes back in ``TxnResult/reads``).
    case get(String)
}

/// What a transaction did.
public struct TxnResult: Sendable, Equatable {
    /// Whether every comparison held (the success branch ran).
    public var succeeded: Bool
    /// The store's revision after the transaction.
    public var revision: Int64
    /// The values that `.get` operations of the branch that ran found, in order (nil: absent).
    public var reads: [KeyValue?]

    /// Creates a result.
    public init(succeeded: Bool, revision: Int64, reads: [KeyValue?]) {
        self.succeeded = succeeded
        self.revision = revision
        self.reads = reads
    }
}

/// A change seen by a watch.
public struct WatchEvent: Sendable, Equatable {
    /// Put or delete.
    public enum Kind: Sendable, Equatable {
        /// The key was written.
        case put
        /// The key was deleted (or its lease expired).
        case delete
    }
    /// What happened.
    public var kind: Kind
    /// The key and, for a put, its new value and revisions.
    public var keyValue: KeyValue

    /// Creates an event.
    public init(kind: Kind, keyValue: KeyValue) {
        self.kind = kind
        self.keyValue = keyValue
    }
}

/// A strongly consistent key-value store with transactions and leases (etcd).
public protocol MetadataStore: Sendable {
    /// The endpoint, for messages.
    var endpoint: String { get }

    /// The key's value, or nil.
    func get(_ key: String) async throws(StrataError) -> KeyValue?

    /// Every key that starts with `prefix`, in key order.
    func range(prefix: String) async throws(StrataError) -> [KeyValue]

    /// Puts a value (attached to `lease` when not 0); returns the revision.
    @discardableResult
    func put(_ key: String, value: [UInt8], lease: Int64) async throws(StrataError) -> Int64

    /// Deletes a key (no error when absent).
    func delete(_ key: String) async throws(StrataError)

    /// Runs `success` when every comparison holds, else `failure`, atomically.
    func txn(compare: [TxnCompare], success: [TxnOperation], failure: [TxnOperation]) async throws(StrataError) -> TxnResult

    /// Grants a lease of `ttlSeconds`; returns its id.
    func grantLease(ttlSeconds: Int) async throws(StrataError) -> Int64

    /// Refreshes a lease; returns its remaining TTL in seconds. Throws `.notFound` when it expired.
    func keepAlive(lease: Int64) async throws(StrataError) -> Int

    /// Revokes a lease (its keys are deleted).
    func revoke(lease: Int64) async throws(StrataError)

    /// Changes to keys under `prefix` after `revision` (0: from now), until the task is cancelled.
    func watch(prefix: String, afterRevision revision: Int64) -> AsyncThrowingStream<WatchEvent, any Error>
}
