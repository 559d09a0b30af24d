// A whole WAL as bytes: the form the remote tier stores one acknowledged batch in (a WAL object is
// a WAL file holding that batch's records, numbered from 1). The encoding is the file format's
// (docs/COLLECTION-FORMAT.md C.4); only where the bytes live differs. A whole log's format is chosen
// from its records: 3.0 when one carries a sparse vector, else 2.0 (readable by an older Strata).
import StrataFormat

extension WALFormat {
    /// A complete WAL of sequence `sequence` holding `records` (numbered 1, 2, …), in format 3.0
    /// when a record carries a sparse vector, else 2.0.
    package static func encodeLog(_ records: [WALRecord], sequence: UInt64, schema: SegmentSchema) -> [UInt8] {
        let version = WALVersion.forNewLog(after: nil, sparse: records.contains { $0.hasSparse })
        var bytes = header(sequence: sequence, version: version)
        for (i, record) in records.enumerated() { bytes += encode(record, schema: schema, version: version, number: UInt64(i + 1)) }
        return bytes
    }

    /// The records of a complete WAL of sequence `sequence` (`path` names it in errors). A WAL held
    /// whole is never torn: a short or damaged record throws `.corrupt` / `.checksumMismatch` with
    /// its offset, like a bad header.
    package static func decodeLog(_ bytes: [UInt8], sequence: UInt64, schema: SegmentSchema, path: String) throws(StrataError) -> [WALRecord] {
        let version = try WALReader.parseHeader(bytes, fileSize: UInt64(bytes.count), path: path, sequence: sequence)
        let scan = bytes.withUnsafeBytes { raw in
            WALReader.scanRecords(UnsafeRawBufferPointer(rebasing: raw[headerLength...]), at: UInt64(headerLength),
                                  version: version, nextRecord: 1, schema: schema, path: path)
        }
        switch scan.end {
        case .clean: return scan.records
        case .damaged(let e): throw e
        case .torn(let why):
            throw StrataError(.corrupt, "WAL object ends inside a record (\(why))", path: path, section: "wal", offset: scan.validLength)
        }
    }
}
