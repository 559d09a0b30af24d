// Requests from this node to another node's internal API (InternalRoutes.swift): a shard's part
// of a search, a write forwarded to a shard's owner. One HTTP connection pool per node process.
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StrataFormat

/// What a peer answered.
package struct PeerAnswer: Sendable {
    package var status: Int
    package var body: [UInt8]
}

/// The HTTP client for other nodes.
package final class PeerClient: Sendable {
    private let http: HTTPClient
    private let apiKey: String?
    /// Largest answer accepted (a shard's search results with vectors and payload).
    private let maximumAnswerBytes = 256 << 20

    package init(apiKey: String?) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(2), read: nil)
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        self.apiKey = apiKey
    }

    deinit { http.shutdown { _ in } }

    package func shutdown() async { try? await http.shutdown() }

    /// POSTs `body` to `path` on `node` and returns the answer (any status). Throws `.io` when the
    /// node cannot be reached or does not answer within `timeoutSeconds`: the request may or may
    /// not have been carried out.
    package func post(_ node: NodeInfo, _ path: String, body: [UInt8], timeoutSeconds: Double) async throws(StrataError) -> PeerAnswer {
        var request = HTTPClientRequest(url: node.url + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        if let apiKey { request.headers.add(name: "api-key", value: apiKey) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let http = self.http
        let limit = maximumAnswerBytes
        let timeout = TimeAmount.nanoseconds(Int64(timeoutSeconds * 1e9))
        do {
            let response = try await http.execute(request, timeout: timeout)
            let answer = try await response.body.collect(upTo: limit)
            return PeerAnswer(status: Int(response.status.code), body: Array(buffer: answer))
        } catch {
            throw StrataError(.io, "node \(node.id) at \(node.url) did not answer \(path): \(error)", path: node.url + path)
        }
    }
}
