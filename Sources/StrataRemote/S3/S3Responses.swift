// The S3 answers the client reads, decoded from their XML: a page of ListObjectsV2, a page of
// ListMultipartUploads, the upload id of a new multipart upload, the result of completing one and
// the error body every failed request carries. A field the protocol requires that is missing or
// malformed gives `.corrupt`.
import StrataFormat

/// One page of ListObjectsV2.
struct ListObjectsPage: Sendable {
    var objects: [ObjectInfo]
    /// The token for the next page; nil on the last page.
    var nextContinuationToken: String?

    init(xml root: XMLElement, what: String) throws(StrataError) {
        guard root.name == "ListBucketResult" else { throw S3Responses.unexpected(root, "ListBucketResult", what) }
        objects = []
        for item in root.children("Contents") {
            guard let key = item.text(of: "Key"), !key.isEmpty else { throw S3Responses.missing("Contents/Key", what) }
            guard let size = item.text(of: "Size").flatMap({ UInt64($0.trimmed) }) else {
                throw S3Responses.missing("Size of '\(key.prefix(200))'", what)
            }
            let modified = item.text(of: "LastModified").flatMap { S3Time.parseISO8601($0.trimmed) } ?? 0
            objects.append(ObjectInfo(key: key, size: size, etag: S3Responses.unquoted(item.text(of: "ETag") ?? ""),
                                      lastModifiedMilliseconds: modified))
        }
        nextContinuationToken = nil
        if try S3Responses.isTruncated(root, what) {
            guard let token = root.text(of: "NextContinuationToken"), !token.isEmpty else {
                throw S3Responses.missing("NextContinuationToken of a truncated listing", what)
            }
            nextContinuationToken = token
        }
    }
}

/// One page of ListMultipartUploads.
struct ListUploadsPage: Sendable {
    var uploads: [PendingUpload]
    /// The markers of the next page; nil on the last page.
    var next: (keyMarker: String, uploadIdMarker: String)?

    init(xml root: XMLElement, what: String) throws(StrataError) {
        guard root.name == "ListMultipartUploadsResult" else {
            throw S3Responses.unexpected(root, "ListMultipartUploadsResult", what)
        }
        uploads = []
        for item in root.children("Upload") {
            guard let key = item.text(of: "Key"), !key.isEmpty else { throw S3Responses.missing("Upload/Key", what) }
            guard let id = item.text(of: "UploadId"), !id.isEmpty else { throw S3Responses.missing("Upload/UploadId", what) }
            let initiated = item.text(of: "Initiated").flatMap { S3Time.parseISO8601($0.trimmed) } ?? 0
            uploads.append(PendingUpload(key: key, uploadId: id, initiatedMilliseconds: initiated))
        }
        next = nil
        if try S3Responses.isTruncated(root, what) {
            guard let key = root.text(of: "NextKeyMarker"), !key.isEmpty else {
                throw S3Responses.missing("NextKeyMarker of a truncated listing", what)
            }
            next = (key, root.text(of: "NextUploadIdMarker") ?? "")
        }
    }
}

enum S3Responses {
    /// The upload id of InitiateMultipartUploadResult.
    static func uploadId(_ root: XMLElement, what: String) throws(StrataError) -> String {
        guard root.name == "InitiateMultipartUploadResult" else {
            throw unexpected(root, "InitiateMultipartUploadResult", what)
        }
        guard let id = root.text(of: "UploadId"), !id.isEmpty, id.utf8.count <= 1024 else {
            throw missing("UploadId", what)
        }
        return id
    }

    /// The entity tag of CompleteMultipartUploadResult (nil when the store leaves it out).
    static func completedETag(_ root: XMLElement, what: String) throws(StrataError) -> String? {
        guard root.name == "CompleteMultipartUploadResult" else {
            throw unexpected(root, "CompleteMultipartUploadResult", what)
        }
        return root.text(of: "ETag").map(unquoted)
    }

    /// `Code` and `Message` of an `<Error>` body, when the bytes are one.
    static func error(_ bytes: [UInt8]) -> (code: String, message: String)? {
        guard !bytes.isEmpty, let root = try? S3XML.parse(bytes, what: ""), root.name == "Error" else { return nil }
        guard let code = root.text(of: "Code"), !code.isEmpty else { return nil }
        return (String(code.prefix(100)), String((root.text(of: "Message") ?? "").prefix(500)))
    }

    static func isTruncated(_ root: XMLElement, _ what: String) throws(StrataError) -> Bool {
        switch root.text(of: "IsTruncated")?.trimmed.lowercased() {
        case "true": return true
        case "false", nil: return false
        case let other?: throw StrataError(.corrupt, "the store's listing has IsTruncated '\(other.prefix(20))'", path: what)
        }
    }

    /// An entity tag without its quotes.
    static func unquoted(_ etag: String) -> String {
        var t = etag.trimmed
        if t.hasPrefix("W/") { t.removeFirst(2) }
        if t.count >= 2, t.hasPrefix("\""), t.hasSuffix("\"") { t = String(t.dropFirst().dropLast()) }
        return t
    }

    static func unexpected(_ root: XMLElement, _ expected: String, _ what: String) -> StrataError {
        StrataError(.corrupt, "the store answered <\(root.name.prefix(60))> where S3 sends <\(expected)>", path: what)
    }

    static func missing(_ field: String, _ what: String) -> StrataError {
        StrataError(.corrupt, "the store's answer lacks a valid \(field)", path: what)
    }
}

extension String {
    /// Without leading and trailing ASCII whitespace.
    var trimmed: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
