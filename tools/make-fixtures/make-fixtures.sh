#!/usr/bin/env bash
# Regenerates Fixtures/v1/small.seg, Fixtures/v1/small.dump.json and Fixtures/sample/* from the
# deterministic generators in Tests/StrataTests/TestSupport.swift (GoldenV1, SampleDataset).
# See README.md next to this script before running it: the golden segment is a compatibility
# contract and must not change silently.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build --build-tests
STRATA_WRITE_FIXTURES=1 swift test --skip-build --filter 'SegmentGoldenTests/testWriteFixtures'
swift test --skip-build --filter 'SegmentGoldenTests|CLITests/testGoldenDump'
ls -l Fixtures/v1 Fixtures/sample
du -sh Fixtures
