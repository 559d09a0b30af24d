// The format-1.2 search sections of a segment, as one unit on both sides:
//   write: SearchSectionsBuilder collects indexed column values, BM25 text and sparse vectors while
//          rows are appended, and emits the sections at finish (SegmentWriter.finishUnchecked);
//   read:  SegmentSearchExtras parses them at open (Segment.init) and pools per-thread searchers.
// All three sections are optional (not flagged required): a 1.0/1.1 reader skips them.
import StrataFormat
import StrataIndex

extension SectionKind {
    /// Whether the kind is one of the optional format-1.2 search sections.
    var isSearchSection: Bool { self == .payloadIndex || self == .sparseIndex || self == .textIndex }
}

/// Collects what the search sections need while rows are appended.
final class SearchSectionsBuilder {
    var payload: [PayloadIndexBuilder]
    var text: [TextIndexBuilder]
    var sparse: [Int: SparseVector] = [:]
    private var rows = 0

    init(schema: SegmentSchema, options: SearchSectionOptions) throws(StrataError) {
        var seen = Set<String>()
        payload = []
        for name in options.indexedColumns where seen.insert(name).inserted {
            let i = try schema.columnIndex(named: name)
            payload.append(PayloadIndexBuilder(ordinal: i, spec: schema.columns[i]))
        }
        payload.sort { $0.ordinal < $1.ordinal }
        text = []
        for name in Set(options.bm25Columns).sorted() {
            let i = try schema.columnIndex(named: name)
            guard schema.columns[i].type == .string || schema.columns[i].type == .stringList else {
                throw StrataError(.typeMismatch, "BM25 needs a string column; '\(name)' is \(schema.columns[i].type)")
            }
            text.append(TextIndexBuilder(ordinal: i))
        }
    }

    /// A builder of the sparse_index section alone (no payload index, no BM25 column).
    init(sparseOnly: ()) {
        payload = []
        text = []
    }

    /// Whether anything is to be written.
    var isEmpty: Bool { payload.isEmpty && text.isEmpty && sparse.isEmpty }

    /// Observes one appended row (values in schema order).
    func add(values: [PayloadValue]) {
        for k in payload.indices { payload[k].add(values[payload[k].ordinal]) }
        for k in text.indices { text[k].add(values[text[k].ordinal]) }
        rows += 1
    }

    /// Writes the sections through `put`.
    func write(rowCount: UInt64, put: (SectionKind, UnsafeRawBufferPointer) throws(StrataError) -> Void) throws(StrataError) {
        guard rowCount <= UInt64(UInt32.max) else { return }      // row ids are u32 in these sections
        if !payload.isEmpty {
            let bytes = PayloadIndexSection.encode(payload, rowCount: rowCount)
            try bytes.withBytes { (raw) throws(StrataError) in try put(.payloadIndex, raw) }
        }
        if !sparse.isEmpty {
            let bytes = SparseIndexSection.encode(sparse, rowCount: Int(rowCount))
            try bytes.withBytes { (raw) throws(StrataError) in try put(.sparseIndex, raw) }
        }
        if !text.isEmpty {
            let bytes = TextIndexSection.encode(text, rowCount: Int(rowCount))
            try bytes.withBytes { (raw) throws(StrataError) in try put(.textIndex, raw) }
        }
    }
}

extension SegmentWriter {
    /// Sets the sparse vector of an appended row (`0..<rowCount`); written to the `sparse_index`
    /// section by ``finish()``. Throws `.invalidArgument` for a row not appended yet or a bad vector.
    public func setSparseVector(row: Int, _ vector: SparseVector) throws(StrataError) {
        guard row >= 0, row < rowCount else { throw StrataError(.invalidArgument, "row \(row) is not appended yet (\(rowCount) rows)") }
        try vector.validate()
        storeSparse(vector, row: row)
    }

    /// Records the (checked) sparse vector of appended row `row` for the `sparse_index` section.
    func storeSparse(_ vector: SparseVector, row: Int) {
        if let e = searchBuilder {
            e.sparse[row] = vector
        } else {
            let e = SearchSectionsBuilder(sparseOnly: ())
            e.sparse[row] = vector
            searchBuilder = e
        }
    }
}

/// Parsed search sections of an open segment.
final class SegmentSearchExtras: Sendable {
    let payload: PayloadIndexes?
    let sparse: SparseIndexView?
    let text: [TextIndexView]

    /// Parses the sections present in `list` (only sparse_index when `primaryOnly`).
    static func open(list: [SectionInfo], view: (SectionInfo) -> UnsafeRawBufferPointer, schema: SegmentSchema,
                     rowCount: Int, hasANN: Bool, primaryOnly: Bool = false) throws(StrataError) -> SegmentSearchExtras {
        func one(_ kind: SectionKind) throws(StrataError) -> SectionInfo? {
            let found = list.filter { $0.kind == kind }
            guard found.count <= 1 else {
                throw StrataError(.corrupt, "more than one \(kind) section", section: kind.description, offset: found[1].offset)
            }
            return found.first
        }
        var payload: PayloadIndexes? = nil
        if !primaryOnly, let s = try one(.payloadIndex) {
            payload = try PayloadIndexes(bytes: view(s), fileOffset: s.offset, schema: schema, rowCount: rowCount)
        }
        var sparse: SparseIndexView? = nil
        if let s = try one(.sparseIndex) { sparse = try SparseIndexView(bytes: view(s), fileOffset: s.offset, rowCount: rowCount) }
        var text: [TextIndexView] = []
        if !primaryOnly, let s = try one(.textIndex) { text = try TextIndexView.parseSection(view(s), fileOffset: s.offset, schema: schema, rowCount: rowCount) }
        return SegmentSearchExtras(payload: payload, sparse: sparse, text: text)
    }

    init(payload: PayloadIndexes?, sparse: SparseIndexView?, text: [TextIndexView]) {
        self.payload = payload
        self.sparse = sparse
        self.text = text
    }
}
