// The head of a remote collection: the value of its etcd key `head`, the commit point of every
// change. A commit uploads its objects, writes a new manifest object, then swaps the head in one
// etcd transaction that holds only if the head's mod_revision is still the one it read.
import Foundation
import Strata
import StrataFormat

/// Which manifest is current, and how to check it (JSON in etcd).
struct RemoteHead: Sendable, Equatable, Codable {
    /// The manifest's generation.
    var generation: UInt64
    /// The manifest object's key.
    var manifest: String
    /// XXH3-64 of the manifest object's bytes, 16 hex digits.
    var checksum: String
    /// The manifest object's size.
    var bytes: UInt64
    /// The first WAL object sequence the manifest's segments do not hold: replay starts here.
    var walSequence: UInt64

    enum CodingKeys: String, CodingKey {
        case generation, manifest, checksum, bytes
        case walSequence = "wal_sequence"
    }

    /// The head of a manifest stored under `key` with these bytes.
    init(manifest: Manifest, key: String, bytes: [UInt8]) {
        generation = manifest.generation
        self.manifest = key
        checksum = Self.hex(bytes.withUnsafeBytes { Checksum.xxh3($0) })
        self.bytes = UInt64(bytes.count)
        walSequence = manifest.walSequence
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data())
    }

    /// Parses the value of the head key; `.corrupt` naming the key when it is not a head.
    static func decode(_ value: [UInt8], key: String) throws(StrataError) -> RemoteHead {
        // Generations and WAL sequences start at 1 and only count up: 0 or a value near the top
        // of the range is not something a writer made (and would overflow the next commit).
        let limit = UInt64(1) << 62
        guard value.count < 64 << 10, let head = try? JSONDecoder().decode(RemoteHead.self, from: Data(value)),
              head.manifest.utf8.count < 1024, head.checksum.count == 16,
              (1..<limit).contains(head.generation), (1..<limit).contains(head.walSequence) else {
            throw StrataError(.corrupt, "the head is not a Strata head: \(String(decoding: value.prefix(200), as: UTF8.self))",
                              path: key, section: "head")
        }
        return head
    }

    /// Checks that `bytes` are the manifest this head names, then decodes them.
    func checkedManifest(_ bytes: [UInt8], address: String) throws(StrataError) -> Manifest {
        let sum = Self.hex(bytes.withUnsafeBytes { Checksum.xxh3($0) })
        guard UInt64(bytes.count) == self.bytes, sum == checksum else {
            throw StrataError(.checksumMismatch, "manifest object is \(bytes.count) bytes with checksum \(sum); the head names \(self.bytes) bytes, \(checksum)",
                              path: address, section: "manifest")
        }
        let manifest = try bytes.withBytes { (raw) throws(StrataError) -> Manifest in try Manifest.decode(raw, path: address) }
        guard manifest.generation == generation, manifest.walSequence == walSequence else {
            throw StrataError(.corrupt, "manifest holds generation \(manifest.generation), WAL \(manifest.walSequence); the head names \(generation), \(walSequence)",
                              path: address, section: "manifest")
        }
        return manifest
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}
