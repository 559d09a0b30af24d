#!/usr/bin/env bash
# Builds and runs one libFuzzer target for a fixed time.
#   tools/fuzz/run.sh segment|collection|filter|input SECONDS [extra libFuzzer flags...]
# Seeds: Fixtures/v1*/ *.seg and a segment with an ANN index and all search sections (written by the
# target itself) for `segment`; the template collection's MANIFEST, WAL and bitmap
# (written by the target itself) for `collection`; filter texts (written by the target itself) for
# `filter`; valid build/insert inputs (written by the target itself) for `input`; plus every earlier crasher. The working corpus is
# tools/fuzz/corpus/<target> (ignored). A crash makes this script fail and leaves the input in
# Fixtures/fuzz-regressions/<target>/, which Tests/StrataTests/Tools/FuzzRegressionTests.swift replays.
# Prints one summary line: `fuzz <target>: <runs> runs in <s> s, <n> crashes`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${1:?usage: run.sh segment|collection|filter|input SECONDS}"
seconds="${2:?usage: run.sh segment|collection|filter|input SECONDS}"
shift 2
case "$target" in
    segment) exe=FuzzSegment ;;
    collection) exe=FuzzCollection ;;
    filter) exe=FuzzFilter ;;
    input) exe=FuzzInput ;;
    *) echo "unknown target '$target' (segment, collection, filter, input)" >&2; exit 2 ;;
esac
cd "$here"
swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --product "$exe" 2>&1 | grep -v "Cannot export local symbol" >&2
bin="$(swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --show-bin-path)/$exe"

corpus="$here/corpus/$target"
regressions="$root/Fixtures/fuzz-regressions/$target"
seeds="$here/corpus/$target-seeds"
crashes="$here/artifacts/$target"
rm -rf "$crashes"
mkdir -p "$corpus" "$regressions" "$seeds" "$crashes"
if [ "$target" = segment ]; then
    cp "$root"/Fixtures/v1*/*.seg "$seeds/"
    # Plus a segment with an ANN index and every search section (no fixture has both).
    ASAN_OPTIONS=detect_leaks=0 STRATA_FUZZ_WRITE_SEEDS="$seeds" "$bin" >/dev/null
else
    ASAN_OPTIONS=detect_leaks=0 STRATA_FUZZ_WRITE_SEEDS="$seeds" "$bin" >/dev/null
fi

# The collection harness writes, fsyncs and renames files for every input (a copy of the template, WAL
# side files, recovery copies): in tmpfs it runs about four times as many inputs as on disk.
if [ "$target" = collection ] && [ -z "${TMPDIR:-}" ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi

log="$here/artifacts/$target.log"
set +e
# -fork=1 with -ignore_crashes keeps fuzzing after a crash and collects every crasher (each input runs
# in a child job); ASan leak checks are off because process-wide caches outlive one input; the Swift
# backtracer is off so that a trap reaches libFuzzer as a plain crash.
SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" "$bin" \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
    -artifact_prefix="$crashes/" "$@" "$corpus" "$seeds" "$regressions" >"$log" 2>&1
status=$?
set -e
# Fork mode reports progress as "#<runs>: cov: ... crash: ... time: ..." lines; take the last one.
runs="$(grep -oE '^#[0-9]+: cov' "$log" | tail -1 | grep -oE '[0-9]+')"
found=0
for f in "$crashes"/crash-* "$crashes"/timeout-* "$crashes"/oom-*; do
    [ -e "$f" ] || continue
    name="$(basename "$f")"
    if [ ! -e "$regressions/$name" ]; then cp "$f" "$regressions/$name"; fi
    found=$((found + 1))
done
echo "fuzz $target: ${runs:-?} runs in $seconds s, $found crash inputs (exit $status; log $log)"
if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
    tail -60 "$log" >&2
    exit 1
fi
