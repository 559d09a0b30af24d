#!/usr/bin/env bash
# CI extras for issue 6, run by .ci/run after the README test command (bash tools/test.sh):
#   1. each libFuzzer target (tools/fuzz) for a fixed budget, seeded with the Fixtures and every
#      earlier crasher; a new crash fails CI and leaves its input in Fixtures/fuzz-regressions/;
#   2. under ThreadSanitizer: every CollectionTests case (readers on threads during writes, flushes
#      and compactions), SegmentConcurrencyTests (concurrent segment readers) and one threaded index
#      build (SegmentIndexIntegrationTests.testGraphSearchRecallVerifyAndDeterminism).
# Budget on 2 cores: about 2 min of fuzzing plus the TSan build and run; see the timings it prints.
#   FUZZ_SECONDS=60 (per target), SKIP_FUZZ=1, SKIP_TSAN=1 to change or skip a part.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
fuzz_seconds="${FUZZ_SECONDS:-60}"

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    for target in segment collection; do
        bash tools/fuzz/run.sh "$target" "$fuzz_seconds"
    done
fi
fuzz_done=$(date +%s)

if [ "${SKIP_TSAN:-0}" != 1 ]; then
    swift build --build-tests --sanitize=thread --scratch-path .build-tsan
    TSAN_OPTIONS="halt_on_error=1:${TSAN_OPTIONS:-}" swift test --skip-build --sanitize=thread --scratch-path .build-tsan \
        --filter 'Concurrency|CollectionTests|SegmentIndexIntegrationTests.testGraphSearchRecallVerifyAndDeterminism'
fi
end=$(date +%s)
echo "ci-extra: fuzz $((fuzz_done - start)) s, tsan $((end - fuzz_done)) s, total $((end - start)) s"
