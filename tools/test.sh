#!/usr/bin/env bash
# The test command: installs missing Debian packages, builds everything (the CLI tests run the
# built `strata` binary), builds the documentation without warnings and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/ensure-deps.sh
swift build --build-tests
# The DocC catalog (Sources/Strata/Strata.docc) and every public symbol's doc comment: a broken
# symbol link or an undocumented parameter fails here (about 5-10 s).
swift package generate-documentation --target Strata --warnings-as-errors
swift test --skip-build "$@"
