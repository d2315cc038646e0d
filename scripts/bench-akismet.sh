#!/usr/bin/env bash
# Latency of the Akismet-compatible comment-check on loopback: a release server (open site,
# embedded store), one keep-alive HTTP/1.1 connection from Python's http.client, N requests
# each of GET /healthz (the baseline: the same HTTP stack with no work) and POST
# /1.1/comment-check (a real check: a new client IP each time, so reputation is written as in
# service). Prints p50 / p90 / p99 in milliseconds. Bounded: N requests, then it stops.
#
#   scripts/bench-akismet.sh [BINARY] [N]
set -euo pipefail
BIN="${1:-target/release/hamgate}"; N="${2:-5000}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR=$(mktemp -d); GRPC=$(free_port); HTTP=$(free_port)
HAMGATE_LABEL_LOG="$DIR/labels.log" "$BIN" serve --grpc-addr "127.0.0.1:$GRPC" \
    --http-addr "127.0.0.1:$HTTP" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
"$BIN" health --addr "127.0.0.1:$GRPC" --wait 10 >/dev/null
python3 - "$HTTP" "$N" <<'PY'
import http.client, sys, time, urllib.parse
port, n = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port)
def pct(xs):
    xs = sorted(xs)
    return [round(1000 * xs[min(len(xs) - 1, int(q * len(xs)))], 3) for q in (0.5, 0.9, 0.99)]
def run(req):
    out = []
    for i in range(n):
        t = time.perf_counter()
        conn.request(*req(i))
        r = conn.getresponse(); r.read()
        out.append(time.perf_counter() - t)
        assert r.status == 200, r.status
    return out
health = run(lambda i: ("GET", "/healthz"))
hdr = {"content-type": "application/x-www-form-urlencoded"}
def check(i):
    body = urllib.parse.urlencode({
        "api_key": "k", "blog": "https://blog.example.org/", "user_ip": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "comment_type": "comment",
        "comment_author": "Sam", "comment_author_email": "sam@example.org",
        "comment_content": f"Thanks for the write-up, part {i} fixed my build. One typo in the second listing though."})
    return ("POST", "/1.1/comment-check", body, hdr)
checks = run(check)
print(f"GET /healthz              p50/p90/p99 ms: {pct(health)}")
print(f"POST /1.1/comment-check   p50/p90/p99 ms: {pct(checks)}  ({n} requests, one keep-alive connection)")
PY
