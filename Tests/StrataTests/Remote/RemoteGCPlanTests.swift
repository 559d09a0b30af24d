// The gc decision on its own (no services): what is kept and deleted, counted from which time, for
// each kind of object, and which obsolete entries the committed manifest drops.
import XCTest
@testable import Strata
@testable import StrataFormat
@testable import StrataRemote

final class RemoteGCPlanTests: XCTestCase {
    let layout = RemoteLayout(bucket: "b", prefix: "p/c")
    let hour: UInt64 = 3_600_000
    let now: UInt64 = 100 * 3_600_000

    func seg(_ name: String, bitmap: String? = nil) -> ManifestSegment {
        ManifestSegment(name: name, deleteFile: bitmap, rowCount: 10, deletedCount: bitmap == nil ? 0 : 1, fileBytes: 100, indexed: false)
    }

    func manifest(generation: UInt64, wal: UInt64, created: UInt64, segments: [ManifestSegment], obsolete: [ObsoleteFile] = []) -> Manifest {
        Manifest(generation: generation, walSequence: wal, createdMilliseconds: created, schema: SegmentSchema(dimension: 4),
                 segments: segments, obsolete: obsolete)
    }

    func object(_ key: String, age: UInt64 = 0) -> ObjectInfo {
        ObjectInfo(key: key, size: 7, etag: "e", lastModifiedMilliseconds: now - age)
    }

    func manifestKey(_ generation: UInt64) -> String { layout.manifestPrefix + RemoteLayout.padded(generation) + "-n-0000000000000001.man" }

    func decide(_ objects: [ObjectInfo], head: Manifest, pinned: [String: Manifest] = [:], grace: UInt64 = 3_600_000) -> RemoteGCPlan {
        RemoteGCPlan.make(layout: layout, objects: objects, headKey: manifestKey(head.generation), head: head, pinned: pinned,
                          now: now, graceMilliseconds: grace)
    }

    func deleted(_ plan: RemoteGCPlan) -> [String: RemoteGCReason] {
        Dictionary(uniqueKeysWithValues: plan.delete.map { ($0.object.key, $0.reason) })
    }

    func testObsoleteFilesGoOnceTheirDropTimeIsOlderThanTheGracePeriod() {
        let head = manifest(generation: 9, wal: 5, created: now - 10 * hour, segments: [seg("seg-live", bitmap: "del-live")],
                            obsolete: [ObsoleteFile(name: "seg-old", sinceMilliseconds: now - 2 * hour),
                                       ObsoleteFile(name: "del-old", sinceMilliseconds: now - 2 * hour),
                                       ObsoleteFile(name: "seg-recent", sinceMilliseconds: now - hour / 2)])
        let objects = [object(layout.collectionObject, age: 50 * hour), object(manifestKey(9), age: 10 * hour),
                       object(layout.segmentObject("seg-live"), age: 50 * hour), object(layout.bitmapObject("del-live"), age: 50 * hour),
                       object(layout.segmentObject("seg-old"), age: 50 * hour), object(layout.bitmapObject("del-old"), age: 50 * hour),
                       object(layout.segmentObject("seg-recent"), age: 50 * hour)]
        let plan = decide(objects, head: head)
        XCTAssertEqual(deleted(plan), [layout.segmentObject("seg-old"): .obsolete, layout.bitmapObject("del-old"): .obsolete])
        // The dropped entries leave the list; the recent one stays (an old Last-Modified does not matter).
        XCTAssertEqual(plan.remainingObsolete.map(\.name), ["seg-recent"])
        // An entry whose object is already gone is dropped too.
        let again = decide(objects.filter { !$0.key.hasSuffix("seg-old") && !$0.key.hasSuffix("del-old") }, head: head)
        XCTAssertEqual(again.remainingObsolete.map(\.name), ["seg-recent"])
    }

    func testWALObjectsGoByTheFlushThatRetiredThemAndStayForPins() {
        // Flushes retired WAL 1..<4 two hours ago and 4..<7 ten minutes ago; the head's sequence is 7.
        let head = manifest(generation: 5, wal: 7, created: now - hour / 6, segments: [],
                            obsolete: [ObsoleteFile(name: CollectionFiles.walName(1), sinceMilliseconds: now - 2 * hour),
                                       ObsoleteFile(name: CollectionFiles.walName(4), sinceMilliseconds: now - hour / 6)])
        let wal = (1...8).map { object(layout.walObject($0), age: 50 * hour) }
        let plan = decide(wal + [object(manifestKey(5))], head: head)
        XCTAssertEqual(Set(deleted(plan).keys), Set((1...3).map { layout.walObject($0) }))
        XCTAssertEqual(plan.remainingObsolete.map(\.name), [CollectionFiles.walName(4)])
        XCTAssertEqual(plan.minimumWALSequence, 7)

        // A pinned manifest at WAL 2 keeps 2 and up; the entry of 1 stays until its range is gone.
        let pinned = manifest(generation: 2, wal: 2, created: now - 3 * hour, segments: [])
        let withPin = decide(wal + [object(manifestKey(5)), object(manifestKey(2), age: 3 * hour)], head: head,
                             pinned: [manifestKey(2): pinned])
        XCTAssertEqual(Set(deleted(withPin).keys), [layout.walObject(1)])
        XCTAssertEqual(withPin.minimumWALSequence, 2)
        XCTAssertEqual(withPin.remainingObsolete.map(\.name), [CollectionFiles.walName(1), CollectionFiles.walName(4)])

        // WAL objects below the head that no entry covers are orphans, by Last-Modified.
        let uncovered = manifest(generation: 5, wal: 7, created: now, segments: [])
        let orphans = decide([object(layout.walObject(3), age: 2 * hour), object(layout.walObject(4), age: 0)], head: uncovered)
        XCTAssertEqual(deleted(orphans), [layout.walObject(3): .orphan])
    }

    func testOldManifestsGoTwoGenerationsBackAndOnlyAfterTheHeadIsOldEnough() {
        let objects = (1...6).map { object(manifestKey($0), age: 50 * hour) } + [object(manifestKey(8), age: 0), object(manifestKey(9), age: 2 * hour)]
        // Head 6 created two hours ago: 1...4 were replaced before it, 5 is its predecessor.
        let old = decide(objects, head: manifest(generation: 6, wal: 1, created: now - 2 * hour, segments: []))
        XCTAssertEqual(deleted(old), [manifestKey(1): .oldManifest, manifestKey(2): .oldManifest, manifestKey(3): .oldManifest,
                                      manifestKey(4): .oldManifest, manifestKey(9): .orphan])
        // Head created just now: nothing older goes yet (a reader may still be loading one).
        let young = decide(objects, head: manifest(generation: 6, wal: 1, created: now - 60_000, segments: []))
        XCTAssertEqual(deleted(young), [manifestKey(9): .orphan])
        // A pinned manifest stays whatever its generation.
        let pinned = decide(objects, head: manifest(generation: 6, wal: 1, created: now - 2 * hour, segments: []),
                            pinned: [manifestKey(2): manifest(generation: 2, wal: 1, created: 0, segments: [])])
        XCTAssertNil(deleted(pinned)[manifestKey(2)])
    }

    func testWhatAPinnedManifestNamesIsKeptAndItsEntryStays() {
        let head = manifest(generation: 4, wal: 1, created: now - 5 * hour, segments: [seg("seg-new")],
                            obsolete: [ObsoleteFile(name: "seg-a", sinceMilliseconds: now - 5 * hour),
                                       ObsoleteFile(name: "del-a", sinceMilliseconds: now - 5 * hour)])
        let pinned = manifest(generation: 3, wal: 1, created: now - 6 * hour, segments: [seg("seg-a", bitmap: "del-a")])
        let objects = [object(layout.segmentObject("seg-new"), age: 5 * hour), object(layout.segmentObject("seg-a"), age: 9 * hour),
                       object(layout.bitmapObject("del-a"), age: 9 * hour), object(manifestKey(3), age: 6 * hour), object(manifestKey(4), age: 5 * hour)]
        let plan = decide(objects, head: head, pinned: [manifestKey(3): pinned])
        XCTAssertEqual(plan.delete.count, 0)
        XCTAssertEqual(plan.remainingObsolete.map(\.name), ["seg-a", "del-a"])
        let unpinned = decide(objects, head: head)
        XCTAssertEqual(deleted(unpinned), [layout.segmentObject("seg-a"): .obsolete, layout.bitmapObject("del-a"): .obsolete])
        XCTAssertEqual(unpinned.remainingObsolete, [])
    }

    func testOrphansAndForeignObjects() {
        let head = manifest(generation: 2, wal: 1, created: now, segments: [])
        let objects = [object(layout.segmentObject("seg-crashed"), age: 2 * hour), object(layout.segmentObject("seg-uploading"), age: 1000),
                       object(layout.bitmapObject("del-lost-race"), age: 2 * hour), object(layout.root + "README", age: 90 * hour),
                       object(layout.root + "seg/nested/seg-x", age: 90 * hour), object(layout.collectionObject, age: 90 * hour)]
        let plan = decide(objects, head: head)
        XCTAssertEqual(deleted(plan), [layout.segmentObject("seg-crashed"): .orphan, layout.bitmapObject("del-lost-race"): .orphan])
        XCTAssertEqual(Set(plan.keep.filter { $0.kind == .other }.map(\.object.key)), [layout.root + "README", layout.root + "seg/nested/seg-x"])
        // A clock stepped back (a time after now) counts as just now.
        let future = decide([ObjectInfo(key: layout.segmentObject("seg-future"), size: 1, etag: "e", lastModifiedMilliseconds: now + hour)],
                            head: head, grace: 0)
        XCTAssertEqual(future.delete.count, 0)
    }
}
