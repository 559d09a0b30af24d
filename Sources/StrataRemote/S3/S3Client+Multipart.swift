// Uploads from a file: one PUT up to the part size, a multipart upload above it (create, parts in
// parallel, complete with the parts' entity tags; aborted on failure), and the listing and aborting
// of multipart uploads that were left unfinished (by a crash) for garbage collection.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StrataFormat

extension S3Client {
    public func upload(_ key: String, fromFile path: String, condition: PutCondition) async throws(StrataError) -> String {
        let size = try SystemFile.openForReading(path).size()
        guard size > UInt64(configuration.partSize) else {
            return try await put(key, buffer: try Self.readPart(path, at: 0, count: Int(size)), condition: condition)
        }
        // A conditional upload fails before sending gigabytes when the condition already fails;
        // the same condition on the completion is what makes it safe against a racing writer.
        if condition != .none {
            let current = try await head(key)
            switch condition {
            case .ifAbsent where current != nil, .ifMatch where current == nil:
                throw StrataError(.alreadyExists, "S3 upload refused: the condition of the write does not hold (the object \(current == nil ? "does not exist" : "exists"))", path: address(of: key))
            case .ifMatch(let etag) where current?.etag != etag:
                throw StrataError(.alreadyExists, "S3 upload refused: the object's entity tag is no longer \(etag)", path: address(of: key))
            default:
                break
            }
        }
        // S3 allows 10,000 parts: a larger file gets larger parts.
        let partSize = max(UInt64(configuration.partSize), (size + 9_999) / 10_000)
        let partCount = Int((size + partSize - 1) / partSize)
        let uploadId = try await createUpload(key)
        do throws(StrataError) {
            let etags = try await inParallel(count: partCount, width: configuration.parallelParts, what: address(of: key)) {
                (index: Int) async throws(StrataError) -> String in
                let offset = UInt64(index) * partSize
                let bytes = try Self.readPart(path, at: offset, count: Int(min(partSize, size - offset)))
                return try await self.uploadPart(key, uploadId: uploadId, number: index + 1, bytes: bytes)
            }
            return try await completeUpload(key, uploadId: uploadId, etags: etags, size: size, condition: condition)
        } catch {
            try? await abortUpload(PendingUpload(key: key, uploadId: uploadId, initiatedMilliseconds: 0))
            throw error
        }
    }

    public func pendingUploads(prefix: String) async throws(StrataError) -> [PendingUpload] {
        var uploads: [PendingUpload] = []
        var marker: (keyMarker: String, uploadIdMarker: String)?
        var seen: Set<String> = []
        let what = bucketAddress + "/" + prefix
        repeat {
            var query: [(name: String, value: String)] = [("uploads", ""), ("prefix", prefix)]
            if let marker {
                query.append(("key-marker", marker.keyMarker))
                if !marker.uploadIdMarker.isEmpty { query.append(("upload-id-marker", marker.uploadIdMarker)) }
            }
            let request = S3Request("ListMultipartUploads", .GET, key: nil, query: query)
            let page = try await send(request) { response, _ in
                try ListUploadsPage(xml: try await self.readXML(response, what: what), what: what)
            }
            uploads += page.uploads.filter { $0.key.hasPrefix(prefix) }
            guard uploads.count <= Self.maximumListedObjects else {
                throw StrataError(.corrupt, "the store listed more than \(Self.maximumListedObjects) uploads", path: what)
            }
            marker = page.next
            if let marker {
                guard seen.insert(marker.keyMarker + "\u{0}" + marker.uploadIdMarker).inserted else {
                    throw StrataError(.corrupt, "the store repeated a listing marker", path: what)
                }
            }
        } while marker != nil
        return uploads
    }

    public func abortUpload(_ upload: PendingUpload) async throws(StrataError) {
        let request = S3Request("AbortMultipartUpload", .DELETE, key: upload.key, query: [("uploadId", upload.uploadId)],
                                passThrough: [404])
        try await send(request) { response, attempt in
            // A 404 after a retry means the first attempt aborted it.
            if response.status.code == 404 && attempt == 0 {
                throw StrataError(.notFound, "S3 AbortMultipartUpload answered HTTP 404: no upload \(upload.uploadId)",
                                  path: self.address(of: upload.key))
            }
        }
    }

    /// Starts a multipart upload; returns its id.
    func createUpload(_ key: String) async throws(StrataError) -> String {
        let what = address(of: key)
        let request = S3Request("CreateMultipartUpload", .POST, key: key, query: [("uploads", "")],
                                headers: [("content-type", "application/octet-stream")])
        return try await send(request) { response, _ in
            try S3Responses.uploadId(try await self.readXML(response, what: what), what: what)
        }
    }

    /// Uploads part `number` (from 1); returns its entity tag.
    func uploadPart(_ key: String, uploadId: String, number: Int, bytes: [UInt8]) async throws(StrataError) -> String {
        try await uploadPart(key, uploadId: uploadId, number: number, bytes: ByteBuffer(bytes: bytes))
    }

    /// Uploads part `number` (from 1) from a buffer; returns its entity tag.
    func uploadPart(_ key: String, uploadId: String, number: Int, bytes: ByteBuffer) async throws(StrataError) -> String {
        let request = S3Request("UploadPart", .PUT, key: key, query: [("partNumber", String(number)), ("uploadId", uploadId)],
                                body: bytes)
        return try await send(request) { response, _ in try self.etag(response, what: self.address(of: key)) }
    }

    /// Completes the upload with its parts' entity tags, under `condition`; returns the object's tag.
    func completeUpload(_ key: String, uploadId: String, etags: [String], size: UInt64,
                        condition: PutCondition) async throws(StrataError) -> String {
        let what = address(of: key)
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for (index, etag) in etags.enumerated() {
            xml += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\"\(Self.escapeXML(etag))\"</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let request = S3Request("CompleteMultipartUpload", .POST, key: key, query: [("uploadId", uploadId)],
                                headers: [("content-type", "application/xml")] + Self.conditionHeaders(condition),
                                body: ByteBuffer(string: xml), passThrough: [404])
        let etag: String? = try await send(request) { response, attempt in
            if response.status.code == 404 {
                // NoSuchUpload after a retry: the first attempt completed it (checked below).
                guard attempt > 0 else {
                    throw StrataError(.notFound, "S3 CompleteMultipartUpload answered HTTP 404: the upload is gone", path: what)
                }
                return nil
            }
            // S3 may answer 200 and still fail, with an <Error> body (it streams whitespace while
            // it assembles the parts).
            let root = try await self.readXML(response, what: what)
            if root.name == "Error" {
                let code = root.text(of: "Code") ?? "?"
                let error = StrataError(.io, "S3 CompleteMultipartUpload failed: \(code.prefix(100)): \((root.text(of: "Message") ?? "").prefix(300))", path: what)
                if ["InternalError", "SlowDown", "ServiceUnavailable"].contains(code) { throw S3AttemptFailure.retryable(error) }
                throw error
            }
            return try S3Responses.completedETag(root, what: what) ?? ""
        }
        if let etag, !etag.isEmpty { return etag }
        guard let info = try await head(key), info.size == size else {
            throw StrataError(.io, "S3 CompleteMultipartUpload: the upload is gone but the object is not there with \(size) bytes", path: what)
        }
        return info.etag
    }

    /// `count` bytes of the file at `offset`, read straight into the buffer the request sends.
    static func readPart(_ path: String, at offset: UInt64, count: Int) throws(StrataError) -> ByteBuffer {
        let file = try SystemFile.openForReading(path)
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var failure: StrataError?
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { space in
            guard count > 0 else { return 0 }
            do throws(StrataError) {
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: space[0..<count]), fromAbsoluteOffset: offset)
            } catch {
                failure = error
            }
            return count
        }
        if let failure { throw failure }
        return buffer
    }

    static func escapeXML(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
