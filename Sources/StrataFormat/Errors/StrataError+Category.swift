// The one rule that sorts error codes into "the data is at fault" and "the call or the system is
// at fault". The `strata` CLI turns it into its exit status (1 and 2); README.md ("Exit codes")
// lists every code, and a test checks that the table and this switch agree.

extension StrataError.Code {
    /// Whose problem an error is.
    public enum Category: String, Sendable, CaseIterable {
        /// The data is bad: a file is damaged or foreign, an input row, query or filter does not fit
        /// the data's schema, or an operation on the data failed. CLI exit status 1.
        case data
        /// The call is bad: an option or argument is malformed or out of its documented range.
        /// CLI exit status 2.
        case usage
        /// The system refused: an I/O error, or a lock held by another process. CLI exit status 2.
        case system
    }

    /// The category of this code (see ``Category``). The switch is exhaustive on purpose: a new
    /// code must be placed here, and in README.md's table, before it compiles.
    public var category: Category {
        switch self {
        case .badMagic, .unsupportedVersion, .unsupportedFeature, .truncated, .checksumMismatch, .corrupt,
             .dimensionMismatch, .duplicateId, .alreadyExists, .nonFiniteValue, .invalidValue, .unknownColumn, .typeMismatch, .notFound:
            return .data
        case .invalidArgument:
            return .usage
        case .io, .busy:
            return .system
        }
    }
}
