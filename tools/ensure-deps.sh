#!/usr/bin/env bash
# Installs the Debian packages Strata links against (liblz4-dev, libxxhash-dev) when their headers are missing.
set -euo pipefail
missing=()
[ -f /usr/include/lz4.h ] || missing+=(liblz4-dev)
[ -f /usr/include/xxhash.h ] || missing+=(libxxhash-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi
