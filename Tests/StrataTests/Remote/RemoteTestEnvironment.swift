// The real SeaweedFS (S3) and etcd that the object-store tests run against, read from the
// environment that tools/services.sh writes and tools/test.sh exports (every test run of CI has
// it). Deliberately plain values: no dependency on the S3 or etcd client types.
import Foundation
import XCTest

/// Endpoints and credentials of the test services.
struct RemoteTestEnvironment: Sendable, Equatable {
    /// The S3 endpoint, `http://127.0.0.1:PORT` (no trailing slash).
    var s3Endpoint: String
    /// The bucket the tests share (each test works under its own ``uniquePrefix(_:)``).
    var bucket: String
    /// The access key id (`AWS_ACCESS_KEY_ID`).
    var accessKey: String
    /// The secret access key (`AWS_SECRET_ACCESS_KEY`).
    var secretKey: String
    /// The signing region (`AWS_REGION`, default us-east-1).
    var region: String
    /// etcd's client endpoint, `http://127.0.0.1:PORT` (no trailing slash).
    var etcdEndpoint: String

    /// What a run without the services is told.
    static let skipMessage = "SeaweedFS/etcd not configured: run tools/test.sh, which starts them"

    /// A configuration that cannot work (some variables set, others missing or malformed), or no
    /// services in CI, where tools/test.sh always starts them: a failure, never a skip.
    struct Misconfigured: Error, CustomStringConvertible {
        var description: String
    }

    /// The services of this run. Throws `XCTSkip` when none are configured (a plain `swift
    /// test`), ``Misconfigured`` when the configuration is partial or malformed, or when none is
    /// configured under CI (`CI=true`): there a skip would hide broken wiring.
    static func current(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> RemoteTestEnvironment {
        func value(_ name: String) -> String? {
            guard let v = environment[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        let required = ["STRATA_TEST_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "STRATA_TEST_ETCD"]
        let missing = required.filter { value($0) == nil }
        if missing.count == required.count {
            if value("CI") == "true" {
                throw Misconfigured(description: "CI=true but none of \(required.joined(separator: ", ")) is set: \(skipMessage)")
            }
            throw XCTSkip(skipMessage)
        }
        guard missing.isEmpty else {
            throw Misconfigured(description: "test services half configured: \(missing.joined(separator: ", ")) missing (\(skipMessage))")
        }
        return RemoteTestEnvironment(
            s3Endpoint: try endpoint("STRATA_TEST_S3_ENDPOINT", value("STRATA_TEST_S3_ENDPOINT")!),
            bucket: value("STRATA_TEST_S3_BUCKET") ?? "strata",
            accessKey: value("AWS_ACCESS_KEY_ID")!,
            secretKey: value("AWS_SECRET_ACCESS_KEY")!,
            region: value("AWS_REGION") ?? "us-east-1",
            etcdEndpoint: try endpoint("STRATA_TEST_ETCD", value("STRATA_TEST_ETCD")!))
    }

    /// `text` as an `http://host:port` endpoint without a trailing slash, or ``Misconfigured``.
    private static func endpoint(_ name: String, _ text: String) throws -> String {
        let trimmed = text.hasSuffix("/") ? String(text.dropLast()) : text
        guard let url = URL(string: trimmed), url.scheme == "http" || url.scheme == "https",
              url.host != nil, url.port != nil, url.path.isEmpty || url.path == "/" else {
            throw Misconfigured(description: "\(name)=\(text) is not an endpoint like http://127.0.0.1:PORT")
        }
        return trimmed
    }

    /// A key prefix (and etcd key component) no other test or run uses: `name` reduced to
    /// letters, digits, `-` and `_`, then 16 random hex digits, e.g. `testPut-3f9c0a17d2e4b861`.
    /// Objects and keys live under it, so tests sharing the bucket and etcd never collide.
    func uniquePrefix(_ name: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        let base = String(name.map { allowed.contains($0) ? $0 : "-" }.prefix(64))
            .trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        let hex = String(UInt64.random(in: .min ... .max), radix: 16)
        let random = String(repeating: "0", count: 16 - hex.count) + hex
        return base.isEmpty ? random : "\(base)-\(random)"
    }
}
