// Appending to a WAL, and cutting a torn tail without destroying its bytes (docs/COLLECTION-FORMAT.md C.4).
import StrataFormat
import StrataIndex

/// Appends records to one WAL file; every append is fsynced (fdatasync) before it returns.
final class WALWriter {
    let path: String
    let sequence: UInt64
    /// The file's format: records are appended in it (a 1.0 file stays 1.0 until the next flush
    /// starts a new WAL in the current format).
    let version: WALVersion
    /// The log, open through the file layer current when it was opened (nil once closed).
    private var file: (any WritableFile)?
    /// Current end of the log.
    private(set) var length: UInt64
    /// Number of the next record appended.
    private(set) var nextRecordNumber: UInt64

    /// Opens an existing WAL for appending at `validLength`, which must be its size: a torn tail is
    /// moved out first (``WALTornTail/cut(path:sequence:at:)``), never truncated here.
    init(path: String, sequence: UInt64, version: WALVersion, validLength: UInt64, nextRecordNumber: UInt64) throws(StrataError) {
        self.path = path
        self.sequence = sequence
        self.version = version
        self.nextRecordNumber = nextRecordNumber
        let file = try FileSystem.openForWriting(path)
        self.file = file
        length = validLength
        let size = try file.size()
        guard size == validLength else {
            throw StrataError(.corrupt, "WAL is \(size) bytes, its records end at \(validLength)", path: path, section: "wal", offset: validLength)
        }
    }

    deinit { close() }

    func close() {
        file?.close()
        file = nil
    }

    /// Appends `record` in the file's format and makes it durable. On failure the caller must treat
    /// the log as unusable (a write may have partly reached the disk; replay sees a torn tail).
    func append(_ record: WALRecord, schema: SegmentSchema) throws(StrataError) {
        guard let file else { throw StrataError(.io, "WAL is closed", path: path) }
        guard version.holdsSparse || !record.hasSparse else {
            throw StrataError(.invalidArgument, "a WAL \(version) cannot hold sparse vectors (a flush starts a 3.0 one first)", path: path)
        }
        let bytes = WALFormat.encode(record, schema: schema, version: version, number: nextRecordNumber)
        do {
            try bytes.withBytes { (raw) throws(StrataError) in try file.write(raw, atAbsoluteOffset: length) }
            try file.syncData()
        } catch {
            var e = error
            e.message = "WAL " + e.message // "WAL write failed: ...", "WAL fdatasync failed: ..."
            throw e
        }
        length += UInt64(bytes.count)
        nextRecordNumber += 1
    }
}

/// Side files next to a WAL: `wal-<seq>.log.torn-<offset>` (a torn tail moved out by the writer) and
/// `wal-<seq>.log.damaged-<offset>` (the whole WAL as it was before `strata recover` cut it). Strata
/// never removes them: they are for the operator to inspect and delete.
enum WALSideFile {
    static let tornMarker = ".log.torn-"
    static let damagedMarker = ".log.damaged-"

    /// Whether `name` is a WAL side file.
    static func isSideFile(_ name: String) -> Bool {
        name.hasPrefix("wal-") && (name.contains(tornMarker) || name.contains(damagedMarker)) && !CollectionFiles.isTemporary(name)
    }

    /// A name `<wal>.<kind>-<offset>` in `directory` not yet taken by a file with other content:
    /// `-2`, `-3`... are appended when it is. Returns the name and whether that file already holds
    /// exactly `bytes` (a crash after writing it and before cutting the WAL: nothing to write again).
    static func name(for wal: String, kind: String, offset: UInt64, bytes: [UInt8], in directory: String) throws(StrataError) -> (String, exists: Bool) {
        let base = "\(wal).\(kind)-\(offset)"
        for n in 1...1000 {
            let name = n == 1 ? base : "\(base)-\(n)"
            let path = "\(directory)/\(name)"
            guard FileSystem.exists(path) else { return (name, false) }
            if try FileSystem.readAll(path) == bytes { return (name, true) }
        }
        throw StrataError(.io, "1,000 side files named \(base)-*: remove some", path: directory)
    }

    /// Writes `bytes` durably as a side file of `wal` (temp, fsync, rename, fsync directory) and
    /// returns its name.
    static func keep(_ bytes: [UInt8], wal: String, kind: String, offset: UInt64, directory: String) throws(StrataError) -> String {
        let (name, exists) = try self.name(for: wal, kind: kind, offset: offset, bytes: bytes, in: directory)
        if !exists { try publishAtomically(bytes, to: "\(directory)/\(name)") }
        return name
    }

    /// Truncates `path` to `length` and fsyncs it.
    static func truncate(_ path: String, to length: UInt64) throws(StrataError) {
        let file = try FileSystem.openForWriting(path)
        defer { file.close() }
        try file.truncate(to: length)
        try file.sync()
    }
}

enum WALTornTail {
    /// Moves the torn tail of the WAL at `path` (bytes `offset` to the end) into the side file
    /// `wal-<seq>.log.torn-<offset>`, durably, then truncates the WAL to `offset`. Returns the side
    /// file's name. A crash in between leaves the tail in both; the next open finds the side file
    /// already holding those bytes and only truncates.
    static func cut(path: String, at offset: UInt64) throws(StrataError) -> String {
        let file = try SystemFile.openForReading(path)
        let size: UInt64
        var tail: [UInt8] = []
        do {
            defer { file.close() }
            size = try file.size()
            guard offset <= size, size - offset <= UInt64(Int.max / 2) else {
                throw StrataError(.corrupt, "torn tail at \(offset) is outside the \(size)-byte WAL", path: path, section: "wal", offset: offset)
            }
            tail = [UInt8](repeating: 0, count: Int(size - offset))
            if !tail.isEmpty {
                try tail.withMutableBytes { (raw) throws(StrataError) in try file.read(into: raw, fromAbsoluteOffset: offset) }
            }
        }
        let directory = FileSystem.parentDirectory(of: path)
        let wal = path.split(separator: "/").last.map(String.init) ?? path
        let name = try WALSideFile.keep(tail, wal: wal, kind: "torn", offset: offset, directory: directory)
        try WALSideFile.truncate(path, to: offset)
        return name
    }
}
