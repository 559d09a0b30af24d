#!/usr/bin/env bash
# The real Qdrant Python client (qdrant-client 1.20.0 from PyPI) in a venv, for the tests that
# check `strata serve` against it and for a human trying the server. Installs it when missing and
# prints the venv's python on stdout (progress on stderr).
#
#   bash tools/qdrant-client.sh [VENV]     default VENV: .build-services/qdrant-venv
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$repo_root/.build-services/qdrant-venv}"
version=1.20.0
python="$venv/bin/python"
if [ -x "$python" ] && "$python" -c "import importlib.metadata as m, sys; sys.exit(m.version('qdrant-client') != '$version')" 2>/dev/null; then
    echo "$python"
    exit 0
fi
echo "qdrant-client: installing qdrant-client==$version into $venv" >&2
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check "qdrant-client==$version" >&2
echo "$python"
