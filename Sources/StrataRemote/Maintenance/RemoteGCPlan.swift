// What `strata gc` keeps and deletes, decided from one listing of the collection's objects, the
// head's manifest and the manifests that live pins name (a pure function: RemoteGarbageCollector
// reads the inputs and carries the decision out).
//
// Kept: collection.json; the head's manifest and everything it references; every pinned manifest
// and everything it references; WAL objects from the lowest WAL sequence of those manifests on;
// anything not named like a Strata object.
// Deleted, once the grace period has passed:
// - files the head manifest lists as obsolete, counted from the time they were dropped;
// - WAL objects below that lowest sequence, counted from the flush that dropped them (the obsolete
//   entry `wal-<s>.log` of a flush stands for the WAL objects from s up to the next entry, or to the
//   manifest's WAL sequence);
// - manifests of generations at least two below the head's, counted from the head's creation (the
//   head's predecessor waits for the next commit: it was replaced at an unknown moment, and a
//   reader may have read the old head just before);
// - orphans (uploads a crash or a lost commit race left, manifests of newer generations that never
//   became the head), counted from their Last-Modified time.
import Strata
import StrataFormat

/// The kinds of object in a remote collection.
public enum RemoteObjectKind: String, Sendable, CaseIterable, Comparable {
    /// `collection.json`.
    case collection
    /// `man/…` manifest objects.
    case manifest
    /// `seg/…` segments.
    case segment
    /// `del/…` delete bitmaps.
    case bitmap
    /// `wal/…` WAL objects.
    case wal
    /// Anything else under the prefix (never deleted).
    case other

    /// In declaration order.
    public static func < (a: RemoteObjectKind, b: RemoteObjectKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A count of objects and their bytes.
public struct ObjectTally: Sendable, Equatable {
    /// Objects.
    public var objects = 0
    /// Their bytes.
    public var bytes: UInt64 = 0

    /// Adds one object of `size` bytes.
    mutating func add(_ size: UInt64) {
        objects += 1
        bytes += size
    }
}

/// Why gc deletes an object.
public enum RemoteGCReason: String, Sendable {
    /// The head manifest lists it (or its WAL range) as obsolete, and the grace period has passed.
    case obsolete
    /// A manifest of an old generation, replaced long enough ago.
    case oldManifest = "old-manifest"
    /// Referenced by nothing, and older than the grace period.
    case orphan
}

/// The decision of one gc pass.
struct RemoteGCPlan {
    /// Objects to delete, with why.
    var delete: [(object: ObjectInfo, kind: RemoteObjectKind, reason: RemoteGCReason)] = []
    /// Objects to keep.
    var keep: [(object: ObjectInfo, kind: RemoteObjectKind)] = []
    /// The head manifest's obsolete list without the entries whose objects are all deleted (or
    /// were already gone) now.
    var remainingObsolete: [ObsoleteFile] = []
    /// The lowest WAL sequence the head and the pinned manifests need.
    var minimumWALSequence: UInt64 = 0

    /// Decides, at `now` (Unix ms), with a grace period of `graceMilliseconds`, over `objects` (one
    /// listing of the collection's prefix), for the head manifest `head` stored at `headKey` and
    /// the `pinned` manifests by key.
    static func make(layout: RemoteLayout, objects: [ObjectInfo], headKey: String, head: Manifest,
                     pinned: [String: Manifest], now: UInt64, graceMilliseconds: UInt64) -> RemoteGCPlan {
        func passed(_ since: UInt64) -> Bool { now >= since && now - since >= graceMilliseconds }
        // What the head and the pins reference.
        var referenced: Set<String> = [layout.collectionObject, headKey]
        var minimumWAL = head.walSequence
        for (key, m) in pinned { referenced.insert(key); minimumWAL = min(minimumWAL, m.walSequence) }
        for m in [head] + Array(pinned.values) {
            for s in m.segments {
                referenced.insert(layout.segmentObject(s.name))
                if let d = s.deleteFile { referenced.insert(layout.bitmapObject(d)) }
            }
        }
        // The head's obsolete list: files by object key, WAL ranges by first sequence.
        var droppedFiles: [String: UInt64] = [:]
        var walDrops: [(sequence: UInt64, since: UInt64)] = []
        for o in head.obsolete {
            if let s = walSequence(ofFileName: o.name) {
                walDrops.append((s, o.sinceMilliseconds))
            } else if o.name.hasPrefix("seg-") || o.name.hasPrefix("del-") {
                droppedFiles[layout.object(forFile: o.name)] = o.sinceMilliseconds
            }
        }
        walDrops.sort { $0.sequence < $1.sequence }
        /// When the WAL object `s` (below the head's sequence) was dropped: the entry at or below it.
        func walDropTime(_ s: UInt64) -> UInt64? {
            guard s < head.walSequence else { return nil }
            return walDrops.last { $0.sequence <= s }?.since
        }

        var plan = RemoteGCPlan()
        plan.minimumWALSequence = minimumWAL
        for info in objects {
            let kind = Self.kind(of: info.key, layout: layout)
            var reason: RemoteGCReason? = nil
            if referenced.contains(info.key) || kind == .other || kind == .collection {
                reason = nil
            } else if kind == .wal, let s = layout.walSequence(ofKey: info.key) {
                if s >= minimumWAL {
                    reason = nil
                } else if let since = walDropTime(s) {
                    reason = passed(since) ? .obsolete : nil
                } else {
                    reason = passed(info.lastModifiedMilliseconds) ? .orphan : nil
                }
            } else if let since = droppedFiles[info.key] {
                reason = passed(since) ? .obsolete : nil
            } else if kind == .manifest, let g = layout.manifestGeneration(ofKey: info.key), g < head.generation {
                // Replaced before the head was created (g <= head - 2); the head's predecessor waits.
                reason = g + 2 <= head.generation && passed(head.createdMilliseconds) && passed(info.lastModifiedMilliseconds)
                    ? .oldManifest : nil
            } else {
                reason = passed(info.lastModifiedMilliseconds) ? .orphan : nil
            }
            if let reason { plan.delete.append((info, kind, reason)) } else { plan.keep.append((info, kind)) }
        }

        // An obsolete entry is done when its grace has passed and nothing kept needs what it names.
        let kept = Set(plan.keep.map(\.object.key))
        let walEnds = zip(walDrops, walDrops.dropFirst().map(\.sequence) + [head.walSequence])
        var doneWAL = Set<UInt64>()
        for (drop, end) in walEnds where passed(drop.since) && end <= minimumWAL { doneWAL.insert(drop.sequence) }
        plan.remainingObsolete = head.obsolete.filter { o in
            guard passed(o.sinceMilliseconds) else { return true }
            if let s = walSequence(ofFileName: o.name) { return !doneWAL.contains(s) }
            guard o.name.hasPrefix("seg-") || o.name.hasPrefix("del-") else { return true }
            let key = layout.object(forFile: o.name)
            return kept.contains(key) || referenced.contains(key)
        }
        return plan
    }

    /// The kind of an object, by its key.
    static func kind(of key: String, layout: RemoteLayout) -> RemoteObjectKind {
        if key == layout.collectionObject { return .collection }
        if layout.manifestGeneration(ofKey: key) != nil { return .manifest }
        if layout.walSequence(ofKey: key) != nil { return .wal }
        func file(_ prefix: String, _ start: String) -> Bool {
            guard key.hasPrefix(prefix) else { return false }
            let name = key.dropFirst(prefix.count)
            return name.hasPrefix(start) && !name.contains("/")
        }
        if file(layout.segmentPrefix, "seg-") { return .segment }
        if file(layout.bitmapPrefix, "del-") { return .bitmap }
        return .other
    }

    /// The sequence of a local WAL file name (`wal-<20 digits>.log`), or nil.
    static func walSequence(ofFileName name: String) -> UInt64? {
        guard name.hasPrefix("wal-"), name.hasSuffix(".log") else { return nil }
        let digits = name.dropFirst(4).dropLast(4)
        guard digits.count == 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }
}
