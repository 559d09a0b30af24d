// A loopback HTTP/1.1 server that plays a scripted etcd gateway, to put the etcd client in front of
// hostile answers: wrong JSON types, huge numbers, bad base64, error bodies, streams cut mid-message,
// silence. One thread per connection; every answer closes its connection.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class ScriptedEtcdServer: @unchecked Sendable {  // the mutable state is guarded by `lock`
    /// What the server does with one request.
    enum Reply: Sendable {
        /// Sends these bytes, then closes.
        case raw([UInt8])
        /// Sends each part, pausing `pause` seconds after each, stays silent for `linger` seconds
        /// (a stream that stays open), sends `last` and closes.
        case parts([[UInt8]], pause: Double, linger: Double, last: [UInt8])
        /// Sends nothing for this long, then closes.
        case silence(seconds: Double)
    }

    /// The endpoint, `http://127.0.0.1:PORT`.
    let endpoint: String
    private let listener: Int32
    private let lock = NSLock()
    private var paths: [String] = []
    private let handler: @Sendable (_ path: String) -> Reply

    /// Request paths received so far.
    var requests: [String] { lock.withLock { paths } }

    init(_ handler: @escaping @Sendable (_ path: String) -> Reply) throws {
        self.handler = handler
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { throw NSError(domain: "ScriptedEtcdServer", code: Int(errno)) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        endpoint = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        Thread { [self] in acceptLoop() }.start()
    }

    /// Stops accepting (connections in progress finish on their own).
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            Thread { [self] in serve(connection) }.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var headEnd: Int?
        while headEnd == nil {
            let n = recv(connection, &buffer, buffer.count, 0)
            guard n > 0 else { return }
            received += buffer[0..<n]
            headEnd = Self.find([13, 10, 13, 10], in: received)
        }
        let head = String(decoding: received[0..<headEnd!], as: UTF8.self)
        let bodyLength = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        var bodyReceived = received.count - headEnd! - 4
        while bodyReceived < bodyLength {
            let n = recv(connection, &buffer, buffer.count, 0)
            guard n > 0 else { return }
            bodyReceived += n
        }
        let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? ""
        lock.withLock { paths.append(path) }
        switch handler(path) {
        case .raw(let bytes):
            _ = Self.send(bytes, to: connection)
        case .parts(let parts, let pause, let linger, let last):
            for part in parts {
                guard Self.send(part, to: connection) else { return }
                Thread.sleep(forTimeInterval: pause)
            }
            Thread.sleep(forTimeInterval: linger)
            _ = Self.send(last, to: connection)
        case .silence(let seconds):
            Thread.sleep(forTimeInterval: seconds)
        }
    }

    private static func send(_ bytes: [UInt8], to connection: Int32) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            sent += n
        }
        return true
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }

    /// Base64 of a string, for scripted keys and values.
    static func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
}

extension ScriptedEtcdServer.Reply {
    /// A JSON answer with `Connection: close`.
    static func json(_ status: Int, _ body: String) -> ScriptedEtcdServer.Reply {
        let bytes = Array(body.utf8)
        let head = "HTTP/1.1 \(status) Status\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(bytes.count)\r\n\r\n"
        return .raw(Array(head.utf8) + bytes)
    }

    /// A streaming answer: a chunked head, then each piece as one HTTP chunk (pieces may cut JSON
    /// messages anywhere), then silence for `linger` seconds, then the last chunk (a clean end: a
    /// connection closed without it may lose the chunks the client has not read yet).
    static func stream(_ pieces: [String], pause: Double = 0.02, linger: Double = 0) -> ScriptedEtcdServer.Reply {
        let head = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        var parts = [Array(head.utf8)]
        for piece in pieces {
            let bytes = Array(piece.utf8)
            parts.append(Array("\(String(bytes.count, radix: 16))\r\n".utf8) + bytes + Array("\r\n".utf8))
        }
        return .parts(parts, pause: pause, linger: linger, last: Array("0\r\n\r\n".utf8))
    }
}
