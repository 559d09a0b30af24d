// Cuts a stream of bytes into the JSON objects it carries, one after another. etcd's gateway
// answers a streaming call (watch, keepalive) with one JSON object per message, separated by
// newlines, and the HTTP chunks it arrives in need not line up with the messages: an object may
// span chunks and a chunk may hold several. The splitter only tracks nesting and strings, enough to
// find where each top-level object ends; the decoder checks the JSON itself.
import StrataFormat

/// Splits a byte stream into top-level JSON objects, incrementally.
struct JSONObjectSplitter: Sendable {
    /// Largest object accepted: a stream that never closes its object cannot grow memory unbounded.
    let maximumObjectBytes: Int

    /// Bytes received and not yet returned (the start of an unfinished object).
    private var pending: [UInt8] = []
    /// How far `pending` has been scanned.
    private var scanned = 0
    /// Nesting depth at `scanned` (0: between objects).
    private var depth = 0
    private var inString = false
    private var escaped = false

    init(maximumObjectBytes: Int) {
        self.maximumObjectBytes = maximumObjectBytes
    }

    /// Adds bytes; returns the objects they complete, in order. Throws a message when the stream is
    /// not a sequence of objects (something other than whitespace between them) or an object grows
    /// past the limit.
    mutating func append(_ bytes: some Sequence<UInt8>) throws(EtcdDecodeFailure) -> [[UInt8]] {
        pending.append(contentsOf: bytes)
        var objects: [[UInt8]] = []
        var start = 0   // start of the object being scanned (or of unscanned bytes between objects)
        var index = scanned
        while index < pending.count {
            let byte = pending[index]
            if depth == 0 {
                switch byte {
                case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                    start = index + 1
                case UInt8(ascii: "{"):
                    start = index
                    depth = 1
                default:
                    throw EtcdDecodeFailure("a stream message that is not a JSON object (byte \(byte) between messages)")
                }
            } else if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
            } else {
                switch byte {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 {
                        objects.append(Array(pending[start...index]))
                        start = index + 1
                    }
                default: break
                }
            }
            index += 1
        }
        // Keep only the unfinished object; between objects nothing needs keeping.
        if depth == 0 { start = pending.count }
        pending.removeFirst(start)
        scanned = pending.count
        if pending.count > maximumObjectBytes {
            throw EtcdDecodeFailure("a stream message over \(maximumObjectBytes) bytes")
        }
        return objects
    }

    /// Whether an object was started and not finished (the stream ended mid-message).
    var hasPartialObject: Bool { depth > 0 }
}
