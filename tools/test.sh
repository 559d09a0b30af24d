#!/usr/bin/env bash
# The test command: installs missing Debian packages, builds everything (the CLI tests run the
# built `strata` binary), builds the documentation without warnings and runs the whole test suite;
# then the README's examples: the library code blocks must equal tools/examples' sources, the
# examples package (its own build directory, tools/examples/.build) must build and both programs
# run, and the README's CLI blocks must run against Fixtures/sample. The object-store tests run
# against a real SeaweedFS and etcd that this script starts (tools/services.sh: installed when
# missing, free loopback ports, their own directory .build-services/test) and stops on exit; the
# serving tests also run qdrant-client 1.20.0 (tools/qdrant-client.sh installs it into a venv).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/ensure-deps.sh
swift build --build-tests
# The DocC catalog (Sources/Strata/Strata.docc) and every public symbol's doc comment of the four
# library layers (with the object-store tier), as one combined archive: a broken symbol link or an undocumented parameter fails
# here (about 10-20 s). DocC cannot link across modules, so a doc comment names another layer's
# type in code voice.
swift package generate-documentation --target StrataFormat --target StrataIndex --target Strata --target StrataRemote \
    --enable-experimental-combined-documentation --warnings-as-errors
# The services stop on any exit: success, failure or interrupt (they run in their own session, so
# a Ctrl-C does not reach them). The assignment keeps a failed start fatal (set -e).
services_dir=.build-services/test
export STRATA_SERVICES_VENV="$PWD/.build-services/venv"
trap 'bash tools/services.sh stop "$services_dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
services_env="$(bash tools/services.sh start "$services_dir")"
eval "$services_env"
# The serving tests drive `strata serve` with the real qdrant-client (PyPI) too.
STRATA_TEST_QDRANT_PYTHON="$(bash tools/qdrant-client.sh)"
export STRATA_TEST_QDRANT_PYTHON
swift test --skip-build "$@"
bash tools/examples/check-readme.sh
swift build --package-path tools/examples
swift run --skip-build --package-path tools/examples QuickStart
swift run --skip-build --package-path tools/examples LongRunning
bash tools/examples/run-readme-cli.sh .build/debug/strata Fixtures/sample
