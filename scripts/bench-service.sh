#!/usr/bin/env bash
# Measures the running service on loopback, load client included, as docs/BENCHMARKS.md reports:
# start to SERVING, throughput (embedded store and Redis), p99 at a fixed 5,000 checks/s, and
# resident memory. Every run is bounded in time and stops by itself. Not part of CI.
#
#   scripts/bench-service.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
H=target/release/hamgate
cargo build --release --quiet
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SERVER_PID=""
REDIS_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
}
trap cleanup EXIT

start_server() { # extra serve args...
    PORT=$(free_port)
    local t0 t1
    t0=$(date +%s%N)
    "$H" serve --grpc-addr "127.0.0.1:$PORT" "$@" >/tmp/hamgate-bench-serve.log 2>&1 &
    SERVER_PID=$!
    "$H" health --addr "http://127.0.0.1:$PORT" --wait 5 >/dev/null
    t1=$(date +%s%N)
    echo "start to SERVING (spawn to first SERVING health answer, both processes' start included): $(( (t1 - t0) / 1000000 )) ms"
}
stop_server() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }
rss() { awk '/VmHWM/ {print $2 " kB peak, " } /VmRSS/ {print $2 " kB now"}' "/proc/$SERVER_PID/status" | tr -d '\n'; echo; }
load() { "$H" bench-load --addr "http://127.0.0.1:$PORT" --duration "$SECS" "$@"; }

echo "== embedded reputation store"
for i in 1 2 3; do start_server; stop_server; done
start_server
echo "-- throughput, 32 connections, ${SECS}s"; load --connections 32
echo "-- throughput, 32 connections, a new client IP per call (store grows), ${SECS}s"; load --connections 32 --vary-ip
echo "-- latency at 5,000 checks/s, 16 connections, ${SECS}s"; load --connections 16 --rate 5000
echo -n "-- server memory: "; rss
stop_server

echo "== Redis reputation store"
RPORT=$(free_port)
RDIR=$(mktemp -d)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$RDIR" >/dev/null &
REDIS_PID=$!
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
export HAMGATE_REPUTATION_SECRET=bench-secret
start_server --redis-url "redis://127.0.0.1:$RPORT/"
sleep 1 # the store connects in the background
echo "-- throughput, 32 connections, ${SECS}s"; load --connections 32
echo "-- throughput, 32 connections, a new client IP per call, ${SECS}s"; load --connections 32 --vary-ip
echo "-- latency at 5,000 checks/s, 16 connections, ${SECS}s"; load --connections 16 --rate 5000
echo -n "-- server memory: "; rss
stop_server
