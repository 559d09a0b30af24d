#!/usr/bin/env bash
# CI extras (fuzzing, sanitizers, soak), run by .ci/run after the README test command (bash tools/test.sh):
#   1. each libFuzzer target (tools/fuzz) for a fixed budget, seeded with the Fixtures and every
#      earlier crasher; a new crash fails CI and leaves its input in Fixtures/fuzz-regressions/;
#   2. under ThreadSanitizer: every CollectionTests case (readers on threads during writes, flushes
#      and compactions), SegmentConcurrencyTests (concurrent segment readers) and one threaded index
#      build (SegmentIndexIntegrationTests.testGraphSearchRecallVerifyAndDeterminism);
#   3. a short soak (tools/soak): writer, readers and compactions in processes with random SIGKILLs;
#   4. the whole test suite under AddressSanitizer. LeakSanitizer is off: its only reports are
#      allocations Foundation and XCTest keep until exit (Bundle.allBundles, Process, Data).
# The sanitizer runs get the real SeaweedFS and etcd the object-store tests need and the ASan run
# gets qdrant-client, as in tools/test.sh: one pair (tools/services.sh, .build-services/ci-extra), started before the first
# of those runs and stopped on exit.
# Budget on 2 cores: about 4 min of fuzzing (four targets), the TSan build and run, 30 s of soak,
# and the ASan build and run (about 6 min); see the timings it prints.
#   FUZZ_SECONDS=60 (per target), SOAK_SECONDS=20, SKIP_FUZZ=1, SKIP_TSAN=1, SKIP_SOAK=1, SKIP_ASAN=1.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
fuzz_seconds="${FUZZ_SECONDS:-60}"

services_dir=.build-services/ci-extra
services_up=0
start_services() {
    [ $services_up = 0 ] || return 0
    export STRATA_SERVICES_VENV="$PWD/.build-services/venv"
    trap 'bash tools/services.sh stop "$services_dir"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    local services_env
    services_env="$(bash tools/services.sh start "$services_dir")"
    eval "$services_env"
    services_up=1
}

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    for target in segment collection filter input; do
        bash tools/fuzz/run.sh "$target" "$fuzz_seconds"
    done
fi
fuzz_done=$(date +%s)

if [ "${SKIP_TSAN:-0}" != 1 ]; then
    swift build --build-tests --sanitize=thread --scratch-path .build-tsan
    start_services
    # The local collection's concurrency. Not the remote tier's tests: TSan cannot see the hand-off
    # of Synchronization's Mutex (a futex on Linux) between Swift concurrency tasks and reports the
    # committer queue as a race (seen here; both accesses are inside withLock). ASan runs them.
    TSAN_OPTIONS="halt_on_error=1:suppressions=$PWD/tools/tsan-suppressions.txt:${TSAN_OPTIONS:-}" swift test --skip-build --sanitize=thread --scratch-path .build-tsan \
        --filter 'Concurrency|[.]CollectionTests/|SegmentIndexIntegrationTests.testGraphSearchRecallVerifyAndDeterminism'
fi
tsan_done=$(date +%s)

if [ "${SKIP_SOAK:-0}" != 1 ]; then
    SCRATCH_PATH=.build bash tools/soak/run.sh "${SOAK_SECONDS:-20}"
fi
soak_done=$(date +%s)

if [ "${SKIP_ASAN:-0}" != 1 ]; then
    swift build --build-tests --sanitize=address --scratch-path .build-asan
    start_services
    # The serving tests drive `strata serve` with qdrant-client, as in tools/test.sh (CI=true makes
    # a missing client a failure, not a skip).
    STRATA_TEST_QDRANT_PYTHON="$(bash tools/qdrant-client.sh)"
    export STRATA_TEST_QDRANT_PYTHON
    ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" swift test --skip-build --sanitize=address --scratch-path .build-asan
fi
end=$(date +%s)
echo "ci-extra: fuzz $((fuzz_done - start)) s, tsan $((tsan_done - fuzz_done)) s, soak $((soak_done - tsan_done)) s, asan $((end - soak_done)) s, total $((end - start)) s"
