// A loopback HTTP/1.1 server whose every answer a test scripts, to put the S3 client in front of a
// misbehaving store: 5xx storms, error bodies, short or over-long bodies, broken XML, silence.
// One thread per connection; every answer closes its connection.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class ScriptedHTTPServer: @unchecked Sendable {  // the mutable state is guarded by `lock`
    /// What the server does with one request.
    enum Reply: Sendable {
        /// Sends these bytes, then closes.
        case raw([UInt8])
        /// Sends nothing for this long, then closes.
        case silence(seconds: Double)
    }

    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var heads: [String] = []
    private let handler: @Sendable (_ index: Int, _ head: String) -> Reply

    /// Request heads received so far (request line and headers).
    var requests: [String] { lock.withLock { heads } }

    init(_ handler: @escaping @Sendable (_ index: Int, _ head: String) -> Reply) throws {
        self.handler = handler
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw NSError(domain: "ScriptedHTTPServer", code: Int(errno))
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
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
        // The head, then as much body as Content-Length says.
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
        let index: Int = lock.withLock { heads.append(head); return heads.count - 1 }
        switch handler(index, head) {
        case .raw(let bytes):
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { return }
                sent += n
            }
        case .silence(let seconds):
            Thread.sleep(forTimeInterval: seconds)
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }

    /// An HTTP/1.1 answer with `Connection: close`; Content-Length is the body's unless given.
    static func response(_ status: Int, headers: [(String, String)] = [], body: [UInt8] = [], contentLength: Int? = nil) -> Reply {
        var text = "HTTP/1.1 \(status) Status\r\nConnection: close\r\n"
        text += "Content-Length: \(contentLength ?? body.count)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return .raw(Array(text.utf8) + body)
    }

    /// An S3 `<Error>` answer.
    static func s3Error(_ status: Int, code: String, message: String = "scripted") -> Reply {
        response(status, headers: [("Content-Type", "application/xml")],
                 body: Array("<?xml version=\"1.0\"?><Error><Code>\(code)</Code><Message>\(message)</Message></Error>".utf8))
    }
}
