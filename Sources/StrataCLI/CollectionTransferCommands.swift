// `strata push DIR s3://…` and `strata pull s3://… DIR`: whole collections between a local
// directory and an object store (RemoteTransfer), with one output for both.
import ArgumentParser
import Foundation
import Strata
import StrataFormat
import StrataRemote

/// What `push` and `pull` print.
struct TransferOutput: Encodable {
    var from: String; var to: String; var generation: UInt64; var segments: Int; var bitmaps: Int; var segment_rows: UInt64
    var wal_records: Int; var wal_objects: Int; var bytes: UInt64; var seconds: Double; var mb_per_s: Double

    init(from: String, to: String, _ s: TransferSummary) {
        self.from = from
        self.to = to
        generation = s.generation
        segments = s.segments
        bitmaps = s.bitmaps
        segment_rows = s.segmentRows
        wal_records = s.walRecords
        wal_objects = s.walObjects
        bytes = s.bytes
        seconds = s.seconds
        mb_per_s = s.megabytesPerSecond
    }

    func print(json: Bool, verb: String) throws {
        if json { try printJSON(self); return }
        Swift.print(String(format: "%@ %@ -> %@: generation %llu, %d segments (%llu rows), %d bitmaps, %d WAL records; %@ in %.2f s (%.1f MB/s)",
                           verb, from, to, generation, segments, segment_rows, bitmaps, wal_records, formatBytes(bytes), seconds, mb_per_s))
    }
}

/// `strata push DIR s3://BUCKET/PATH`: publishes a local collection as a new remote one.
struct CollectionPushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Publish a local collection as a new collection in an object store (one manifest version, with its WAL).",
        discussion: """
        Every segment and bitmap is checked before it is uploaded (a damaged file is refused, exit 1, nothing committed); the WAL's records become one WAL object; the head is created last, only where there is none (exit 1 when a collection exists at the address). A push that dies leaves only orphans (removed by `strata gc`); run again, it reuses what it uploaded.
        """)

    @Argument(help: "The local collection directory.")
    var directory: String

    @Argument(help: "Where to publish it, s3://BUCKET/PATH.")
    var address: String

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @OptionGroup var remote: RemoteFlags

    func validate() throws {
        guard !S3Address.isAddress(directory) else {
            throw ValidationError("push copies a local directory to s3://BUCKET/PATH: the first argument must be a directory")
        }
        guard S3Address.isAddress(address) else { throw ValidationError("push needs s3://BUCKET/PATH as its second argument") }
    }

    func run() async throws {
        guard case .local(let path) = try CollectionLocation(directory), case .remote(let target) = try CollectionLocation(address) else {
            return  // validate() has checked both
        }
        let s = try await RemoteTarget.with(target, flags: remote) { t in
            try await RemoteTransfer(store: t.s3, metadata: t.etcd, options: t.options).push(localDirectory: path, to: t.layout)
        }
        try TransferOutput(from: directory, to: address, s).print(json: json, verb: "pushed")
    }
}

/// `strata pull s3://BUCKET/PATH DIR`: a consistent local copy of one remote generation.
struct CollectionPullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Copy the current generation of a collection in an object store (and the writes after it) into a new local directory.",
        discussion: """
        The generation is pinned while the copy runs, so `strata gc` keeps its objects. Every object is checked (a damaged one is refused, exit 1, and what was written is removed). The directory must be empty or absent (exit 1 otherwise); its MANIFEST is written last, so an interrupted pull never leaves a directory that opens as a partial collection.
        """)

    @Argument(help: "The collection, s3://BUCKET/PATH.")
    var address: String

    @Argument(help: "A new (empty or absent) local directory.")
    var directory: String

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @OptionGroup var remote: RemoteFlags

    func validate() throws {
        guard S3Address.isAddress(address) else {
            throw ValidationError("pull copies s3://BUCKET/PATH to a local directory: the first argument must be an s3:// address")
        }
        guard !S3Address.isAddress(directory) else {
            throw ValidationError("pull writes a local directory: the second argument must not be an s3:// address")
        }
    }

    func run() async throws {
        guard case .remote(let source) = try CollectionLocation(address), case .local(let path) = try CollectionLocation(directory) else {
            return  // validate() has checked both
        }
        let s = try await RemoteTarget.with(source, flags: remote) { t in
            try await t.mapMissing { () async throws(StrataError) in
                try await RemoteTransfer(store: t.s3, metadata: t.etcd, options: t.options).pull(from: t.layout, to: path)
            }
        }
        try TransferOutput(from: address, to: directory, s).print(json: json, verb: "pulled")
    }
}
