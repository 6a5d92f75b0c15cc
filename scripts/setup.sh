#!/usr/bin/env sh
# The one set-up command (README, and CI through .ci/run): the pinned Python packages, and redis-server for
# the multi-replica test where Debian's apt is available (elsewhere that test is skipped, saying why).
set -eu
cd "$(dirname "$0")/.."
python -m pip install -r requirements-dev.txt
if ! command -v redis-server >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get install -y -q redis-server >/dev/null || { apt-get update -q && apt-get install -y -q redis-server; }
    else
        echo "note: redis-server is not installed; install it (e.g. sudo apt install redis-server) to run the" \
             "multi-replica test, which is skipped without it" >&2
    fi
fi
