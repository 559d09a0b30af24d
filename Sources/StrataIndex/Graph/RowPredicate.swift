// Which rows a beam search may return (BeamSearcher+Traversal.swift).
//
// The searcher is generic over the predicate and specialised inside this module for its two forms:
// `EveryRow` (the unfiltered search: every test folds away at compile time, so the hot loop is the
// one without a filter) and `RowPredicate` (a filter: a forward-array range test inline, or a C
// function pointer over an opaque context for anything else). Neither form makes an existential
// call or touches a reference count per row.

/// A row test the beam searcher is specialised for.
package protocol RowAdmission {
    /// True when every row passes: the searcher then runs without a test, list bookkeeping for
    /// non-passing nodes or a non-passing budget.
    static var admitsEveryRow: Bool { get }
    /// Whether `row` (< the graph's node count) may be returned.
    func admits(_ row: Int) -> Bool
}

/// Every row passes: the unfiltered search.
package struct EveryRow: RowAdmission {
    package static var admitsEveryRow: Bool { true }
    package init() {}
    @inline(__always) package func admits(_ row: Int) -> Bool { true }
}

/// A row filter: either `ordinals[row] - low < width` (one range over a per-row UInt32 array, the
/// common one-column filter) or `test(context, row)`.
package struct RowPredicate: RowAdmission {
    package static var admitsEveryRow: Bool { false }

    /// A C function and the context it is called with (nil with the ordinal form).
    package typealias Test = @convention(c) (UnsafeRawPointer, Int) -> Bool

    let ordinals: UnsafePointer<UInt32>?
    let low: UInt32
    let width: UInt32
    let test: Test?
    let context: UnsafeRawPointer?

    /// Rows whose `ordinals[row]` lies in `low ..< low + width` (wrapping). Unsafe: `ordinals` must hold
    /// one value per graph node and outlive every search that uses the predicate.
    package init(unsafeOrdinals ordinals: UnsafePointer<UInt32>, low: UInt32, width: UInt32) {
        self.ordinals = ordinals
        self.low = low
        self.width = width
        self.test = nil
        self.context = nil
    }

    /// Rows for which `test(context, row)` is true. Unsafe: `context` must stay valid for every
    /// search that uses the predicate (the caller keeps its owner alive).
    package init(unsafeContext context: UnsafeRawPointer, test: Test) {
        self.ordinals = nil
        self.low = 0
        self.width = 0
        self.test = test
        self.context = context
    }

    @inline(__always) package func admits(_ row: Int) -> Bool {
        if let f = ordinals { return f[row] &- low < width }
        return test.unsafelyUnwrapped(context.unsafelyUnwrapped, row)
    }
}
