// Readers for the vector files the CLI and benchmarks take as input: texmex .fvecs / .ivecs and
// NumPy .npy (float32, 2-D, C order). Files are memory-mapped and rows read in place.
// Writers for .fvecs / .ivecs stream records into a temporary file that is fsynced and renamed into
// place on commit, so a reader never sees a partial file at the final path.
//
// texmex record layout (both kinds): | 4 B  int32 LE dimension d | 4 d B  float32 or int32 LE values |
import Strata
import StrataFormat
import StrataIndex

/// A memory-mapped matrix of float32 vectors from an `.fvecs` or `.npy` file.
///
/// Unchecked `Sendable`: a read-only mapping of the file, never written after `init`.
public final class VectorFile: @unchecked Sendable {
    /// Number of vectors.
    public let count: Int
    /// Dimensions per vector.
    public let dimension: Int
    private let file: MappedFile
    private let firstRowOffset: Int
    private let rowStride: Int

    /// Opens `path`; the format is chosen by extension (`.npy`, else texmex `.fvecs`). Every record
    /// header is checked, so a ragged or truncated file throws `.corrupt`/`.truncated`.
    public init(path: String) throws(StrataError) {
        file = try MappedFile(path: path)
        let bytes = file.bytes
        if path.hasSuffix(".npy") {
            (count, dimension, firstRowOffset) = try Self.parseNpyHeader(bytes, path: path)
            rowStride = dimension * 4
        } else {
            guard bytes.count >= 4 else {
                if bytes.count == 0 { count = 0; dimension = 0; firstRowOffset = 4; rowStride = 4; return }
                throw StrataError(.truncated, "fvecs file shorter than one record header", path: path, offset: 0)
            }
            let d = Int(Int32(littleEndian: bytes.loadUnaligned(as: Int32.self)))
            guard d >= 1, d <= 1 << 20 else { throw StrataError(.corrupt, "fvecs dimension \(d)", path: path, offset: 0) }
            let record = 4 + 4 * d
            guard bytes.count % record == 0 else {
                throw StrataError(.truncated, "fvecs size \(bytes.count) is not a multiple of the record size \(record)", path: path, offset: UInt64(bytes.count / record * record))
            }
            count = bytes.count / record
            for i in 0..<count where Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: i * record, as: Int32.self)) != Int32(d) {
                throw StrataError(.corrupt, "record \(i) has a different dimension", path: path, offset: UInt64(i * record))
            }
            dimension = d
            firstRowOffset = 4
            rowStride = record
        }
    }

    /// Calls `body` with row `i` in place.
    public func withRow<R, E: Error>(_ i: Int, _ body: (UnsafeBufferPointer<Float>) throws(E) -> R) throws(E) -> R {
        precondition(i >= 0 && i < count)
        let p = file.bytes.baseAddress! + firstRowOffset + i * rowStride
        // Rows are 4-byte aligned in both formats (fvecs records are 4 + 4d bytes; npy data is 16-aligned).
        return try body(UnsafeBufferPointer(start: p.assumingMemoryBound(to: Float.self), count: dimension))
    }

    /// Row `i` as an array.
    public func row(_ i: Int) -> [Float] { withRow(i) { Array($0) } }

    /// Calls `body` with a pointer to the first float of row `rows.lowerBound` and the distance in
    /// floats between consecutive rows (`dimension + 1` for fvecs, `dimension` for npy).
    func withRows<R>(_ rows: Range<Int>, _ body: (UnsafePointer<Float>, _ strideFloats: Int) throws -> R) rethrows -> R {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= count && !rows.isEmpty)
        let p = file.bytes.baseAddress! + firstRowOffset + rows.lowerBound * rowStride
        return try body(p.assumingMemoryBound(to: Float.self), rowStride / 4)
    }

    /// Advises the kernel that rows will be read once, in order (`madvise(MADV_SEQUENTIAL)`).
    func adviseSequential() { file.advise(.sequential) }

    private static func parseNpyHeader(_ bytes: UnsafeRawBufferPointer, path: String) throws(StrataError) -> (Int, Int, Int) {
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw StrataError(.badMagic, "not a .npy file", path: path, offset: 0)
        }
        let major = bytes[6]
        let headerLength: Int, start: Int
        if major == 1 {
            headerLength = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self))); start = 10
        } else {
            guard bytes.count >= 12 else { throw StrataError(.truncated, "npy header", path: path, offset: 8) }
            headerLength = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))); start = 12
        }
        guard headerLength <= bytes.count - start else { throw StrataError(.truncated, "npy header longer than file", path: path, offset: 8) }
        let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self).replacingAll(" ", with: "")
        guard header.contains("'descr':'<f4'") else {
            throw StrataError(.typeMismatch, "npy dtype must be little-endian float32 ('<f4')", path: path, offset: UInt64(start))
        }
        guard header.contains("'fortran_order':False") else {
            throw StrataError(.unsupportedFeature, "npy must be C order", path: path, offset: UInt64(start))
        }
        guard let shapeStart = header.firstRange(of: "'shape':(")?.upperBound,
              let shapeEnd = header[shapeStart...].firstIndex(of: ")") else {
            throw StrataError(.corrupt, "npy header has no shape", path: path, offset: UInt64(start))
        }
        let dims = header[shapeStart..<shapeEnd].split(separator: ",").compactMap { Int($0) }
        guard dims.count == 2, dims[0] >= 0, dims[1] >= 1 else {
            throw StrataError(.unsupportedFeature, "npy must be 2-D with at least one column", path: path, offset: UInt64(start))
        }
        let dataStart = start + headerLength
        guard let rowBytes = Checked.mul(UInt64(dims[1]), 4), let need = Checked.mul(UInt64(dims[0]), rowBytes),
              need <= UInt64(bytes.count - dataStart) else {
            throw StrataError(.truncated, "npy data shorter than its shape", path: path, offset: UInt64(dataStart))
        }
        return (dims[0], dims[1], dataStart)
    }
}

/// Reads a texmex `.ivecs` file (e.g. ground truth) into one array of ids per record.
public func readIvecs(path: String) throws(StrataError) -> [[Int32]] {
    let file = try MappedFile(path: path)
    let bytes = file.bytes
    var result: [[Int32]] = []
    var at = 0
    while at < bytes.count {
        guard bytes.count - at >= 4 else { throw StrataError(.truncated, "ivecs record header", path: path, offset: UInt64(at)) }
        let d = Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: Int32.self)))
        guard d >= 0, d <= (bytes.count - at - 4) / 4 else { throw StrataError(.truncated, "ivecs record", path: path, offset: UInt64(at)) }
        result.append((0..<d).map { Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: at + 4 + $0 * 4, as: Int32.self)) })
        at += 4 + 4 * d
    }
    return result
}

/// Streams texmex `.fvecs` or `.ivecs` records into a temporary file next to `path`; ``commit()``
/// fsyncs it, renames it to `path` and fsyncs the directory. A writer that is not committed removes its
/// temporary file when released, so a failed run leaves nothing behind.
public final class TexmexWriter {
    /// The final path.
    public let path: String
    /// Values per record.
    public let dimension: Int
    /// Records written so far.
    public private(set) var count = 0
    /// The temporary file, until committed or abandoned.
    private var output: AtomicFileWriter?
    private var offset: UInt64 = 0

    /// Creates the temporary file for a file of `dimension`-value records at `path`.
    /// - Throws: ``StrataError/Code/invalidArgument`` for a dimension outside 1...2^20;
    ///   ``StrataError/Code/io`` when the file cannot be created.
    public init(path: String, dimension: Int) throws(StrataError) {
        guard dimension >= 1, dimension <= 1 << 20 else {
            throw StrataError(.invalidArgument, "record dimension \(dimension) is outside 1...\(1 << 20)", path: path)
        }
        self.path = path
        self.dimension = dimension
        output = try AtomicFileWriter(publishingAt: path)
    }

    deinit { abandon() }

    /// Appends already encoded records (each `4 + 4 * dimension` bytes, header included).
    /// - Complexity: O(`records.count`); one `pwrite` loop.
    public func append(encodedRecords records: UnsafeRawBufferPointer) throws(StrataError) {
        let record = 4 + 4 * dimension
        precondition(records.count % record == 0, "partial record")
        guard let output else { throw StrataError(.invalidArgument, "writer already finished", path: path) }
        guard !records.isEmpty else { return }
        try output.file.write(records, atAbsoluteOffset: offset)
        offset += UInt64(records.count)
        count += records.count / record
    }

    /// Appends one int32 record (e.g. a ground-truth row); `values.count` must equal ``dimension``.
    public func append(int32Record values: [Int32]) throws(StrataError) {
        precondition(values.count == dimension, "record of the wrong length")
        var bytes = [UInt8](repeating: 0, count: 4 + 4 * dimension)
        bytes.withUnsafeMutableBytes { b in
            b.storeBytes(of: Int32(dimension).littleEndian, as: Int32.self)
            for (i, v) in values.enumerated() { b.storeBytes(of: v.littleEndian, toByteOffset: 4 + 4 * i, as: Int32.self) }
        }
        try bytes.withUnsafeBytes { b in Result { () throws(StrataError) in try append(encodedRecords: b) } }.get()
    }

    /// Appends float32 rows stored contiguously (`rows.count` must be a multiple of ``dimension``).
    public func append(floatRows rows: UnsafeBufferPointer<Float>) throws(StrataError) {
        precondition(rows.count % dimension == 0, "partial row")
        let n = rows.count / dimension
        var bytes = [UInt8](repeating: 0, count: n * (4 + 4 * dimension))
        bytes.withUnsafeMutableBytes { b in
            for r in 0..<n {
                let at = r * (4 + 4 * dimension)
                b.storeBytes(of: Int32(dimension).littleEndian, toByteOffset: at, as: Int32.self)
                for j in 0..<dimension {
                    b.storeBytes(of: rows[r * dimension + j].bitPattern.littleEndian, toByteOffset: at + 4 + 4 * j, as: UInt32.self)
                }
            }
        }
        try bytes.withUnsafeBytes { b in Result { () throws(StrataError) in try append(encodedRecords: b) } }.get()
    }

    /// Fsyncs the temporary file, renames it to ``path`` and fsyncs the directory.
    public func commit() throws(StrataError) {
        guard let output else { throw StrataError(.invalidArgument, "writer already finished", path: path) }
        self.output = nil
        try output.publish()
    }

    /// Closes and removes the temporary file, if not committed (idempotent).
    public func abandon() {
        output?.abandon()
        output = nil
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
