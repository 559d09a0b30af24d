#!/usr/bin/env bash
# Runs the README's CLI examples. Every ```sh block of README.md must come right after a marker line:
#   <!-- cli: run -->            the block runs here
#   <!-- cli: skip (REASON) -->  it does not (the reason is printed)
# A run block's lines (`\` continuations joined) run one at a time, in order, in one scratch
# directory shared by all blocks, with `S` the strata binary and `D` the sample dataset; the
# block's own `S=...` / `D=...` lines (and a `swift build ... &&` before them) are left out, and so
# are bracketed options (`[--json]`, `[--a | --b]`, nested) outside quotes. A line that exits
# non-zero stops the run: its command, exit code and output are printed, and the script exits 1.
# Usage: run-readme-cli.sh [STRATA_BINARY [DATASET_DIR]]   (default .build/debug/strata, Fixtures/sample)
set -euo pipefail
cd "$(dirname "$0")/../.."
S=$(realpath "${1:-.build/debug/strata}")
D=$(realpath "${2:-Fixtures/sample}")
[ -x "$S" ] || { echo "run-readme-cli: $S is not an executable (build it first: swift build)" >&2; exit 2; }
[ -f "$D/base.fvecs" ] || { echo "run-readme-cli: $D has no base.fvecs" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export S D

# One command per line, "BLOCK<TAB>COMMAND", or "SKIP<TAB>BLOCK<TAB>REASON"; exits 3 on an unmarked block.
extract() {
  awk '
    function strip(s,   out, i, c, q, depth) {   # drops [...] outside quotes, nested
      out = ""; q = ""; depth = 0
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (q != "") { if (c == q) q = ""; if (depth == 0) out = out c; continue }
        if (c == "#" && depth == 0 && (i == 1 || substr(s, i - 1, 1) ~ /[ \t]/)) { out = out substr(s, i); break }
        if (c == "\"" || c == "\047") { q = c; if (depth == 0) out = out c; continue }
        if (c == "[") { depth++; continue }
        if (c == "]" && depth > 0) { depth--; continue }
        if (depth == 0) out = out c
      }
      gsub(/[ \t]+/, " ", out); sub(/^ /, "", out); sub(/ $/, "", out)
      return out
    }
    /^```sh[ \t]*$/ {
      block++
      if (prev ~ /^<!-- cli: run -->$/) { mode = "run" }
      else if (prev ~ /^<!-- cli: skip .*-->$/) { mode = "skip"; r = prev; sub(/^<!-- cli: skip /, "", r); sub(/ *-->$/, "", r); print "SKIP\t" block "\t" r }
      else { print "README.md line " NR ": a ```sh block without <!-- cli: run --> or <!-- cli: skip (REASON) --> before it" > "/dev/stderr"; bad = 1; exit 3 }
      inside = 1; pending = ""; next
    }
    inside && /^```[ \t]*$/ { inside = 0; next }
    inside && mode == "run" {
      line = $0
      if (line ~ /\\[ \t]*$/) { sub(/\\[ \t]*$/, "", line); pending = pending line " "; next }
      line = pending line; pending = ""
      cmd = strip(line)
      if (cmd ~ /^(swift build[^&]*&& *)?S=/ || cmd ~ /^D=/ || cmd ~ /^(#.*)?$/) next
      print block "\t" cmd
      next
    }
    { if ($0 !~ /^[ \t]*$/) prev = $0 }
  ' README.md
}

commands=$(extract) || exit 2
ran=0
while IFS=$'\t' read -r block cmd rest; do
  if [ "$block" = SKIP ]; then echo "run-readme-cli: block $cmd not run: $rest"; continue; fi
  echo "run-readme-cli: block $block: $cmd"
  set +e
  (cd "$work" && bash -c "set -euo pipefail; $cmd") > "$work/.out" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "run-readme-cli: FAILED with exit $rc (README block $block): $cmd" >&2
    tail -n 30 "$work/.out" >&2
    exit 1
  fi
  ran=$((ran + 1))
done <<<"$commands"
[ "$ran" -gt 0 ] || { echo "run-readme-cli: no command ran" >&2; exit 2; }
echo "run-readme-cli: $ran README command line(s) exited 0"
