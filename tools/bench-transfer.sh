#!/usr/bin/env bash
# Push and pull throughput of a local collection (RemoteTransfer, through the opt-in test
# RemoteTransferThroughputTests) beside `aws s3 cp --recursive` and boto3 moving the same files
# (the MANIFEST, segments, bitmaps and WAL the manifest names) to and from the same SeaweedFS,
# alternating Strata, aws, boto3 in each round. Prints one line per run and the medians.
#
#   eval "$(STRATA_SEAWEED_VOLUMES=64 bash tools/services.sh start)"   # room for every round's copies
#   swift build --build-tests     # or: swift build -c release --build-tests -Xswiftc -enable-testing,
#                                 #     then STRATA_BENCH_CONFIG=release
#   bash tools/bench-transfer.sh COLLECTION_DIR [ROUNDS]
#   bash tools/services.sh stop
#
# Each round writes the collection three times (Strata, aws, boto3); deleted bytes come back only
# when SeaweedFS vacuums, so the default store (8 x 64 MB) fills after one round of a 150 MB one.
#
# Strata's and boto3's times are taken inside the process (no start-up); aws's include the CLI's
# start-up, which is printed once (`aws --version`) so that it can be subtracted. Needs awscli and
# boto3 (pip). Objects go under bench-transfer-<random>/ in the bucket and are removed after each run.
set -euo pipefail

coll="${1:?usage: bash tools/bench-transfer.sh COLLECTION_DIR [ROUNDS]}"
rounds="${2:-3}"
config="${STRATA_BENCH_CONFIG:-debug}"
: "${STRATA_TEST_S3_ENDPOINT:?run eval \"\$(bash tools/services.sh start)\" first}"
bucket="${STRATA_TEST_S3_BUCKET:-strata}"
export AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
coll="$(cd "$coll" && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

# The files the current MANIFEST names, hard-linked into one directory (docs/COLLECTION-FORMAT.md C.3).
python3 - "$coll" "$stage/live" <<'PY'
import os, struct, sys
src, dst = sys.argv[1], sys.argv[2]
b = open(os.path.join(src, "MANIFEST"), "rb").read()
assert b[:8] == b"STRATMAN", "not a Strata MANIFEST"
wal, = struct.unpack_from("<Q", b, 24)
segments, = struct.unpack_from("<I", b, 40)
at = 64
schema_len, = struct.unpack_from("<I", b, at)
at += 4 + schema_len
names = ["MANIFEST", "wal-%020d.log" % wal]
def name():
    global at
    n, = struct.unpack_from("<H", b, at)
    s = b[at + 2:at + 2 + n].decode()
    at += 2 + n
    return s
for _ in range(segments):
    names.append(name())
    d = name()
    if d:
        names.append(d)
    at += 8 * 3 + 8
os.makedirs(dst)
for n in names:
    os.link(os.path.join(src, n), os.path.join(dst, n))
PY
bytes=$(du -sb "$stage/live" | cut -f1)
files=$(ls "$stage/live" | wc -l)
echo "collection $coll: $files files, $bytes bytes; $rounds rounds; Strata test build: $config"
t0=$(date +%s.%N); aws --version >/dev/null 2>&1; t1=$(date +%s.%N)
echo "aws CLI start-up: $(python3 -c "print('%.2f s' % ($t1 - $t0))")"

mbps() { python3 -c "print('%.1f' % ($bytes / ($2 - $1) / 1e6))"; }
results="$stage/results"
: > "$results"

run_strata() {
    local line
    line=$(STRATA_TRANSFER_BENCH_DIR="$coll" swift test --skip-build -c "$config" --filter RemoteTransferThroughputTests 2>&1 \
        | grep '^transfer push') || { echo "Strata run failed" >&2; exit 1; }
    echo "strata: $line"
    echo "$line" | awk '{print "strata push", $3; print "strata pull", $13}' >> "$results"
}

run_aws() {
    local prefix="bench-transfer-$RANDOM$RANDOM" down="$stage/aws-down" a b c
    rm -rf "$down"
    a=$(date +%s.%N)
    aws --endpoint-url "$STRATA_TEST_S3_ENDPOINT" s3 cp --recursive --quiet "$stage/live" "s3://$bucket/$prefix/"
    b=$(date +%s.%N)
    aws --endpoint-url "$STRATA_TEST_S3_ENDPOINT" s3 cp --recursive --quiet "s3://$bucket/$prefix/" "$down"
    c=$(date +%s.%N)
    cmp -s "$stage/live/MANIFEST" "$down/MANIFEST" || { echo "aws copy differs" >&2; exit 1; }
    aws --endpoint-url "$STRATA_TEST_S3_ENDPOINT" s3 rm --recursive --quiet "s3://$bucket/$prefix/"
    echo "aws:    up $(mbps "$a" "$b") MB/s, down $(mbps "$b" "$c") MB/s"
    echo "aws up $(mbps "$a" "$b")" >> "$results"
    echo "aws down $(mbps "$b" "$c")" >> "$results"
}

run_boto3() {
    python3 - "$stage/live" "$stage/boto3-down" "$bucket" "bench-transfer-$RANDOM$RANDOM" "$bytes" >> "$results" <<'PY'
import os, sys, time, shutil
from concurrent.futures import ThreadPoolExecutor
import boto3
from boto3.s3.transfer import TransferConfig
src, down, bucket, prefix, size = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
s3 = boto3.client("s3", endpoint_url=os.environ["STRATA_TEST_S3_ENDPOINT"])
config = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=10)
names = sorted(os.listdir(src))
shutil.rmtree(down, ignore_errors=True)
os.makedirs(down)
with ThreadPoolExecutor(4) as pool:
    a = time.monotonic()
    list(pool.map(lambda n: s3.upload_file(os.path.join(src, n), bucket, prefix + "/" + n, Config=config), names))
    b = time.monotonic()
    list(pool.map(lambda n: s3.download_file(bucket, prefix + "/" + n, os.path.join(down, n), Config=config), names))
    c = time.monotonic()
for n in names:
    s3.delete_object(Bucket=bucket, Key=prefix + "/" + n)
up, dn = size / (b - a) / 1e6, size / (c - b) / 1e6
print("boto3:  up %.1f MB/s, down %.1f MB/s" % (up, dn), file=sys.stderr)
print("boto3 up %.1f" % up)
print("boto3 down %.1f" % dn)
PY
}

for r in $(seq 1 "$rounds"); do
    echo "round $r"
    run_strata
    run_aws
    run_boto3
done
echo "medians over $rounds rounds (MB/s; $bytes bytes):"
python3 - "$results" <<'PY'
import sys, statistics
runs = {}
for line in open(sys.argv[1]):
    tool, way, v = line.split()
    runs.setdefault((tool, way), []).append(float(v))
for (tool, way), vs in runs.items():
    print("  %-6s %-4s %7.1f   (%s)" % (tool, way, statistics.median(vs), ", ".join("%.1f" % v for v in vs)))
PY
