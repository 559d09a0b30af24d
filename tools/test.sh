#!/usr/bin/env bash
# The test command: installs missing Debian packages, builds everything (the CLI tests run the
# built `strata` binary), builds the documentation without warnings and runs the whole test suite;
# then the README's examples: the library code blocks must equal tools/examples' sources, the
# examples package (its own build directory, tools/examples/.build) must build and both programs
# run, and the README's CLI blocks must run against Fixtures/sample.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/ensure-deps.sh
swift build --build-tests
# The DocC catalog (Sources/Strata/Strata.docc) and every public symbol's doc comment of the three
# library layers, as one combined archive: a broken symbol link or an undocumented parameter fails
# here (about 10-20 s). DocC cannot link across modules, so a doc comment names another layer's
# type in code voice.
swift package generate-documentation --target StrataFormat --target StrataIndex --target Strata \
    --enable-experimental-combined-documentation --warnings-as-errors
swift test --skip-build "$@"
bash tools/examples/check-readme.sh
swift build --package-path tools/examples
swift run --skip-build --package-path tools/examples QuickStart
swift run --skip-build --package-path tools/examples LongRunning
bash tools/examples/run-readme-cli.sh .build/debug/strata Fixtures/sample
