// The object store as the remote tier sees it: the few S3 operations Strata needs, behind a small
// protocol so that tests can wrap the real store (SeaweedFS, S3, MinIO, R2) with fault injection.
//
// Errors are `StrataError`s whose `path` is the object's address (`s3://bucket/key`):
// - `.notFound`: the object (or the upload) does not exist;
// - `.alreadyExists`: a conditional PUT lost (HTTP 412 to `If-None-Match: *` or `If-Match`);
// - `.io`: the store is unreachable, timed out or kept answering 5xx after the retries, or refused
//   the request (403: bad credentials; the message says which);
// - `.corrupt`: the store answered something that is not what the protocol promises (a short body).
import StrataFormat

/// What the store knows of one object.
public struct ObjectInfo: Sendable, Equatable {
    /// The key, relative to the bucket.
    public var key: String
    /// Size in bytes.
    public var size: UInt64
    /// The store's entity tag, without quotes.
    public var etag: String
    /// Last-Modified, in milliseconds since 1970.
    public var lastModifiedMilliseconds: UInt64

    /// Creates an object description.
    public init(key: String, size: UInt64, etag: String, lastModifiedMilliseconds: UInt64) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModifiedMilliseconds = lastModifiedMilliseconds
    }
}

/// The precondition of a PUT.
public enum PutCondition: Sendable, Equatable {
    /// Unconditional.
    case none
    /// `If-None-Match: *`: only when no object has the key (every Strata object is written so).
    case ifAbsent
    /// `If-Match: etag`: only when the object's current entity tag is `etag`.
    case ifMatch(String)
}

/// A multipart upload that was started and neither completed nor aborted.
public struct PendingUpload: Sendable, Equatable {
    /// The key it uploads to.
    public var key: String
    /// The store's upload id.
    public var uploadId: String
    /// When it was initiated, in milliseconds since 1970.
    public var initiatedMilliseconds: UInt64

    /// Creates a description.
    public init(key: String, uploadId: String, initiatedMilliseconds: UInt64) {
        self.key = key
        self.uploadId = uploadId
        self.initiatedMilliseconds = initiatedMilliseconds
    }
}

/// An S3-compatible bucket: the operations the remote tier uses.
public protocol ObjectStore: Sendable {
    /// `s3://bucket/key`, for messages.
    func address(of key: String) -> String

    /// The object's bytes, or the bytes of `range` (a ranged GET). Throws `.notFound` when absent.
    func get(_ key: String, range: Range<UInt64>?) async throws(StrataError) -> [UInt8]

    /// Writes `body` under `key` when `condition` holds; returns the new entity tag. Throws
    /// `.alreadyExists` when the condition fails (412).
    func put(_ key: String, body: [UInt8], condition: PutCondition) async throws(StrataError) -> String

    /// Uploads the file at `path` (multipart above the store's part size, parts in parallel; an
    /// upload that fails is aborted). Same conditions and errors as ``put(_:body:condition:)``.
    func upload(_ key: String, fromFile path: String, condition: PutCondition) async throws(StrataError) -> String

    /// Downloads the object into the file at `path` (created or truncated; ranged GETs in
    /// parallel for large objects; the file is fsynced). Returns the bytes written.
    func download(_ key: String, toFile path: String) async throws(StrataError) -> UInt64

    /// The object's description, or nil when it does not exist.
    func head(_ key: String) async throws(StrataError) -> ObjectInfo?

    /// Deletes the object (no error when it does not exist).
    func delete(_ key: String) async throws(StrataError)

    /// Every object whose key starts with `prefix` and sorts after `startAfter`, in key order
    /// (ListObjectsV2, all pages).
    func list(prefix: String, startAfter: String?) async throws(StrataError) -> [ObjectInfo]

    /// Multipart uploads under `prefix` that were started and not finished.
    func pendingUploads(prefix: String) async throws(StrataError) -> [PendingUpload]

    /// Aborts a multipart upload.
    func abortUpload(_ upload: PendingUpload) async throws(StrataError)
}

extension ObjectStore {
    /// The whole object.
    public func get(_ key: String) async throws(StrataError) -> [UInt8] { try await get(key, range: nil) }

    /// Every object under `prefix`.
    public func list(prefix: String) async throws(StrataError) -> [ObjectInfo] { try await list(prefix: prefix, startAfter: nil) }
}
