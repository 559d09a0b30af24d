// The shape every handler shares: read the body (bounded), run, answer Qdrant's JSON with the
// elapsed time; a QdrantError becomes Qdrant's error body with its status, anything else a 500
// (the server never crashes on a request).
import Foundation
import Hummingbird
import NIOCore
import Strata

/// Helpers for the handlers.
enum Respond {
    static let json: HTTPFields = [.contentType: "application/json"]

    /// A JSON response.
    static func bytes(_ body: [UInt8], status: HTTPResponse.Status = .ok, shards: ShardReport? = nil) -> Response {
        var headers = json
        if let shards, let name = HTTPFields.Element.Name("strata-shards") { headers[name] = shards.header }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// Runs `body` with the elapsed-time function; maps errors to Qdrant's error body.
    static func run(_ body: (_ elapsed: () -> Double) async throws(QdrantError) -> Response) async -> Response {
        let start = ContinuousClock.now
        let elapsed = { () -> Double in
            let (s, atto) = (ContinuousClock.now - start).components
            return Double(s) + Double(atto) / 1e18
        }
        do {
            return try await body(elapsed)
        } catch {
            return bytes(QdrantResponse.error(error, time: elapsed()), status: HTTPResponse.Status(code: error.status))
        }
    }

    /// The request body, at most `limit` bytes (413 beyond), parsed as JSON (400 when it is not).
    static func body(_ request: Request, limits: ServerLimits, limit: Int) async throws(QdrantError) -> JSONValue {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw QdrantError(status: 413, "Payload too large: the request body is over \(limit) bytes")
        }
        return try RequestBody.parse(Array(buffer: buffer), limits: limits)
    }

    /// The raw body bytes, at most `limit`.
    static func rawBody(_ request: Request, limit: Int) async throws(QdrantError) -> [UInt8] {
        do {
            return Array(buffer: try await request.body.collect(upTo: limit))
        } catch {
            throw QdrantError(status: 413, "Payload too large: the request body is over \(limit) bytes")
        }
    }

    /// A boolean query parameter (`wait`, `allow_partial`).
    static func flag(_ request: Request, _ name: String, default value: Bool) throws(QdrantError) -> Bool {
        try QueryParameters.bool(request.uri.queryParameters.get(name), name: name, default: value)
    }
}
