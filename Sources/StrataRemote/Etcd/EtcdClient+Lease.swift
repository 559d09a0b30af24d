// Leases on etcd: grant, keepalive, revoke (`/v3/lease/grant`, `/v3/lease/keepalive`,
// `/v3/lease/revoke`). The gateway's keepalive is a streaming call; one request message gets one
// `{"result": ...}` message back, with no TTL (or 0) when the lease is gone.
import StrataFormat

extension EtcdClient {
    /// Grants a lease of `ttlSeconds` (etcd may raise a very short TTL to its minimum); returns its
    /// id. `.invalidArgument` for a TTL that is not positive.
    public func grantLease(ttlSeconds: Int) async throws(StrataError) -> Int64 {
        guard ttlSeconds > 0 else {
            throw StrataError(.invalidArgument, "a lease TTL must be positive, not \(ttlSeconds)", path: endpoint)
        }
        let subject = "lease grant"
        // Not retried: a grant whose answer was lost leaves a lease nobody holds, which expires.
        let answer = try await send("/v3/lease/grant", .object(["TTL": .int(Int64(ttlSeconds))]), subject: subject, retry: false)
        let grant = try decode(EtcdLeaseGrantResponse.self, answer, request: "lease grant", subject: subject)
        if let error = grant.error, !error.isEmpty {
            throw StrataError(.io, "etcd at \(endpoint) refused the lease: \(error)", path: subject)
        }
        guard let id = grant.id?.value, id != 0 else { throw corrupt("a lease grant without a lease id", subject: subject) }
        guard let ttl = grant.ttl?.value, ttl > 0 else { throw corrupt("a lease grant without a TTL", subject: subject) }
        return id
    }

    /// Refreshes a lease; returns its remaining TTL in seconds. `.notFound` when it expired (or
    /// never existed). Retried on connection errors: a refresh sent twice is harmless.
    public func keepAlive(lease: Int64) async throws(StrataError) -> Int {
        let subject = "lease \(lease)"
        let answer = try await send("/v3/lease/keepalive", .object(["ID": .int(lease)]), subject: subject, retry: true)
        var splitter = JSONObjectSplitter(maximumObjectBytes: maximumAnswerBytes)
        let messages: [[UInt8]]
        do {
            messages = try splitter.append(answer)
        } catch {
            throw corrupt("lease keepalive with \(error.message)", subject: subject)
        }
        guard let first = messages.first else { throw corrupt("lease keepalive without a message", subject: subject) }
        let message = try decode(EtcdStreamMessage<EtcdKeepAliveResponse>.self, first, request: "lease keepalive", subject: subject)
        if let error = message.error {
            let text = error.message ?? "an error without a message"
            if error.isNotFound { throw StrataError(.notFound, "lease \(lease) expired: \(text)", path: subject) }
            throw StrataError(.io, "etcd at \(endpoint) refused the keepalive: \(text)", path: subject)
        }
        guard let result = message.result else { throw corrupt("lease keepalive without a result", subject: subject) }
        // etcd 3.4 answers an expired or unknown lease with a result whose TTL is absent or 0.
        guard let ttl = result.ttl?.value, ttl > 0 else {
            throw StrataError(.notFound, "lease \(lease) expired (or never existed)", path: subject)
        }
        guard ttl <= Int64(Int32.max) else { throw corrupt("lease keepalive with a TTL of \(ttl) s", subject: subject) }
        return Int(ttl)
    }

    /// Revokes a lease (its keys are deleted). `.notFound` when it already expired.
    public func revoke(lease: Int64) async throws(StrataError) {
        let subject = "lease \(lease)"
        let answer = try await send("/v3/lease/revoke", .object(["ID": .int(lease)]), subject: subject, retry: false)
        _ = try decode(EtcdHeaderOnlyResponse.self, answer, request: "lease revoke", subject: subject)
    }
}
