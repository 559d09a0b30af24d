// `s3://BUCKET/PATH`: where a remote collection lives. Parsed strictly, since the path becomes the
// prefix of every object key the collection writes.
import StrataFormat

/// A bucket and a key prefix, parsed from `s3://BUCKET/PATH`.
public struct S3Address: Sendable, Equatable, CustomStringConvertible {
    /// The bucket.
    public var bucket: String
    /// The path inside the bucket, without leading or trailing slash ("" for the bucket's root).
    public var path: String

    /// The longest path accepted, in UTF-8 bytes (S3 keys are at most 1,024; the rest is left for
    /// the names the collection adds below it).
    public static let maximumPathBytes = 512

    /// Parses `s3://BUCKET/PATH`. Leading, trailing and repeated slashes around the path are
    /// dropped ("s3://b//a/b/" is bucket b, path a/b); throws `.invalidArgument` for a missing or
    /// invalid bucket, a path segment "." or "..", control characters or backslashes, or an
    /// over-long path.
    public init(parsing text: String) throws(StrataError) {
        func bad(_ why: String) -> StrataError {
            // Control characters are shown as '?' so that the message stays one printable line.
            var shown = String.UnicodeScalarView()
            for scalar in text.unicodeScalars.prefix(200) { shown.append(scalar.value < 0x20 || scalar.value == 0x7F ? "?" : scalar) }
            return StrataError(.invalidArgument, "bad S3 address '\(String(shown))': \(why); expected s3://BUCKET/PATH")
        }
        guard text.hasPrefix("s3://") else { throw bad("it does not start with s3://") }
        let rest = text.dropFirst(5)
        let bucketEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let bucket = String(rest[..<bucketEnd])
        guard !bucket.isEmpty else { throw bad("the bucket is empty") }
        guard Self.isValidBucketName(bucket) else {
            throw bad("bucket names are 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit")
        }
        let segments = rest[bucketEnd...].split(separator: "/", omittingEmptySubsequences: true)
        for segment in segments {
            guard segment != ".", segment != ".." else { throw bad("the path has a '.' or '..' segment") }
            guard !segment.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "\\" }) else {
                throw bad("the path has control characters or a backslash")
            }
        }
        let path = segments.joined(separator: "/")
        guard path.utf8.count <= Self.maximumPathBytes else {
            throw bad("the path is longer than \(Self.maximumPathBytes) bytes")
        }
        self.bucket = bucket
        self.path = path
    }

    /// `s3://bucket/path`.
    public var description: String { path.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(path)" }

    /// Whether `text` looks like an S3 address (starts with `s3://`), so that callers can tell it
    /// from a local directory before parsing.
    public static func isAddress(_ text: String) -> Bool { text.hasPrefix("s3://") }

    /// The key of `name` under this address's path.
    public func key(_ name: String) -> String { path.isEmpty ? name : "\(path)/\(name)" }

    /// S3's bucket naming rules: 3-63 characters of lower-case letters, digits, '.' and '-',
    /// starting and ending with a letter or digit, no "..", not shaped like an IPv4 address.
    public static func isValidBucketName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return false }
        func isAlphanumeric(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        guard bytes.allSatisfy({ isAlphanumeric($0) || $0 == 0x2E || $0 == 0x2D }) else { return false }
        guard isAlphanumeric(bytes.first!), isAlphanumeric(bytes.last!) else { return false }
        guard !name.contains(".."), !name.contains(".-"), !name.contains("-.") else { return false }
        let parts = name.split(separator: ".")
        if parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) { return false }
        return true
    }
}
