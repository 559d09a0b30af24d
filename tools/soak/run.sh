#!/usr/bin/env bash
# Soak run for collections: one writer, N readers and `strata compact` runs in parallel
# processes, random SIGKILLs, and after each writer kill a check that every acknowledged write is
# there exactly once, that search matches an exact reference, and that `strata verify` passes.
#
#   tools/soak/run.sh [SECONDS=120] [WORKDIR=a new temporary directory]
#
# Environment: SOAK_READERS (2), SOAK_MAX_ROWS (20000), SOAK_KILL_INTERVAL (mean seconds between
# kills, 1.5), SOAK_SEED (1), SOAK_CONFIG (debug | release; debug), SOAK_KEEP=1 keeps the work
# directory after a passing run (a failing run always keeps it).
# Prints one summary line and a JSON document on stdout (progress on stderr); exits 1 if any
# acknowledged row was lost or duplicated, a search mismatched, verify failed or a process failed.
# The supervisor is `strata-soak soak` (tools/soak/Sources/StrataSoak/SoakDriverCommand+Soak.swift), a
# test-rig executable of the package kept out of the `strata` product; it runs `strata compact` and
# `strata verify` from the same build directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-120}"
work="${2:-}"
config="${SOAK_CONFIG:-debug}"
scratch=()
if [[ -n "${SCRATCH_PATH:-}" ]]; then scratch=(--scratch-path "$SCRATCH_PATH"); fi
swift build -c "$config" "${scratch[@]}" --product strata >&2
swift build -c "$config" "${scratch[@]}" --product strata-soak >&2
bindir="$(swift build -c "$config" "${scratch[@]}" --show-bin-path)"
if [[ -z "$work" ]]; then
    work="$(mktemp -d "${TMPDIR:-/tmp}/strata-soak.XXXXXX")"
else
    mkdir -p "$work"
    if [[ -n "$(ls -A "$work")" ]]; then echo "work directory $work is not empty" >&2; exit 2; fi
fi
echo "soak: ${seconds} s in $work ($config build)" >&2
status=0
"$bindir/strata-soak" soak "$work" --strata "$bindir/strata" --seconds "$seconds" \
    --readers "${SOAK_READERS:-2}" --max-rows "${SOAK_MAX_ROWS:-20000}" \
    --mean-kill-interval "${SOAK_KILL_INTERVAL:-1.5}" --seed "${SOAK_SEED:-1}" || status=$?
if [[ $status -eq 0 && -z "${SOAK_KEEP:-}" && -z "${2:-}" ]]; then
    rm -rf "$work"
else
    echo "soak: work directory kept: $work (journal.log, logs/, coll/)" >&2
fi
exit $status
