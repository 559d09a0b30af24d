// The node-local cache of a remote collection's segments and delete bitmaps: files fetched from the
// object store into a directory and opened with the ordinary mmap reader (a Version over the cache
// directory is a Version like any other).
//
// A file enters the cache whole and checked: downloaded under a temporary name (ranged GETs in
// parallel for large objects), its size compared with the manifest's, every section checksum of a
// segment (every byte of a bitmap) verified, fsynced, then renamed into place and the directory
// fsynced. A cached file is trusted by name only if its size is right and it opens (footer,
// directory and header checksums); one that does not is removed and fetched again. Eviction is
// least-recently-used by bytes, over files that no Version of this process references, across the
// whole cache directory: every collection's subdirectory counts against one capacity (a serving
// node opens a handle per shard, all in one directory).
import StrataFormat
import Strata
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where a remote collection keeps local copies of its files, and how much room they may take.
public struct SegmentCacheOptions: Sendable {
    /// The cache directory (shared by collections; each gets a subdirectory). Environment:
    /// `STRATA_CACHE_DIR`.
    public var directory: String
    /// Bytes the cached files of every collection in `directory` may take together before
    /// unreferenced ones are evicted, least recently used first. Files that open snapshots reference
    /// are never evicted, so the cache can exceed this while they are held. Environment:
    /// `STRATA_CACHE_BYTES`. Default 8 GiB.
    public var capacityBytes: UInt64
    /// Downloads in flight at once. Default 4.
    public var parallelDownloads: Int

    /// A cache in `directory` of at most `capacityBytes`.
    public init(directory: String, capacityBytes: UInt64 = 8 << 30, parallelDownloads: Int = 4) {
        self.directory = directory
        self.capacityBytes = capacityBytes
        self.parallelDownloads = parallelDownloads
    }
}

/// One collection's part of the cache.
final class SegmentCache: Sendable {
    /// The collection's cache directory: segment and bitmap files under their manifest names.
    let directory: String
    let options: SegmentCacheOptions
    let store: any ObjectStore
    let layout: RemoteLayout
    /// Files fetched and checked by this process (checked again only after removal).
    private let checked = Mutex(Set<String>())
    /// Fetches by this cache: count and bytes.
    private let counters = Mutex((fetches: 0, bytes: UInt64(0), hits: 0))

    init(options: SegmentCacheOptions, store: any ObjectStore, layout: RemoteLayout) throws(StrataError) {
        self.options = options
        self.store = store
        self.layout = layout
        // One subdirectory per collection, named by the bucket and prefix (made safe).
        let id = (layout.bucket + "/" + layout.prefix).utf8.map { c -> String in
            let ch = Character(UnicodeScalar(c))
            return ch.isLetter || ch.isNumber || ch == "-" || ch == "_" || ch == "." ? String(ch) : "~" + String(c, radix: 16)
        }.joined()
        directory = options.directory + "/" + id
        // The cache directory and any missing parents (`~/.cache/strata` on a new machine).
        var prefix = options.directory.hasPrefix("/") ? "" : "."
        for part in (options.directory + "/" + id).split(separator: "/") {
            prefix += "/" + part
            if !FileSystem.isDirectory(prefix) { try FileSystem.makeDirectory(prefix) }
        }
    }

    /// Objects fetched so far (misses) and their bytes, and hits: files a load needed and found
    /// cached and sound.
    var fetched: (fetches: Int, bytes: UInt64, hits: Int) { counters.withLock { $0 } }

    /// The local path of a file.
    func path(_ name: String) -> String { directory + "/" + name }

    /// Makes every file of `manifest` (segments and bitmaps) present and sound in the cache,
    /// fetching the missing ones, at most `parallelDownloads` at a time.
    func ensure(_ manifest: Manifest) async throws(StrataError) {
        var wanted: [(name: String, bytes: UInt64?)] = []
        for s in manifest.segments {
            wanted.append((s.name, s.fileBytes))
            if let d = s.deleteFile { wanted.append((d, nil)) }
        }
        try await ensure(wanted)
    }

    /// Makes each file present and sound (`bytes`: its expected size, when known).
    func ensure(_ files: [(name: String, bytes: UInt64?)]) async throws(StrataError) {
        let missing = files.filter { !isSound($0.name, bytes: $0.bytes) }
        counters.withLock { $0.hits += files.count - missing.count }
        guard !missing.isEmpty else { return }
        let limit = max(1, options.parallelDownloads)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = 0
                for _ in 0..<min(limit, missing.count) {
                    let f = missing[next]
                    next += 1
                    group.addTask { try await self.fetch(f.name, bytes: f.bytes) }
                }
                while try await group.next() != nil {
                    guard next < missing.count else { continue }
                    let f = missing[next]
                    next += 1
                    group.addTask { try await self.fetch(f.name, bytes: f.bytes) }
                }
            }
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError(.io, "fetching into the cache failed: \(error)", path: directory)
        }
        evict()
    }

    /// Whether the cached file `name` is usable as it is (right size, opens), removing it when not.
    private func isSound(_ name: String, bytes: UInt64?) -> Bool {
        let p = path(name)
        guard FileSystem.exists(p) else { return false }
        if checked.withLock({ $0.contains(name) }) { touch(p); return true }
        let size = (try? FileSystem.fileSize(p)) ?? 0
        var ok = bytes.map { size == $0 } ?? (size > 0)
        if ok {
            ok = name.hasPrefix("del-") ? (try? DeleteBitmap.read(path: p)) != nil : (try? Segment.open(path: p)) != nil
        }
        if ok {
            checked.withLock { _ = $0.insert(name) }
            touch(p)
        } else {
            FileSystem.removeIfPresent(p)
        }
        return ok
    }

    /// Downloads one file under a temporary name, checks it, then renames it into place.
    private func fetch(_ name: String, bytes: UInt64?) async throws(StrataError) {
        let key = layout.object(forFile: name)
        let final = path(name)
        let temp = FileSystem.temporaryPath(for: final)
        do throws(StrataError) {
            let n = try await store.download(key, toFile: temp)
            if let bytes, n != bytes {
                throw StrataError(.truncated, "object is \(n) bytes, the manifest says \(bytes)", path: store.address(of: key))
            }
            try Self.check(name: name, path: temp, address: store.address(of: key))
            try FileSystem.rename(temp, to: final)
            try FileSystem.syncParentDirectory(of: final)
        } catch {
            FileSystem.removeIfPresent(temp)
            throw error
        }
        checked.withLock { _ = $0.insert(name) }
        counters.withLock { $0.fetches += 1; $0.bytes += bytes ?? 0 }
    }

    /// Every checksum of a downloaded file; errors name the object.
    static func check(name: String, path: String, address: String) throws(StrataError) {
        do throws(StrataError) {
            if name.hasPrefix("del-") {
                _ = try DeleteBitmap.read(path: path)
            } else {
                let segment = try Segment.open(path: path)
                try segment.checkSectionChecksums(Set(SectionKind.allCases))
            }
        } catch {
            var e = error
            e.message = "object rejected by the cache: " + e.message
            e.path = address
            throw e
        }
    }

    /// Removes a cached file (damage found after it was cached); the next `ensure` fetches it again.
    func discard(_ name: String) {
        checked.withLock { _ = $0.remove(name) }
        FileSystem.removeIfPresent(path(name))
    }

    /// Marks a file as used now (eviction order is by modification time).
    private func touch(_ p: String) { _ = utimensat(AT_FDCWD, p, nil, 0) }

    /// Evicts least-recently-used files that no Version of this process references until the
    /// whole cache directory (every collection's subdirectory) is within its capacity. Another
    /// collection's evicted file is fetched again by its own cache when next needed (its check
    /// starts with the file's existence).
    func evict() {
        guard let subdirectories = try? FileSystem.list(options.directory) else { return }
        var files: [(path: String, size: UInt64, used: Int)] = []
        var total: UInt64 = 0
        for sub in subdirectories {
            let dir = options.directory + "/" + sub
            guard FileSystem.isDirectory(dir), let names = try? FileSystem.list(dir) else { continue }
            for n in names where (n.hasPrefix("seg-") || n.hasPrefix("del-")) {
                var st = stat()
                guard stat(dir + "/" + n, &st) == 0 else { continue }
                files.append((dir + "/" + n, UInt64(st.st_size), st.st_mtim.tv_sec))
                total += UInt64(st.st_size)
            }
        }
        guard total > options.capacityBytes else { return }
        for f in files.sorted(by: { $0.used < $1.used }) where total > options.capacityBytes {
            guard !FileReferences.shared.isReferenced(f.path) else { continue }
            if f.path.hasPrefix(directory + "/") {
                discard(String(f.path.dropFirst(directory.count + 1)))
            } else {
                FileSystem.removeIfPresent(f.path)
            }
            total -= f.size
        }
    }
}
