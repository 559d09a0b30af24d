// One S3 request as the client builds it before each attempt: method, key (or the bucket), query,
// extra headers and body; turned into a signed AsyncHTTPClient request with a fresh x-amz-date, so
// that a retry carries a valid signature.
import AsyncHTTPClient
import Crypto
import NIOCore
import NIOHTTP1
import StrataFormat

/// What one S3 call sends.
struct S3Request: Sendable {
    /// The S3 action, for messages ("GET", "ListObjectsV2", "UploadPart"...).
    var action: String
    var method: HTTPMethod
    /// The object key; nil for a request on the bucket (listings).
    var key: String?
    var query: [(name: String, value: String)] = []
    /// Headers sent and signed besides host, x-amz-date and x-amz-content-sha256.
    var headers: [(name: String, value: String)] = []
    var body: ByteBuffer?
    /// Statuses (beyond 2xx) handed to the caller instead of turned into errors.
    var passThrough: Set<UInt> = []

    init(_ action: String, _ method: HTTPMethod, key: String?, query: [(name: String, value: String)] = [],
         headers: [(name: String, value: String)] = [], body: ByteBuffer? = nil, passThrough: Set<UInt> = []) {
        self.action = action
        self.method = method
        self.key = key
        self.query = query
        self.headers = headers
        self.body = body
        self.passThrough = passThrough
    }

    /// Bytes sent in the body.
    var bodyCount: Int { body?.readableBytes ?? 0 }

    /// Hex SHA-256 of the body (of nothing when there is none).
    var payloadHash: String {
        guard let body else { return SigV4Signer.emptyPayloadHash }
        var hasher = SHA256()
        body.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        return SigV4Signer.hex(hasher.finalize())
    }

    /// The encoded path: `/bucket/key` (path-style) or `/key`.
    func encodedPath(_ configuration: S3Configuration) -> String {
        let keyPath = key.map { SigV4Signer.encodePath($0) } ?? ""
        if configuration.pathStyle { return "/" + configuration.bucket + keyPath }
        return keyPath.isEmpty ? "/" : keyPath
    }

    /// The request signed at `milliseconds` (wall clock), ready to execute.
    func signed(_ configuration: S3Configuration, signer: SigV4Signer, payloadHash: String,
                milliseconds: UInt64) -> HTTPClientRequest {
        let amzDate = SigV4Signer.amzDate(milliseconds: milliseconds)
        let path = encodedPath(configuration)
        var signedHeaders = headers
        signedHeaders.append(("host", configuration.requestHost))
        signedHeaders.append(("x-amz-date", amzDate))
        signedHeaders.append(("x-amz-content-sha256", payloadHash))
        let description = SigV4Request(method: method.rawValue, encodedPath: path, query: query,
                                       headers: signedHeaders, payloadHash: payloadHash)
        let authorization = signer.authorization(description, amzDate: amzDate)
        // The query goes out exactly as it was signed: encoded the same way, in the same order.
        let queryString = SigV4Signer.canonicalQuery(query)
        var url = configuration.scheme + "://" + configuration.requestHost + path
        if !queryString.isEmpty { url += "?" + queryString }
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in signedHeaders { request.headers.add(name: name, value: value) }
        request.headers.add(name: "authorization", value: authorization)
        if let body {
            request.body = HTTPClientRequest.Body.bytes(body)
        } else if method == .PUT || method == .POST {
            request.body = HTTPClientRequest.Body.bytes(ByteBuffer())
        }
        return request
    }
}
