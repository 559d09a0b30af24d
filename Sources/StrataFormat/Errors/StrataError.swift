import Foundation

/// The one error type Strata throws for bad input, bad files and failed I/O.
///
/// Every error carries a machine-matchable ``Code`` plus, where it applies, the file, the section and
/// the byte offset at which the problem was found, so that a user (or `strata verify`) can say
/// exactly what is wrong and where. Nothing in Strata traps on bad input: it throws this instead.
public struct StrataError: Error, Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, LocalizedError {
    /// What went wrong, matchable in `catch`.
    public enum Code: String, Sendable, Equatable, CaseIterable {
        /// The file does not start (or end) with the Strata magic: not a segment.
        case badMagic
        /// The file was written by a newer, incompatible format version; upgrade Strata to read it.
        case unsupportedVersion
        /// The file uses a required feature (section kind, compression, checksum) this reader lacks.
        case unsupportedFeature
        /// The file is shorter than its structures say.
        case truncated
        /// A checksum does not match the bytes it covers.
        case checksumMismatch
        /// A structure in the file is inconsistent (offsets out of range, bad counts, bad encoding).
        case corrupt
        /// A vector or query has the wrong number of dimensions.
        case dimensionMismatch
        /// The same external id appears twice.
        case duplicateId
        /// The target already holds data that the operation would overwrite or remove (e.g. `create`
        /// on a directory that holds collection files); nothing was changed.
        case alreadyExists
        /// A vector holds NaN or an infinity (or a value that becomes one when stored, e.g. over
        /// 65504 in a float16 segment).
        case nonFiniteValue
        /// A finite value Strata cannot store or compare: a vector whose squared norm exceeds
        /// ``VectorLimits/maximumSquaredNorm``, a zero vector under the cosine metric, a payload value
        /// over the size limit.
        case invalidValue
        /// A payload column name is not in the schema.
        case unknownColumn
        /// A value's type does not match its column's type.
        case typeMismatch
        /// A parameter is out of its documented range.
        case invalidArgument
        /// An operating-system call failed (open, read, write, fsync, rename, mmap...).
        case io
        /// An id was looked up that the segment does not contain.
        case notFound
        /// Another process holds a lock Strata needs (e.g. a collection's writer lock); try later.
        case busy
    }

    /// What went wrong.
    public var code: Code
    /// Human-readable detail.
    public var message: String
    /// The file concerned, if any.
    public var path: String?
    /// The section concerned (e.g. "vectors", "column 'rank'"), if any.
    public var section: String?
    /// The absolute byte offset in the file at which the problem was found, if known.
    public var offset: UInt64?
    /// The `errno` of a failed system call, for ``Code/io``.
    public var errno: Int32?

    /// Creates an error; prefer the static helpers.
    public init(_ code: Code, _ message: String, path: String? = nil, section: String? = nil,
                offset: UInt64? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.section = section
        self.offset = offset
        self.errno = errno
    }

    /// `code: message (file F, section S, offset O)`.
    public var description: String {
        var parts: [String] = []
        if let path { parts.append("file \(path)") }
        if let section { parts.append("section \(section)") }
        if let offset { parts.append("offset \(offset)") }
        if let errno { parts.append("errno \(errno)") }
        let location = parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
        return "\(code.rawValue): \(message)\(location)"
    }

    /// The same one line as ``description``, so that `String(reflecting:)`, `debugPrint` and an
    /// uncaught error at the top level of a program (`Fatal error: Error raised at top level: ...`)
    /// print what happened instead of a dump of the fields.
    public var debugDescription: String { description }

    /// The same one line as ``description``, for `localizedDescription` and Foundation APIs.
    public var errorDescription: String? { description }

    /// Returns a copy with the file path filled in when it is not set yet.
    public func inFile(_ path: String) -> StrataError {
        var copy = self
        if copy.path == nil { copy.path = path }
        return copy
    }
}
