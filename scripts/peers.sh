#!/usr/bin/env bash
# Install what scripts/peers.py needs (scikit-learn from PyPI, bogofilter from
# Debian), then run it with the given arguments. Not part of CI: the machines
# are not guaranteed to keep hand-installed packages between sessions, so this
# is the one place that knows how to get them back.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if ! python3 -c 'import sklearn' 2>/dev/null; then
    python3 -m pip install --quiet scikit-learn >&2
fi
if ! command -v bogofilter >/dev/null 2>&1; then
    apt-get update >&2
    apt-get install -y bogofilter >&2
fi

exec python3 "$here/peers.py" "$@"
