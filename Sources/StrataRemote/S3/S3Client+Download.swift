// Downloads into a file: the object's size from HEAD, then ranged GETs of one part size each, at
// most `parallelParts` at a time, every chunk written with pwrite at its offset as it arrives (no
// object is held in memory), then fsync. A failed download removes the partial file.
import AsyncHTTPClient
import NIOCore
import StrataFormat

extension S3Client {
    public func download(_ key: String, toFile path: String) async throws(StrataError) -> UInt64 {
        let what = address(of: key)
        guard let info = try await head(key) else {
            throw StrataError(.notFound, "S3 HEAD answered HTTP 404: no such object", path: what)
        }
        let file = try SystemFile.create(path)
        do {
            let size = info.size
            let partSize = UInt64(configuration.partSize)
            let count = Int((size + partSize - 1) / partSize)
            _ = try await inParallel(count: count, width: configuration.parallelParts, what: what) {
                (index: Int) async throws(StrataError) -> UInt64 in
                let start = UInt64(index) * partSize
                return try await self.downloadRange(key, start..<min(size, start + partSize), into: path)
            }
            try file.sync()
            file.close()
            return size
        } catch {
            file.close()
            FileSystem.removeIfPresent(path)
            throw error
        }
    }

    /// GETs `range` of the object and writes it at the same offset of the file at `path`.
    func downloadRange(_ key: String, _ range: Range<UInt64>, into path: String) async throws(StrataError) -> UInt64 {
        let what = address(of: key)
        let request = S3Request("GET", .GET, key: key, headers: [("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")])
        return try await send(request) { response, _ in
            let expected = try self.expectedBodyLength(response, range: range, what: what)
            let file = try SystemFile.openForWriting(path)
            defer { file.close() }
            return try await self.readBody(response, expected: expected, what: what) { (chunk, offset) throws(StrataError) in
                // ByteBuffer's closure rethrows untyped errors: carry the typed one out by hand.
                var failure: StrataError?
                chunk.withUnsafeReadableBytes { bytes in
                    do throws(StrataError) { try file.write(bytes, atAbsoluteOffset: range.lowerBound + offset) } catch { failure = error }
                }
                if let failure { throw failure }
            }
        }
    }
}
