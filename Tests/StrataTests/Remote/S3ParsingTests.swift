// The S3 client's parsers, without a server: endpoint and configuration checks, `s3://` addresses,
// the environment, the XML reader (including hostile documents), S3's answers and timestamps.
import XCTest
@testable import StrataFormat
@testable import StrataRemote

final class S3ParsingTests: XCTestCase {
    func expectError<T>(_ code: StrataError.Code, _ body: () throws -> T, _ contains: String? = nil,
                        file: StaticString = #filePath, line: UInt = #line) {
        do {
            let value = try body()
            XCTFail("expected \(code), got \(value)", file: file, line: line)
        } catch let error as StrataError {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            if let contains { XCTAssertTrue(error.message.contains(contains), "\(error)", file: file, line: line) }
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
        }
    }

    // MARK: - Configuration

    func config(_ endpoint: String, bucket: String = "strata") throws -> S3Configuration {
        try S3Configuration(endpoint: endpoint, bucket: bucket, accessKey: "a", secretKey: "s")
    }

    func testEndpointsAreParsed() throws {
        let c = try config("http://127.0.0.1:8333")
        XCTAssertEqual([c.scheme, c.host, c.hostHeader, c.endpoint], ["http", "127.0.0.1", "127.0.0.1:8333", "http://127.0.0.1:8333"])
        XCTAssertEqual(c.port, 8333)
        XCTAssertEqual(c.region, "us-east-1")
        XCTAssertEqual(c.partSize, 8 << 20)
        XCTAssertEqual(c.parallelParts, 4)
        XCTAssertEqual(c.retries, 4)
        XCTAssertEqual(c.requestTimeoutSeconds, 30)
        XCTAssertTrue(c.pathStyle)
        let s = try config("HTTPS://S3.Example.com/")
        XCTAssertEqual([s.scheme, s.host, s.hostHeader], ["https", "s3.example.com", "s3.example.com"])
        XCTAssertEqual(s.port, 443)
        let v6 = try config("http://[::1]:9000")
        XCTAssertEqual([v6.host, v6.hostHeader], ["::1", "[::1]:9000"])
        var virtual = try config("http://s3.local:80")
        virtual.pathStyle = false
        XCTAssertEqual(virtual.requestHost, "strata.s3.local")
    }

    func testBadEndpointsAreRefused() {
        for bad in ["", "127.0.0.1:8333", "ftp://host", "http://", "http://host:0", "http://host:65536", "http://host:x",
                    "http://host/path", "http://user@host", "http://host?x=1", "http://ho st", "http://[::1", "http://host\n"] {
            expectError(.invalidArgument, { try self.config(bad) })
        }
    }

    func testBadSettingsAreRefused() {
        expectError(.invalidArgument, { try self.config("http://h:1", bucket: "A") }, "bucket")
        expectError(.invalidArgument, { try S3Configuration(endpoint: "http://h:1", bucket: "strata", accessKey: "", secretKey: "s") }, "AWS_ACCESS_KEY_ID")
        expectError(.invalidArgument, { try S3Configuration(endpoint: "http://h:1", bucket: "strata", accessKey: "a", secretKey: "s", partSize: 1 << 20) }, "part size")
        expectError(.invalidArgument, { try S3Configuration(endpoint: "http://h:1", bucket: "strata", accessKey: "a", secretKey: "s", parallelParts: 0) })
        expectError(.invalidArgument, { try S3Configuration(endpoint: "http://h:1", bucket: "strata", accessKey: "a", secretKey: "s", requestTimeoutSeconds: .nan) })
        expectError(.invalidArgument, { try S3Configuration(endpoint: "http://h:1", bucket: "strata", accessKey: "a", secretKey: "s", retries: -1) })
        expectError(.invalidArgument, { try S3Configuration(endpoint: "http://h:1", bucket: "strata", region: "us east", accessKey: "a", secretKey: "s") })
    }

    func testTheDescriptionHidesTheSecret() throws {
        let c = try S3Configuration(endpoint: "http://h:1", bucket: "strata", accessKey: "AKID", secretKey: "topsecret")
        XCTAssertTrue(c.description.contains("AKID"))
        XCTAssertFalse(c.description.contains("topsecret"))
    }

    func testTheEnvironmentIsRead() throws {
        let env = ["AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk", "STRATA_S3_ENDPOINT": "http://127.0.0.1:9"]
        let c = try S3Configuration.fromEnvironment(endpoint: nil, bucket: "strata", environment: env)
        XCTAssertEqual([c.accessKey, c.secretKey, c.region, c.endpoint], ["ak", "sk", "us-east-1", "http://127.0.0.1:9"])
        var withRegion = env
        withRegion["AWS_REGION"] = "eu-west-1"
        let d = try S3Configuration.fromEnvironment(endpoint: "http://10.0.0.1:8333", bucket: "strata", environment: withRegion)
        XCTAssertEqual([d.region, d.endpoint], ["eu-west-1", "http://10.0.0.1:8333"])
        expectError(.invalidArgument, { try S3Configuration.fromEnvironment(endpoint: nil, bucket: "strata", environment: [:]) }, "STRATA_S3_ENDPOINT")
        expectError(.invalidArgument, { try S3Configuration.fromEnvironment(endpoint: "http://h:1", bucket: "strata", environment: ["AWS_ACCESS_KEY_ID": "ak"]) },
                    "AWS_SECRET_ACCESS_KEY")
        expectError(.invalidArgument, { try S3Configuration.fromEnvironment(endpoint: "http://h:1", bucket: "strata", environment: ["AWS_ACCESS_KEY_ID": " "]) },
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    }

    // MARK: - Addresses

    func testAddressesAreParsedAndNormalised() throws {
        let a = try S3Address(parsing: "s3://strata/collections/movies")
        XCTAssertEqual([a.bucket, a.path, a.description, a.key("head")], ["strata", "collections/movies", "s3://strata/collections/movies", "collections/movies/head"])
        XCTAssertEqual(try S3Address(parsing: "s3://strata//a//b/").path, "a/b")
        let root = try S3Address(parsing: "s3://my.bucket-1")
        XCTAssertEqual([root.path, root.description, root.key("x")], ["", "s3://my.bucket-1", "x"])
        XCTAssertEqual(try S3Address(parsing: "s3://abc/").path, "")
        XCTAssertTrue(S3Address.isAddress("s3://x"))
        XCTAssertFalse(S3Address.isAddress("/data/s3://x"))
    }

    func testHostileAddressesAreRefused() {
        let long = String(repeating: "a", count: 600)
        for bad in ["", "s3:/x/y", "S3://strata/x", "s3://", "s3:///path", "s3://ab/x", "s3://Strata/x", "s3://-strata/x",
                    "s3://strata-/x", "s3://str..ata/x", "s3://192.168.1.1/x", "s3://str_ata/x", "s3://strata/../x",
                    "s3://strata/a/./b", "s3://strata/a\u{0}b", "s3://strata/a\nb", "s3://strata/a\\b",
                    "s3://strata/\(long)", "s3://\(String(repeating: "b", count: 64))/x"] {
            expectError(.invalidArgument, { try S3Address(parsing: bad) })
        }
    }

    // MARK: - XML

    func parse(_ text: String) throws -> XMLElement { try S3XML.parse(Array(text.utf8), what: "s3://strata/x") }

    func testXMLIsRead() throws {
        let root = try parse("""
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- a comment -->
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>strata</Name>
              <Contents><Key>a&amp;b &lt;c&gt; &#x41;&#66; &quot;q&apos;</Key><Size>12</Size><ETag>&quot;abc&quot;</ETag>
                <LastModified>2009-10-12T17:50:30.000Z</LastModified><Empty/></Contents>
              <Contents><Key><![CDATA[<raw>]]></Key><Size>0</Size></Contents>
              <IsTruncated>true</IsTruncated><NextContinuationToken>tok/en+=</NextContinuationToken>
            </ListBucketResult>
            """)
        XCTAssertEqual(root.name, "ListBucketResult")
        let page = try ListObjectsPage(xml: root, what: "w")
        XCTAssertEqual(page.objects.map(\.key), ["a&b <c> AB \"q'", "<raw>"])
        XCTAssertEqual(page.objects[0].size, 12)
        XCTAssertEqual(page.objects[0].etag, "abc")
        XCTAssertEqual(page.objects[0].lastModifiedMilliseconds, 1_255_369_830_000)
        XCTAssertEqual(page.nextContinuationToken, "tok/en+=")
    }

    func testHostileXMLIsCorrupt() {
        let deep = String(repeating: "<a>", count: 40) + String(repeating: "</a>", count: 40)
        let many = "<r>" + String(repeating: "<a/>", count: 200_001) + "</r>"
        for bad in ["", "   ", "text", "<a>", "<a></b>", "<a><b></a></b>", "<a>&unknown;</a>", "<a>&#0;</a>", "<a>&#xD800;</a>",
                    "<a>&amp</a>", "<a x=1></a>", "<a x=\"1></a>", "<a></a><b></b>", "<a></a>trailing", "<!DOCTYPE a><a/>",
                    "<a><!DOCTYPE x></a>", "<a><!-- unterminated </a>", "<a><![CDATA[ open</a>", "<>", "</a>", "<a/ >",
                    deep, many] {
            expectError(.corrupt, { try self.parse(bad) })
        }
        expectError(.corrupt, { try S3XML.parse([0x3C, 0x61, 0x3E, 0xFF, 0xFE, 0x3C, 0x2F, 0x61, 0x3E], what: "w") }, "UTF-8")
        expectError(.corrupt, { try S3XML.parse([UInt8](repeating: 0x20, count: S3XML.maximumBytes + 1), what: "w") }, "larger")
    }

    func testS3AnswersMissingFieldsAreCorrupt() throws {
        expectError(.corrupt, { try ListObjectsPage(xml: try self.parse("<Error><Code>x</Code></Error>"), what: "w") }, "ListBucketResult")
        expectError(.corrupt, { try ListObjectsPage(xml: try self.parse("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>"), what: "w") }, "Key")
        expectError(.corrupt, { try ListObjectsPage(xml: try self.parse("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>"), what: "w") }, "Size")
        expectError(.corrupt, { try ListObjectsPage(xml: try self.parse("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"), what: "w") }, "NextContinuationToken")
        expectError(.corrupt, { try ListObjectsPage(xml: try self.parse("<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>"), what: "w") })
        expectError(.corrupt, { try S3Responses.uploadId(try self.parse("<InitiateMultipartUploadResult></InitiateMultipartUploadResult>"), what: "w") }, "UploadId")
        XCTAssertEqual(try S3Responses.uploadId(try parse("<InitiateMultipartUploadResult><UploadId>u-1</UploadId></InitiateMultipartUploadResult>"), what: "w"), "u-1")
        let uploads = try ListUploadsPage(xml: try parse("""
            <ListMultipartUploadsResult><Upload><Key>k</Key><UploadId>id</UploadId><Initiated>2020-01-01T00:00:00Z</Initiated></Upload>
            <IsTruncated>true</IsTruncated><NextKeyMarker>k</NextKeyMarker><NextUploadIdMarker>id</NextUploadIdMarker></ListMultipartUploadsResult>
            """), what: "w")
        XCTAssertEqual(uploads.uploads, [PendingUpload(key: "k", uploadId: "id", initiatedMilliseconds: 1_577_836_800_000)])
        XCTAssertEqual(uploads.next?.keyMarker, "k")
        let error = S3Responses.error(Array("<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>".utf8))
        XCTAssertEqual(error?.code, "SignatureDoesNotMatch")
        XCTAssertEqual(error?.message, "no")
        XCTAssertNil(S3Responses.error(Array("<html>bad gateway</html>".utf8)))
        XCTAssertNil(S3Responses.error([]))
    }

    func testTheStartAfterSentIsSafeForStoresThatOrderByPath() {
        XCTAssertEqual(S3Client.safeStartAfter("c/wal/00000000000000000042.log", prefix: "c/wal/"), "c/wal/0000000000000000004")
        XCTAssertEqual(S3Client.safeStartAfter("p/abc/def", prefix: "p/"), "p/abc/de")
        XCTAssertEqual(S3Client.safeStartAfter("p/abc-x", prefix: "p/"), "p/ab")
        XCTAssertEqual(S3Client.safeStartAfter("my-coll/xy", prefix: "my-coll/"), "my-coll/x")
        for nothing in ["p/a-c", "p/a/b", "p/a/-x", "p/-a", "p/", "p/a", "o/z"] {
            XCTAssertNil(S3Client.safeStartAfter(nothing, prefix: "p/"), nothing)
        }
        XCTAssertTrue(S3Client.sortsBefore("a-c", "a/b"))
        XCTAssertTrue(S3Client.sortsBefore("a/b", "a0"))
    }

    // MARK: - Time

    func testTimestampsAreParsed() {
        XCTAssertEqual(S3Time.parseISO8601("2009-10-12T17:50:30.000Z"), 1_255_369_830_000)
        XCTAssertEqual(S3Time.parseISO8601("2009-10-12T17:50:30.5Z"), 1_255_369_830_500)
        XCTAssertEqual(S3Time.parseISO8601("2009-10-12T17:50:30.123456789Z"), 1_255_369_830_123)
        XCTAssertEqual(S3Time.parseISO8601("2009-10-12T17:50:30Z"), 1_255_369_830_000)
        XCTAssertEqual(S3Time.parseHTTPDate("Mon, 12 Oct 2009 17:50:30 GMT"), 1_255_369_830_000)
        for bad in ["", "2009-10-12", "2009-13-12T17:50:30Z", "2009-10-12T17:50:30.Z", "2009-10-12T17:50:30+02:00", "x009-10-12T17:50:30Z"] {
            XCTAssertNil(S3Time.parseISO8601(bad), bad)
        }
        for bad in ["", "Mon, 12 Oct 2009 17:50:30", "Mon, 12 Foo 2009 17:50:30 GMT", "Mon, 12 Oct 2009 17:50 GMT"] {
            XCTAssertNil(S3Time.parseHTTPDate(bad), bad)
        }
        XCTAssertEqual(S3Responses.unquoted("\"abc-2\""), "abc-2")
        XCTAssertEqual(S3Responses.unquoted("W/\"abc\""), "abc")
        XCTAssertEqual(S3Responses.unquoted("abc"), "abc")
    }
}
