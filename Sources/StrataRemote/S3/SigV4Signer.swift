// AWS Signature Version 4 (header form), as S3 checks it: a canonical request (method, URI-encoded
// path, sorted query, lower-case sorted headers with trimmed values, payload hash), a string to sign
// over its SHA-256, and an HMAC-SHA256 chain from the secret through date, region and service.
// Tested against the published AWS test-suite vectors and the S3 documentation's examples.
import Crypto
import Foundation

/// The parts of a request that SigV4 signs.
package struct SigV4Request: Sendable {
    /// `GET`, `PUT`, ...
    package var method: String
    /// The canonical URI: the path with each segment already URI-encoded (see ``SigV4Signer/encodePath(_:)``).
    package var encodedPath: String
    /// Query parameters, not encoded (the signer encodes and sorts them).
    package var query: [(name: String, value: String)]
    /// Headers to sign, any case, in any order; must include `host` and `x-amz-date`. A name that
    /// appears twice is signed as one header with the values joined by commas, in order.
    package var headers: [(name: String, value: String)]
    /// Hex SHA-256 of the body (also sent as `x-amz-content-sha256` to S3).
    package var payloadHash: String

    /// Creates a request description.
    package init(method: String, encodedPath: String, query: [(name: String, value: String)] = [],
                 headers: [(name: String, value: String)], payloadHash: String) {
        self.method = method
        self.encodedPath = encodedPath
        self.query = query
        self.headers = headers
        self.payloadHash = payloadHash
    }
}

/// Signs requests with one set of credentials for one region and service.
package struct SigV4Signer: Sendable {
    package let accessKey: String
    private let secretKey: String
    package let region: String
    package let service: String

    /// A signer for `service` ("s3") in `region`.
    package init(accessKey: String, secretKey: String, region: String, service: String = "s3") {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.region = region
        self.service = service
    }

    /// Hex SHA-256 of the empty body.
    package static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The canonical request: six lines joined by newlines (method, URI, query, headers block,
    /// signed header names, payload hash).
    package func canonicalRequest(_ request: SigV4Request) -> String {
        let query = Self.canonicalQuery(request.query)
        let headers = Self.canonicalHeaders(request.headers)
        return [
            request.method,
            request.encodedPath.isEmpty ? "/" : request.encodedPath,
            query,
            headers.map { "\($0.name):\($0.value)\n" }.joined(),
            headers.map(\.name).joined(separator: ";"),
            request.payloadHash,
        ].joined(separator: "\n")
    }

    /// `date/region/service/aws4_request` for an `amzDate` (`YYYYMMDDTHHMMSSZ`).
    package func scope(amzDate: String) -> String {
        "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
    }

    /// The string to sign: algorithm, timestamp, scope and the hex SHA-256 of the canonical request.
    package func stringToSign(canonicalRequest: String, amzDate: String) -> String {
        let hash = Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8)))
        return "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope(amzDate: amzDate))\n\(hash)"
    }

    /// The hex signature of `stringToSign` with the key derived for the date of `amzDate`.
    package func signature(stringToSign: String, amzDate: String) -> String {
        func hmac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key))
        }
        var key = SymmetricKey(data: Array("AWS4\(secretKey)".utf8))
        for part in [String(amzDate.prefix(8)), region, service, "aws4_request"] { key = hmac(key, part) }
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
    }

    /// The `Authorization` header value for `request` signed at `amzDate`.
    package func authorization(_ request: SigV4Request, amzDate: String) -> String {
        let canonical = canonicalRequest(request)
        let signature = signature(stringToSign: stringToSign(canonicalRequest: canonical, amzDate: amzDate), amzDate: amzDate)
        let signed = Self.canonicalHeaders(request.headers).map(\.name).joined(separator: ";")
        return "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope(amzDate: amzDate)), SignedHeaders=\(signed), Signature=\(signature)"
    }

    /// `name=value` pairs, each part URI-encoded, sorted by name then value, joined with `&`.
    package static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        var pairs: [(name: String, value: String)] = []
        for (name, value) in query {
            pairs.append((uriEncode(name, encodeSlash: true), uriEncode(value, encodeSlash: true)))
        }
        pairs.sort { (a: (name: String, value: String), b: (name: String, value: String)) -> Bool in
            a.name == b.name ? a.value < b.value : a.name < b.name
        }
        var parts: [String] = []
        for pair in pairs { parts.append(pair.name + "=" + pair.value) }
        return parts.joined(separator: "&")
    }

    /// Lower-case names, sorted; values trimmed with inner runs of spaces collapsed to one;
    /// repeated names joined with commas.
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        var merged: [String: [String]] = [:]
        for (name, value) in headers { merged[name.lowercased(), default: []].append(trimmed(value)) }
        return merged.keys.sorted().map { ($0, merged[$0]!.joined(separator: ",")) }
    }

    /// Trims leading and trailing whitespace and collapses inner runs of spaces to one.
    static func trimmed(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }

    /// URI-encodes per S3's rules: every byte except `A-Z a-z 0-9 - . _ ~` becomes `%XY` (upper
    /// hex); `/` too unless `encodeSlash` is false.
    package static func uriEncode(_ text: String, encodeSlash: Bool) -> String {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count)
        let digits = Array("0123456789ABCDEF".utf8)
        for b in text.utf8 {
            let unreserved = (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
                || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E
            if unreserved || (b == 0x2F && !encodeSlash) {
                out.append(b)
            } else {
                out.append(0x25); out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `/` followed by `path` with each segment URI-encoded (S3 does not normalise paths, so empty
    /// segments and dots are kept as they are).
    package static func encodePath(_ path: String) -> String {
        "/" + uriEncode(path, encodeSlash: false)
    }

    /// `YYYYMMDDTHHMMSSZ` for a time in milliseconds since 1970 (UTC).
    package static func amzDate(milliseconds: UInt64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hex SHA-256 of `bytes`.
    package static func payloadHash<B: DataProtocol>(_ bytes: B) -> String { hex(SHA256.hash(data: bytes)) }
}
