// GET (whole or ranged), PUT (conditional), HEAD, DELETE and ListObjectsV2 on single objects, and
// the body reader every download shares: it checks that the store sends exactly the bytes asked
// for, never allocates more than that, and bounds the time a body may take.
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import StrataFormat

extension S3Client {
    public func get(_ key: String, range: Range<UInt64>?) async throws(StrataError) -> [UInt8] {
        if let range, range.isEmpty { return [] }
        let what = address(of: key)
        var headers: [(name: String, value: String)] = []
        if let range { headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")) }
        let request = S3Request("GET", .GET, key: key, headers: headers)
        return try await send(request) { response, _ in
            let expected = try self.expectedBodyLength(response, range: range, what: what)
            var bytes: [UInt8] = []
            // A ranged GET's length is what was asked; a whole object's comes from the store and is
            // only trusted up to a modest reservation, the rest grows as bytes really arrive.
            bytes.reserveCapacity(Int(range != nil ? expected : min(expected, 8 << 20)))
            _ = try await self.readBody(response, expected: expected, what: what) { chunk, _ in
                bytes.append(contentsOf: chunk.readableBytesView)
            }
            return bytes
        }
    }

    public func put(_ key: String, body: [UInt8], condition: PutCondition) async throws(StrataError) -> String {
        try await put(key, buffer: ByteBuffer(bytes: body), condition: condition)
    }

    /// ``put(_:body:condition:)`` of bytes already in a buffer (a part read from a file).
    func put(_ key: String, buffer: ByteBuffer, condition: PutCondition) async throws(StrataError) -> String {
        var headers: [(name: String, value: String)] = [("content-type", "application/octet-stream")]
        headers += Self.conditionHeaders(condition)
        let request = S3Request("PUT", .PUT, key: key, headers: headers, body: buffer)
        return try await send(request) { response, _ in
            try self.etag(response, what: self.address(of: key))
        }
    }

    public func head(_ key: String) async throws(StrataError) -> ObjectInfo? {
        let what = address(of: key)
        let request = S3Request("HEAD", .HEAD, key: key, passThrough: [404])
        return try await send(request) { response, _ in
            guard response.status.code != 404 else { return nil }
            guard let sizeText = response.headers.first(name: "content-length"), let size = UInt64(sizeText) else {
                throw StrataError(.corrupt, "the store's HEAD answer has no valid Content-Length", path: what)
            }
            let modified = response.headers.first(name: "last-modified").flatMap(S3Time.parseHTTPDate) ?? 0
            return ObjectInfo(key: key, size: size, etag: try self.etag(response, what: what), lastModifiedMilliseconds: modified)
        }
    }

    public func delete(_ key: String) async throws(StrataError) {
        let request = S3Request("DELETE", .DELETE, key: key)
        try await send(request) { _, _ in }
    }

    public func list(prefix: String, startAfter: String?) async throws(StrataError) -> [ObjectInfo] {
        try await list(prefix: prefix, startAfter: startAfter, pageSize: 1000)
    }

    /// ``list(prefix:startAfter:)`` asking for `pageSize` keys per page (1 ... 1000), for tests
    /// that cross page boundaries with few objects.
    func list(prefix: String, startAfter: String?, pageSize: Int) async throws(StrataError) -> [ObjectInfo] {
        var objects: [ObjectInfo] = []
        var token: String?
        var seenTokens: Set<String> = []
        repeat {
            var query: [(name: String, value: String)] = [("list-type", "2"), ("prefix", prefix),
                                                           ("max-keys", String(max(1, min(pageSize, 1000))))]
            if let after = startAfter.flatMap({ Self.safeStartAfter($0, prefix: prefix) }) { query.append(("start-after", after)) }
            if let token { query.append(("continuation-token", token)) }
            let what = bucketAddress + "/" + prefix
            let request = S3Request("ListObjectsV2", .GET, key: nil, query: query)
            let page = try await send(request) { response, _ in
                try ListObjectsPage(xml: try await self.readXML(response, what: what), what: what)
            }
            for object in page.objects where !object.key.hasPrefix(prefix) {
                throw StrataError(.corrupt, "the store listed '\(object.key.prefix(200))', outside the prefix", path: what)
            }
            // SeaweedFS walks directories, so "a-c" can come after "a/b" and after a start-after
            // of "a/b": keep only what sorts after it in S3's byte order.
            objects += page.objects.filter { object in startAfter.map { Self.sortsBefore($0, object.key) } ?? true }
            guard objects.count <= Self.maximumListedObjects else {
                throw StrataError(.corrupt, "the store listed more than \(Self.maximumListedObjects) objects", path: what)
            }
            token = page.nextContinuationToken
            if let token {
                // A store that hands back a token it gave before would make this loop forever.
                guard seenTokens.insert(token).inserted else {
                    throw StrataError(.corrupt, "the store repeated a continuation token", path: what)
                }
            }
        } while token != nil
        // S3 lists in UTF-8 byte order; some stores (SeaweedFS walks directories) do not.
        objects.sort { Self.sortsBefore($0.key, $1.key) }
        return objects
    }

    /// A start-after for the store that skips nothing S3's byte order puts after `startAfter`, also
    /// on a store that orders keys by path component and skips a whole directory named by the
    /// marker (SeaweedFS lists "a/b" before "a-c", and a marker "a" skips "a/b"). Orders differ
    /// only where one key has '/' and the other a byte below '/': the marker is `startAfter` cut
    /// before the first such byte past the prefix, less its last byte, so that no directory it
    /// names can hold a key that sorts after `startAfter`; nil (list from the prefix) when that
    /// would end in '/' or leave nothing past the prefix. The client drops what comes back at or
    /// before `startAfter`.
    static func safeStartAfter(_ startAfter: String, prefix: String) -> String? {
        guard startAfter.hasPrefix(prefix) else { return nil }
        var bytes = Array(startAfter.utf8)
        let prefixCount = prefix.utf8.count
        if let cut = bytes[prefixCount...].firstIndex(where: { $0 < 0x2F }) { bytes.removeSubrange(cut...) }
        while bytes.count > prefixCount, bytes.last == 0x2F { bytes.removeLast() }
        guard bytes.count > prefixCount + 1 else { return nil }
        bytes.removeLast()
        guard bytes.last != 0x2F else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Most objects one listing returns (a bound on memory against a store that never stops).
    static let maximumListedObjects = 50_000_000

    /// `a < b` in UTF-8 byte order, S3's key order.
    static func sortsBefore(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    static func conditionHeaders(_ condition: PutCondition) -> [(name: String, value: String)] {
        switch condition {
        case .none: return []
        case .ifAbsent: return [("if-none-match", "*")]
        case .ifMatch(let etag): return [("if-match", "\"\(etag)\"")]
        }
    }

    /// The ETag header, unquoted; `.corrupt` when missing.
    func etag(_ response: HTTPClientResponse, what: String) throws(StrataError) -> String {
        guard let etag = response.headers.first(name: "etag").map(S3Responses.unquoted), !etag.isEmpty else {
            throw StrataError(.corrupt, "the store's answer has no ETag", path: what)
        }
        return etag
    }

    /// How many body bytes a GET must deliver: the range's length for a ranged GET (checked
    /// against the Content-Range the store sends), else the Content-Length.
    func expectedBodyLength(_ response: HTTPClientResponse, range: Range<UInt64>?, what: String) throws(StrataError) -> UInt64 {
        let length = response.headers.first(name: "content-length").map { UInt64($0) }
        if length == .some(nil) { throw StrataError(.corrupt, "the store sent a malformed Content-Length", path: what) }
        guard let range else {
            guard let length = length ?? nil else {
                throw StrataError(.corrupt, "the store's answer has no Content-Length", path: what)
            }
            guard length <= Self.maximumInMemoryBytes else {
                throw StrataError(.invalidArgument, "the object has \(length) bytes, more than get() reads into memory (\(Self.maximumInMemoryBytes)); use download(_:toFile:)", path: what)
            }
            return length
        }
        let expected = range.upperBound - range.lowerBound
        if response.status.code == 200 {
            // The store ignored the Range header and sent the whole object: usable only when the
            // object is exactly the range.
            guard range.lowerBound == 0, length == expected else {
                throw StrataError(.corrupt, "the store answered a ranged GET with the whole object", path: what)
            }
            return expected
        }
        guard response.status.code == 206 else {
            throw StrataError(.corrupt, "the store answered a ranged GET with HTTP \(response.status.code)", path: what)
        }
        if let contentRange = response.headers.first(name: "content-range") {
            let expectedPrefix = "bytes \(range.lowerBound)-\(range.upperBound - 1)/"
            guard contentRange.hasPrefix(expectedPrefix) else {
                throw StrataError(.corrupt, "the store sent Content-Range '\(contentRange.prefix(100))' for bytes \(range.lowerBound)..<\(range.upperBound): the object is shorter than the range", path: what)
            }
        }
        if let length = length ?? nil, length != expected {
            throw StrataError(.corrupt, "the store sent \(length) bytes for a range of \(expected)", path: what)
        }
        return expected
    }

    /// Streams the body to `sink` (each chunk with its offset in the body) and checks that it is
    /// exactly `expected` bytes: more is refused as it arrives (never buffered); fewer is
    /// `.corrupt`; a connection lost midway is retryable. The whole body must arrive within the
    /// request timeout plus `expected` at ``minimumBytesPerSecond``.
    func readBody(_ response: HTTPClientResponse, expected: UInt64, what: String,
                  _ sink: (ByteBuffer, UInt64) throws(StrataError) -> Void) async throws -> UInt64 {
        var received: UInt64 = 0
        let deadline = monotonicSeconds() + transferSeconds(expected)
        do {
            for try await chunk in response.body {
                let count = UInt64(chunk.readableBytes)
                guard count <= expected - received else {
                    throw StrataError(.corrupt, "the store sent more than the \(expected) bytes it announced", path: what)
                }
                try sink(chunk, received)
                received += count
                guard monotonicSeconds() <= deadline else {
                    throw S3AttemptFailure.retryable(StrataError(.io, "the store sent \(received) of \(expected) bytes too slowly (under 1 MiB/s)", path: what))
                }
            }
        } catch let error as StrataError {
            throw error
        } catch let error as S3AttemptFailure {
            throw error
        } catch {
            throw S3AttemptFailure.retryable(StrataError(.corrupt, "short body: the store sent \(received) of \(expected) bytes, then \(Self.describe(error))", path: what))
        }
        guard received == expected else {
            throw StrataError(.corrupt, "short body: the store sent \(received) of \(expected) bytes", path: what)
        }
        return received
    }

    /// The body as an XML document (at most ``S3XML/maximumBytes``).
    func readXML(_ response: HTTPClientResponse, what: String) async throws -> XMLElement {
        var bytes: [UInt8] = []
        let deadline = monotonicSeconds() + transferSeconds(UInt64(S3XML.maximumBytes))
        do {
            for try await chunk in response.body {
                guard bytes.count + chunk.readableBytes <= S3XML.maximumBytes else {
                    throw StrataError(.corrupt, "the store's XML answer is larger than \(S3XML.maximumBytes) bytes", path: what)
                }
                bytes.append(contentsOf: chunk.readableBytesView)
                guard monotonicSeconds() <= deadline else {
                    throw S3AttemptFailure.retryable(StrataError(.io, "the store's XML answer arrived too slowly", path: what))
                }
            }
        } catch let error as StrataError {
            throw error
        } catch let error as S3AttemptFailure {
            throw error
        } catch {
            throw S3AttemptFailure.retryable(StrataError(.io, "the store's answer broke off: \(Self.describe(error))", path: what))
        }
        return try S3XML.parse(bytes, what: what)
    }
}
