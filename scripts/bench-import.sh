#!/usr/bin/env bash
# Times `hamgate import --addr` of a blog's history into a running server, as docs/BENCHMARKS.md
# reports ("Importing a blog's history"): a deterministic 10,000-comment JSONL file (every tenth
# spam), a release server on a free loopback port with the embedded stores, a file label log and
# an admin key, then the import, timed from the command's start to its exit (parsing, streaming,
# every label durable in the log and learned). Checks afterwards that the log holds every label
# and that a second import appends nothing. Not part of CI; bounded in time, stops by itself.
#
#   scripts/bench-import.sh [COMMENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
H=target/release/hamgate
cargo build --release --quiet

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR=$(mktemp -d)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

# The history: deterministic, no randomness, distinct texts (keys come from the content).
python3 - "$N" >"$DIR/history.jsonl" <<'PY'
import json, sys
n = int(sys.argv[1])
topics = ["borrow checking", "async traits", "error handling", "lifetimes", "cargo features"]
for i in range(n):
    if i % 10 == 0:
        rec = {"content": f"Cheap replica watches and pills {i}, best prices, order now at http://shop{i % 97}.example/deal",
               "label": "spam", "author": f"Deals {i}", "ip": f"203.0.113.{i % 250}"}
    else:
        rec = {"content": f"Thanks for the post on {topics[i % 5]}, comment {i}: the second example finally made it click for me",
               "label": "ham", "author": f"Reader {i}", "email": f"reader{i}@example.org", "ip": f"192.0.2.{i % 250}"}
    print(json.dumps(rec))
PY

ADMIN_KEY=bench-import-admin-key
PORT=$(free_port)
HTTP_PORT=$(free_port)
HAMGATE_LOG=warn HAMGATE_LABEL_LOG="$DIR/labels.log" \
    HAMGATE_ADMIN_KEY_SHA256=$("$H" hash-key "$ADMIN_KEY") \
    "$H" serve --grpc-addr "127.0.0.1:$PORT" --http-addr "127.0.0.1:$HTTP_PORT" >"$DIR/serve.log" 2>&1 &
SERVER_PID=$!
"$H" health --addr "127.0.0.1:$PORT" --wait 10 >/dev/null

echo "== importing $N comments into a running server (embedded mode, file label log)"
echo "\$ HAMGATE_API_KEY=... $H import --site default --addr 127.0.0.1:$PORT history.jsonl"
t0=$(date +%s%N)
HAMGATE_LOG=warn HAMGATE_API_KEY="$ADMIN_KEY" timeout 120 "$H" import --site default --addr "127.0.0.1:$PORT" "$DIR/history.jsonl"
t1=$(date +%s%N)
echo "import time (command start to exit, every label durable): $(( (t1 - t0) / 1000000 )) ms"

echo "== again (idempotent)"
t0=$(date +%s%N)
HAMGATE_LOG=warn HAMGATE_API_KEY="$ADMIN_KEY" timeout 120 "$H" import --site default --addr "127.0.0.1:$PORT" "$DIR/history.jsonl"
t1=$(date +%s%N)
echo "second import time: $(( (t1 - t0) / 1000000 )) ms"

kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
# The log, read back after the server stopped: every label there once.
python3 - "$DIR/labels.log" "$N" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"HGLABELS", "not a label log"
pos, frames = 16, 0
while pos + 20 <= len(data):
    assert data[pos:pos + 4] == b"HGL2", f"bad frame at {pos}"
    (length,) = struct.unpack_from("<I", data, pos + 4)
    pos += 20 + length
    frames += 1
print(f"label log: {frames} records, {len(data)} bytes")
assert frames == int(sys.argv[2]), f"expected {sys.argv[2]} records"
PY
