// How to reach one S3-compatible bucket: endpoint, credentials, region and the transfer knobs
// (part size, parallelism, timeout, retries). Built by hand or from the AWS_* environment variables
// the AWS tools use, so that `strata` works with the same settings as `aws s3`.
import Foundation
import StrataFormat

/// The settings of an ``S3Client``.
public struct S3Configuration: Sendable, Equatable {
    /// `http` or `https`.
    public var scheme: String
    /// Host name or address of the endpoint (an IPv6 address without brackets).
    public var host: String
    /// Port of the endpoint.
    public var port: Int
    /// The bucket every key lives in.
    public var bucket: String
    /// Signing region (`AWS_REGION`); SeaweedFS and MinIO accept any.
    public var region: String
    /// Access key id (`AWS_ACCESS_KEY_ID`).
    public var accessKey: String
    /// Secret access key (`AWS_SECRET_ACCESS_KEY`). Never printed.
    public var secretKey: String
    /// `true`: `http://host/bucket/key` (SeaweedFS, MinIO); `false`: `http://bucket.host/key`.
    public var pathStyle: Bool
    /// Bytes per multipart part, and per ranged GET of a parallel download (S3: at least 5 MiB
    /// except the last part).
    public var partSize: Int
    /// Parts (or ranges) in flight at once for one upload or download.
    public var parallelParts: Int
    /// Seconds a request may take to get its answer, and the longest silence while a body streams.
    public var requestTimeoutSeconds: Double
    /// Retries after the first attempt on 5xx, 429 and connection errors.
    public var retries: Int
    /// The first backoff, in seconds; doubled at each retry, with jitter.
    public var initialBackoffSeconds: Double

    /// S3's smallest part but the last.
    public static let minimumPartSize = 5 << 20
    /// S3's largest part.
    public static let maximumPartSize = 5 << 30

    /// Creates a configuration; throws `.invalidArgument` naming the bad setting.
    public init(endpoint: String, bucket: String, region: String = "us-east-1", accessKey: String, secretKey: String,
                pathStyle: Bool = true, partSize: Int = 8 << 20, parallelParts: Int = 4,
                requestTimeoutSeconds: Double = 30, retries: Int = 4, initialBackoffSeconds: Double = 0.1) throws(StrataError) {
        let parsed = try S3Endpoint.parse(endpoint)
        guard S3Address.isValidBucketName(bucket) else {
            throw StrataError(.invalidArgument, "bucket name '\(bucket)' breaks S3's rules (3-63 characters: lower-case letters, digits, '.' and '-', starting and ending with a letter or digit)")
        }
        guard !region.isEmpty, region.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw StrataError(.invalidArgument, "region '\(region)' is empty or has spaces or control characters")
        }
        guard !accessKey.isEmpty, !secretKey.isEmpty else {
            throw StrataError(.invalidArgument, "S3 credentials are empty: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        guard (Self.minimumPartSize...Self.maximumPartSize).contains(partSize) else {
            throw StrataError(.invalidArgument, "part size \(partSize) is outside S3's range 5 MiB ... 5 GiB")
        }
        guard (1...64).contains(parallelParts) else {
            throw StrataError(.invalidArgument, "parallel parts \(parallelParts) is outside 1 ... 64")
        }
        guard requestTimeoutSeconds.isFinite, requestTimeoutSeconds > 0, requestTimeoutSeconds <= 3600 else {
            throw StrataError(.invalidArgument, "request timeout \(requestTimeoutSeconds) s is outside (0, 3600]")
        }
        guard (0...20).contains(retries) else {
            throw StrataError(.invalidArgument, "retries \(retries) is outside 0 ... 20")
        }
        guard initialBackoffSeconds.isFinite, initialBackoffSeconds >= 0, initialBackoffSeconds <= 60 else {
            throw StrataError(.invalidArgument, "initial backoff \(initialBackoffSeconds) s is outside [0, 60]")
        }
        self.scheme = parsed.scheme
        self.host = parsed.host
        self.port = parsed.port
        self.bucket = bucket
        self.region = region
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.pathStyle = pathStyle
        self.partSize = partSize
        self.parallelParts = parallelParts
        self.requestTimeoutSeconds = requestTimeoutSeconds
        self.retries = retries
        self.initialBackoffSeconds = initialBackoffSeconds
    }

    /// Reads the credentials and region the AWS tools read: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` (default us-east-1), and the endpoint from
    /// `STRATA_S3_ENDPOINT` when `endpoint` is nil. Throws `.invalidArgument` naming what is missing.
    public static func fromEnvironment(endpoint: String?, bucket: String,
                                       environment: [String: String] = ProcessInfo.processInfo.environment) throws(StrataError) -> S3Configuration {
        func value(_ name: String) -> String? {
            guard let v = environment[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        guard let endpoint = endpoint ?? value("STRATA_S3_ENDPOINT") else {
            throw StrataError(.invalidArgument, "no S3 endpoint: pass --s3-endpoint or set STRATA_S3_ENDPOINT (e.g. http://127.0.0.1:8333)")
        }
        let missing = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"].filter { value($0) == nil }
        guard missing.isEmpty else {
            throw StrataError(.invalidArgument, "S3 credentials missing: set \(missing.joined(separator: " and "))")
        }
        return try S3Configuration(endpoint: endpoint, bucket: bucket, region: value("AWS_REGION") ?? "us-east-1",
                                   accessKey: value("AWS_ACCESS_KEY_ID")!, secretKey: value("AWS_SECRET_ACCESS_KEY")!)
    }

    /// `host` or `host:port` as the Host header carries it (the port only when not the scheme's default).
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        let defaultPort = scheme == "https" ? 443 : 80
        return port == defaultPort ? name : "\(name):\(port)"
    }

    /// The authority requests go to: the bucket's virtual host, or the endpoint with path-style.
    var requestHost: String { pathStyle ? hostHeader : "\(bucket).\(hostHeader)" }

    /// The endpoint as given, for messages.
    public var endpoint: String { "\(scheme)://\(hostHeader)" }
}

extension S3Configuration: CustomStringConvertible {
    /// The endpoint, bucket, region and access key; never the secret.
    public var description: String {
        "S3Configuration(\(endpoint), bucket \(bucket), region \(region), access key \(accessKey))"
    }
}

/// An endpoint URL `http(s)://host[:port][/]`, checked.
enum S3Endpoint {
    static func parse(_ text: String) throws(StrataError) -> (scheme: String, host: String, port: Int) {
        func bad(_ why: String) -> StrataError {
            StrataError(.invalidArgument, "S3 endpoint '\(text.prefix(200))' \(why); expected http(s)://host:port")
        }
        guard text.utf8.count <= 2048, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw bad("is too long or has spaces, control or non-ASCII characters")
        }
        let scheme: String
        var rest: Substring
        if text.lowercased().hasPrefix("http://") { scheme = "http"; rest = text.dropFirst(7) }
        else if text.lowercased().hasPrefix("https://") { scheme = "https"; rest = text.dropFirst(8) }
        else { throw bad("does not start with http:// or https://") }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains(where: { "/?#@\\".contains($0) }) else {
            throw bad("has a path, query, fragment or user name")
        }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad("has an unclosed '['") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw bad("has text after ']'") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw bad("has no host") }
        var port = scheme == "https" ? 443 : 80
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else { throw bad("has a bad port") }
            port = p
        }
        return (scheme, String(host).lowercased(), port)
    }
}
