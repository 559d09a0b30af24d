// The object store on an S3-compatible service (SeaweedFS, MinIO, R2, AWS S3), over
// AsyncHTTPClient with SigV4 signing. This file holds the client's life cycle and the one path every
// request takes: sign, send with a deadline, retry with backoff on 5xx / 429 / connection errors,
// and turn a refusal into a `StrataError` naming the object, the HTTP status and S3's error code.
// The operations are in S3Client+Objects.swift, S3Client+Multipart.swift and S3Client+Download.swift.
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import StrataFormat

/// An ``ObjectStore`` on one bucket of an S3-compatible service.
///
/// Each client owns one `HTTPClient` (a connection pool). Call ``shutdown()`` once when done: it
/// closes the connections; a client that is released without it leaks them, and debug builds of
/// AsyncHTTPClient stop the process with a precondition failure.
public final class S3Client: ObjectStore {
    /// The settings it was made with.
    public let configuration: S3Configuration
    let http: HTTPClient
    let signer: SigV4Signer

    /// Largest body ``get(_:range:)`` reads into memory (larger objects go through
    /// ``download(_:toFile:)``).
    public static let maximumInMemoryBytes: UInt64 = 1 << 30
    /// Largest error or XML answer read.
    static let maximumAnswerBytes = S3XML.maximumBytes
    /// A body must keep streaming at least this fast (bytes per second) beyond the request timeout:
    /// bounds the time a trickling server can hold a request.
    static let minimumBytesPerSecond: Double = 1_048_576

    /// Creates a client; no connection is made until the first request.
    public init(configuration: S3Configuration) {
        self.configuration = configuration
        self.signer = SigV4Signer(accessKey: configuration.accessKey, secretKey: configuration.secretKey,
                                  region: configuration.region)
        var http = HTTPClient.Configuration()
        let timeout = Self.amount(configuration.requestTimeoutSeconds)
        http.timeout = .init(connect: Self.amount(min(configuration.requestTimeoutSeconds, 10)), read: timeout)
        http.redirectConfiguration = .disallow
        http.decompression = .disabled
        http.connectionPool = .init(idleTimeout: .seconds(60),
                                    concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, 2 * configuration.parallelParts))
        // Fail a refused connection at once: the client's own retries (with backoff) decide how long
        // to keep trying, instead of the pool retrying until the connect timeout.
        http.connectionPool.retryConnectionEstablishment = false
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: http)
    }

    /// Closes the connection pool. Call once, when no request is in flight; the client cannot be
    /// used afterwards.
    public func shutdown() async throws(StrataError) {
        do {
            try await http.shutdown()
        } catch {
            throw StrataError(.io, "cannot shut the S3 client down: \(Self.describe(error))", path: configuration.endpoint)
        }
    }

    /// `s3://bucket/key`.
    public func address(of key: String) -> String { "s3://\(configuration.bucket)/\(key)" }

    var bucketAddress: String { "s3://\(configuration.bucket)" }

    static func amount(_ seconds: Double) -> TimeAmount { .nanoseconds(Int64(seconds * 1e9)) }

    /// The time allowed for `bytes` to cross the wire, on top of the request timeout.
    func transferSeconds(_ bytes: UInt64) -> Double {
        configuration.requestTimeoutSeconds + Double(bytes) / Self.minimumBytesPerSecond
    }
}

// MARK: - Sending, retrying, mapping errors

/// How one attempt ended, when it did not return a value.
enum S3AttemptFailure: Error {
    /// Worth another attempt (a dropped connection mid-body); `error` is reported if none is left.
    case retryable(StrataError)
}

extension S3Client {
    /// Sends `request` and hands a 2xx response (or one whose status is in `passThrough`) to
    /// `handle` with the attempt number (0 for the first). Retries 5xx, 429, connection errors and
    /// `S3AttemptFailure.retryable` from `handle`, up to `configuration.retries` times with backoff;
    /// a `StrataError` thrown by `handle` ends the call.
    func send<T>(_ request: S3Request, _ handle: (HTTPClientResponse, Int) async throws -> T) async throws(StrataError) -> T {
        let what = request.key.map { address(of: $0) } ?? bucketAddress
        let payloadHash = request.payloadHash
        var attempt = 0
        while true {
            let last = attempt >= configuration.retries
            let outgoing = request.signed(configuration, signer: signer, payloadHash: payloadHash,
                                          milliseconds: WallClock.milliseconds())
            let failure: StrataError
            do {
                let response = try await http.execute(outgoing, timeout: Self.amount(transferSeconds(UInt64(request.bodyCount))))
                let status = response.status.code
                if (200..<300).contains(status) || request.passThrough.contains(status) {
                    do {
                        return try await handle(response, attempt)
                    } catch let error as StrataError {
                        throw error
                    } catch S3AttemptFailure.retryable(let error) {
                        failure = error
                    } catch {
                        if !Self.isRetryable(error) || last { throw connectionError(request, what, error, attempts: attempt + 1) }
                        failure = connectionError(request, what, error, attempts: attempt + 1)
                    }
                } else {
                    let body = await readErrorBody(response)
                    let error = statusError(request, what, status: status, body: body, attempt: attempt)
                    guard Self.isRetryable(status: status), !last else { throw error }
                    failure = error
                }
            } catch let error as StrataError {
                throw error
            } catch {
                guard Self.isRetryable(error), !last else { throw connectionError(request, what, error, attempts: attempt + 1) }
                failure = connectionError(request, what, error, attempts: attempt + 1)
            }
            if last { throw failure }
            try await backoff(attempt: attempt, what: what)
            attempt += 1
        }
    }

    /// Sleeps before retry `attempt + 1`: the initial backoff doubled per attempt, times a random
    /// factor in [0.5, 1.5) so that clients that failed together do not retry together; at most 20 s.
    func backoff(attempt: Int, what: String) async throws(StrataError) {
        let base = configuration.initialBackoffSeconds * Double(1 << min(attempt, 20))
        let seconds = min(20, base * Double.random(in: 0.5..<1.5))
        do {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
        } catch {
            throw StrataError(.io, "cancelled while waiting to retry", path: what)
        }
    }

    /// 5xx (500 InternalError, 502, 503 SlowDown, 504) and 429 are worth retrying; other 4xx are not.
    static func isRetryable(status: UInt) -> Bool { status >= 500 || status == 429 }

    /// Connection errors, timeouts and garbled answers are worth retrying; misuse and cancellation
    /// are not.
    static func isRetryable(_ error: any Error) -> Bool {
        if error is CancellationError { return false }
        if let error = error as? HTTPClientError {
            let final: [HTTPClientError] = [.invalidURL, .emptyHost, .missingSocketPath, .alreadyShutdown, .emptyScheme,
                                            .cancelled, .bodyLengthMismatch, .writeAfterRequestSent,
                                            .traceRequestWithBody, .invalidRedirectConfiguration]
            return !final.contains(error)
        }
        return !Task.isCancelled
    }

    /// The first bytes of an error answer: at most 64 KiB, read for at most the request timeout
    /// (the rest is dropped with the connection).
    func readErrorBody(_ response: HTTPClientResponse) async -> [UInt8] {
        var bytes: [UInt8] = []
        let deadline = monotonicSeconds() + configuration.requestTimeoutSeconds
        do {
            for try await chunk in response.body {
                bytes.append(contentsOf: chunk.readableBytesView.prefix((64 << 10) - bytes.count))
                if bytes.count >= 64 << 10 || monotonicSeconds() > deadline { break }
            }
        } catch {}
        return bytes
    }

    /// The error for a refused request: the status, S3's code and message, and what to do.
    func statusError(_ request: S3Request, _ what: String, status: UInt, body: [UInt8], attempt: Int) -> StrataError {
        let s3 = S3Responses.error(body)
        var text = "S3 \(request.action) answered HTTP \(status)"
        if let s3 { text += " \(s3.code)" + (s3.message.isEmpty ? "" : ": \(s3.message)") }
        switch status {
        case 404:
            return StrataError(.notFound, text, path: what)
        case 412:
            if attempt > 0 {
                text += " (on a retry: the earlier attempt may have landed; read the object to tell)"
            }
            return StrataError(.alreadyExists, text + " (the condition of the write no longer holds)", path: what)
        case 403:
            switch s3?.code {
            case "SignatureDoesNotMatch", "InvalidAccessKeyId":
                text += "; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            case "RequestTimeTooSkewed":
                text += "; this machine's clock is off"
            default:
                text += "; the credentials were refused or lack permission: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            }
            return StrataError(.io, text, path: what)
        case 416:
            return StrataError(.corrupt, text + " (the range is beyond the object's end)", path: what)
        default:
            if Self.isRetryable(status: status) { text += " after \(attempt + 1) attempt\(attempt == 0 ? "" : "s")" }
            return StrataError(.io, text, path: what)
        }
    }

    /// The error for a request that got no usable answer.
    func connectionError(_ request: S3Request, _ what: String, _ error: any Error, attempts: Int) -> StrataError {
        StrataError(.io, "S3 \(request.action) to \(configuration.endpoint) failed after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(Self.describe(error))",
                    path: what)
    }

    /// A short description of a transport error.
    static func describe(_ error: any Error) -> String {
        if error is CancellationError { return "cancelled" }
        let text = String(describing: error)
        if text.contains("Connection refused") { return "connection refused (is the store running?)" }
        return String(text.prefix(300))
    }
}
