// The metadata store on etcd 3.4, through its v3 JSON gateway (grpc-gateway: `POST /v3/...` with
// JSON bodies), over AsyncHTTPClient: no gRPC build needed. This file holds the client's life cycle
// and the one path every unary request takes: encode, send with a deadline that covers the whole
// exchange, retry reads on connection errors, and turn an error answer into a `StrataError` naming
// the key. The operations are in EtcdClient+KV.swift, EtcdClient+Lease.swift and
// EtcdClient+Watch.swift.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StrataFormat

/// A ``MetadataStore`` on one etcd 3.4 endpoint (`http://host:port`), through its v3 JSON gateway.
///
/// Each client owns one `HTTPClient` (a connection pool) that every request shares. Call
/// ``shutdown()`` once when done, after the last request and watch: it closes the connections. A
/// client released without it shuts its pool down in the background.
///
/// Every request has a deadline (``timeout``, 5 s by default) that covers connecting, sending and
/// reading the whole answer; a watch's deadline covers only the start of its stream, which then
/// stays open until it is cancelled. Reads (range, keepalive) are retried twice on connection
/// errors within that deadline; writes are not (see `send(_:_:subject:retry:)`).
public final class EtcdClient: MetadataStore {
    /// `http://host:port`, without a trailing slash.
    public let endpoint: String
    /// The deadline of each request.
    public let timeout: Duration
    /// Largest answer read (a range over many keys, one watch message); larger is `.corrupt`.
    public let maximumAnswerBytes: Int
    let http: HTTPClient

    /// Creates a client; no connection is made until the first request. Throws `.invalidArgument`
    /// for an endpoint that is not `http://` or `https://` with a host, or a timeout that is not
    /// positive.
    public init(endpoint: String, timeout: Duration = .seconds(5),
                maximumAnswerBytes: Int = 64 << 20) throws(StrataError) {
        var trimmed = endpoint
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty,
              url.path.isEmpty, url.query == nil else {
            throw StrataError(.invalidArgument, "an etcd endpoint is http://HOST:PORT, not '\(endpoint)'", path: endpoint)
        }
        guard timeout > .zero else {
            throw StrataError(.invalidArgument, "the etcd timeout must be positive, not \(timeout)", path: endpoint)
        }
        guard maximumAnswerBytes > 0 else {
            throw StrataError(.invalidArgument, "the largest etcd answer must be positive", path: endpoint)
        }
        self.endpoint = trimmed
        self.timeout = timeout
        self.maximumAnswerBytes = maximumAnswerBytes
        var configuration = HTTPClient.Configuration()
        // No read timeout: a watch stream is legitimately silent for long stretches. Unary requests
        // are bounded by their own deadline instead (see `send`).
        configuration.timeout = .init(connect: Self.amount(timeout), read: nil)
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        // A refused connection fails at once; `send` decides whether to try again.
        configuration.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    deinit {
        // Safety net for a client dropped without `shutdown()` (a second shutdown is a no-op that
        // reports "already shut down" to the ignored callback).
        http.shutdown { _ in }
    }

    /// Closes the connection pool. Call once, when no request or watch is in flight; the client
    /// cannot be used afterwards.
    public func shutdown() async {
        try? await http.shutdown()
    }

    static func amount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// "etcd at http://... unreachable: reason".
    func unreachable(_ reason: String, subject: String) -> StrataError {
        StrataError(.io, "\(subject): etcd at \(endpoint) unreachable: \(reason)", path: endpoint)
    }
}

// MARK: - Sending one request

/// How one attempt failed.
private enum EtcdAttemptFailure: Error {
    /// The connection failed or the deadline passed before an answer: the request may not have
    /// reached etcd, or may have and its answer was lost.
    case transport(String)
    /// etcd answered with an error status (and body).
    case status(UInt, [UInt8])
    /// The answer was larger than the client accepts.
    case tooLarge
}

extension EtcdClient {
    /// Posts `body` to `path` and returns the body of a 2xx answer.
    ///
    /// `retry` is for reads only: a range or a keepalive may be sent again after a connection error.
    /// A put, delete or txn is sent once, because a connection error does not say whether etcd
    /// applied it: a txn whose answer was lost may have committed, and running it again would run
    /// its comparisons against its own result (a create-if-absent would report failure after
    /// succeeding, a put would overwrite a newer value). The caller re-reads and decides.
    ///
    /// Errors: `.io` when etcd is unreachable, the deadline passes, or it answers an error (the
    /// message is etcd's); `.notFound` when etcd says the lease is unknown or expired; `.corrupt`
    /// when the answer is over ``maximumAnswerBytes``. `subject` (the key, or "lease N") names what
    /// the request was about, in `path` for an error answer.
    func send(_ path: String, _ body: EtcdJSON, subject: String, retry: Bool) async throws(StrataError) -> [UInt8] {
        let bytes = body.encoded()
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var attempt = 0
        while true {
            attempt += 1
            let failure: EtcdAttemptFailure
            do {
                return try await exchange(path, bytes, until: deadline)
            } catch {
                failure = error
            }
            let error: StrataError
            switch failure {
            case .status(let status, let answer):
                error = errorAnswer(status, answer, subject: subject)
                // 503: etcd has no leader for now (an election); a read may try again.
                guard retry, status == 503, attempt <= 2 else { throw error }
            case .tooLarge:
                throw StrataError(.corrupt, "etcd's answer to \(path) is over \(maximumAnswerBytes) bytes", path: subject)
            case .transport(let reason):
                error = unreachable(reason, subject: subject)
                guard retry, attempt <= 2 else { throw error }
            }
            // Back off a little (50 ms, then 200 ms) unless the deadline would pass first.
            let pause = Duration.milliseconds(attempt == 1 ? 50 : 200)
            guard clock.now + pause < deadline, !Task.isCancelled else { throw error }
            try? await Task.sleep(for: pause)
        }
    }

    /// One attempt, bounded by `deadline` from connecting to the last byte of the answer.
    private func exchange(_ path: String, _ body: [UInt8], until deadline: ContinuousClock.Instant) async throws(EtcdAttemptFailure) -> [UInt8] {
        let request = postRequest(path, body)
        let http = self.http
        let limit = maximumAnswerBytes
        let remaining = ContinuousClock().now.duration(to: deadline)
        guard remaining > .zero else { throw .transport("no answer within \(timeout)") }
        let timeout = self.timeout
        // The HTTP client's own deadline ends when the answer's head arrives; the race with a timer
        // bounds reading the body too.
        let outcome: Result<(UInt, [UInt8]), EtcdAttemptFailure>? = await withTaskGroup(of: Result<(UInt, [UInt8]), EtcdAttemptFailure>?.self) { group in
            group.addTask {
                do {
                    let response = try await http.execute(request, timeout: Self.amount(remaining))
                    let answer = try await response.body.collect(upTo: limit)
                    return .success((response.status.code, Array(buffer: answer)))
                } catch is NIOTooManyBytesError {
                    return .failure(.tooLarge)
                } catch {
                    return .failure(.transport(Self.describe(error, timeout: timeout)))
                }
            }
            group.addTask {
                try? await Task.sleep(until: deadline, clock: ContinuousClock())
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        switch outcome {
        case nil:
            throw .transport("no answer within \(timeout)")
        case .failure(let failure):
            throw failure
        case .success(let (status, answer)):
            guard (200..<300).contains(status) else { throw .status(status, answer) }
            return answer
        }
    }

    /// `POST endpoint+path` with a JSON body.
    func postRequest(_ path: String, _ body: [UInt8]) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        return request
    }

    /// The `StrataError` for an error answer: etcd's message, `.notFound` for an unknown lease.
    private func errorAnswer(_ status: UInt, _ answer: [UInt8], subject: String) -> StrataError {
        let body = try? decodeEtcd(EtcdErrorBody.self, from: answer)
        let message = body?.message ?? "HTTP \(status), \(answer.count) bytes that are not an etcd error"
        if body?.isNotFound == true {
            return StrataError(.notFound, "etcd at \(endpoint): \(message)", path: subject)
        }
        let code = body?.code.map { ", code \($0)" } ?? ""
        return StrataError(.io, "etcd at \(endpoint) refused the request (HTTP \(status)\(code)): \(message)", path: subject)
    }

    /// One line for a transport error.
    static func describe(_ error: any Error, timeout: Duration) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "no answer within \(timeout)"
            case .remoteConnectionClosed: return "the connection closed before the answer"
            default: return "\(error)"
            }
        }
        if error is CancellationError { return "cancelled" }
        return "\(error)"
    }

    /// Decodes an answer; a failure is `.corrupt`, naming the request.
    func decode<T: Decodable>(_ type: T.Type, _ answer: [UInt8], request: String, subject: String) throws(StrataError) -> T {
        do {
            return try decodeEtcd(T.self, from: answer)
        } catch {
            throw corrupt("\(request): \(error.message)", subject: subject)
        }
    }

    /// A `.corrupt` error for an answer that is not what the protocol promises.
    func corrupt(_ message: String, subject: String) -> StrataError {
        StrataError(.corrupt, "etcd at \(endpoint) answered \(message)", path: subject)
    }

    /// The revision in an answer's header; `.corrupt` when missing.
    func revision(_ header: EtcdHeader?, request: String, subject: String) throws(StrataError) -> Int64 {
        guard let revision = header?.revision?.value, revision > 0 else {
            throw corrupt("\(request) without a revision", subject: subject)
        }
        return revision
    }
}
