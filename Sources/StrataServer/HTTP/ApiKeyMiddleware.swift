// `--api-key` (and `--read-only-api-key`), as Qdrant checks them: every request carries the key in
// the `api-key` header (or `Authorization: Bearer <key>`), else 401; the read-only key opens the
// reads only (403 on anything that changes data). /healthz stays open, for load balancers.
import Hummingbird
import NIOCore

/// Checks API keys before any handler runs.
struct ApiKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String
    let readOnlyKey: String?

    private static var apiKeyHeader: HTTPFields.Element.Name { HTTPFields.Element.Name("api-key")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/healthz" { return try await next(request, context) }
        var given = request.headers[Self.apiKeyHeader]
        if given == nil, let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") { given = String(auth.dropFirst(7)) }
        guard let given else {
            return Self.refuse(401, "Must provide an API key or an Authorization bearer token")
        }
        if Self.equalInConstantTime(given, key) { return try await next(request, context) }
        if let readOnlyKey, Self.equalInConstantTime(given, readOnlyKey) {
            guard Self.isRead(request) else { return Self.refuse(403, "Forbidden: the read-only API key cannot change data") }
            return try await next(request, context)
        }
        return Self.refuse(401, "Invalid API key or JWT")
    }

    /// Requests that change nothing: GETs and the read endpoints (retrieve, scroll, count, search,
    /// query). The internal API always needs the full key.
    static func isRead(_ request: Request) -> Bool {
        if request.method == .get { return true }
        guard request.method == .post else { return false }
        let path = request.uri.path
        guard path.hasPrefix("/collections/") else { return false }
        return ["/points", "/points/scroll", "/points/count", "/points/search", "/points/search/batch",
                "/points/query", "/points/query/batch"].contains { path.hasSuffix($0) }
    }

    static func refuse(_ status: Int, _ message: String) -> Response {
        Respond.bytes(QdrantResponse.error(QdrantError(status: status, message), time: 0), status: HTTPResponse.Status(code: status))
    }

    /// Compares without an early exit on the first differing byte.
    static func equalInConstantTime(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return diff == 0
    }
}
