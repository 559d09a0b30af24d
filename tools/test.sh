#!/usr/bin/env bash
# The test command: installs missing Debian packages, builds everything (the CLI tests run the
# built `strata` binary) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/ensure-deps.sh
swift build --build-tests
swift test --skip-build "$@"
