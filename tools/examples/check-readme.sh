#!/usr/bin/env bash
# Checks that every README code block taken from an example equals its source. In README.md a line
#   <!-- example: tools/examples/Sources/QuickStart/main.swift library -->
# comes right before a ```swift block; the block must equal the lines of that file between
# `// README:begin library` and `// README:end`, less the begin marker's indentation.
# Exits 0 when all match, 1 naming the first block that differs (with a diff), 2 on a missing file or region.
# With --write it copies each region into its README block instead (then check again).
set -euo pipefail
cd "$(dirname "$0")/../.."
readme=README.md
write=false; [ "${1:-}" = --write ] && write=true
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
checked=0
while IFS= read -r spec; do
  file=$(awk '{print $1}' <<<"$spec"); name=$(awk '{print $2}' <<<"$spec")
  [ -f "$file" ] || { echo "check-readme: $file (named in $readme) does not exist" >&2; exit 2; }
  # The region, dedented by the begin marker's indentation.
  awk -v name="$name" '
    $0 ~ "^[ \t]*// README:begin " name "[ \t]*$" { inside = 1; match($0, /^[ \t]*/); indent = RLENGTH; next }
    inside && $0 ~ /^[ \t]*\/\/ README:end[ \t]*$/ { inside = 0; found = 1; exit }
    inside { print substr($0, 1, indent) ~ /^[ \t]*$/ ? substr($0, indent + 1) : $0 }
    END { if (!found) exit 3 }' "$file" > "$tmp/source" \
    || { echo "check-readme: no region '$name' (// README:begin $name ... // README:end) in $file" >&2; exit 2; }
  # The README block after the marker comment.
  awk -v spec="<!-- example: $spec -->" '
    $0 == spec { armed = 1; next }
    armed == 1 && /^```swift[ \t]*$/ { armed = 2; next }
    armed == 1 { exit 3 }
    armed == 2 && /^```[ \t]*$/ { found = 1; exit }
    armed == 2 { print }
    END { if (!found) exit 3 }' "$readme" > "$tmp/readme" \
    || { echo "check-readme: no \`\`\`swift block right after '<!-- example: $spec -->' in $readme" >&2; exit 2; }
  if $write; then
    awk -v spec="<!-- example: $spec -->" -v src="$tmp/source" '
      $0 == spec { print; armed = 1; next }
      armed == 1 && /^```swift[ \t]*$/ { print; while ((getline l < src) > 0) print l; armed = 2; next }
      armed == 2 && /^```[ \t]*$/ { armed = 0 }
      armed == 2 { next }
      { print }' "$readme" > "$tmp/new" && cat "$tmp/new" > "$readme"
    cp "$tmp/source" "$tmp/readme"
  fi
  if ! diff -u --label "$readme ($name)" --label "$file ($name)" "$tmp/readme" "$tmp/source" >&2; then
    echo "check-readme: the README block '$name' differs from $file (diff above: - README, + source);" \
         "copy the region into the README: bash tools/examples/check-readme.sh --write" >&2
    exit 1
  fi
  checked=$((checked + 1))
done < <(sed -n 's/^<!-- example: \(.*[^ ]\) *-->$/\1/p' "$readme")
[ "$checked" -gt 0 ] || { echo "check-readme: $readme has no '<!-- example: FILE REGION -->' block" >&2; exit 2; }
echo "check-readme: $checked README code block(s) equal their example sources"
