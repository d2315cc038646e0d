#!/usr/bin/env bash
# Compares two hamgate binaries' Check throughput on loopback, alternating them round by round so
# that the machine's noise falls on both alike (embedded store, 32 connections, the same load
# client for both). Every run is bounded in time and stops by itself. Not part of CI.
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY [SECONDS_PER_RUN] [ROUNDS]
set -euo pipefail
OLD="$1"; NEW="$2"; SECS="${3:-8}"; ROUNDS="${4:-3}"
CLIENT="$NEW"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null || true' EXIT
for round in $(seq 1 "$ROUNDS"); do
    for which in old new; do
        if [ "$which" = old ]; then H="$OLD"; else H="$NEW"; fi
        DIR=$(mktemp -d)
        PORT=$(free_port); HTTP=$(free_port)
        HAMGATE_LABEL_LOG="$DIR/labels.log" "$H" serve --grpc-addr "127.0.0.1:$PORT" \
            --http-addr "127.0.0.1:$HTTP" >/dev/null 2>&1 &
        PID=$!
        "$CLIENT" health --addr "127.0.0.1:$PORT" --wait 5 >/dev/null
        printf '%s round %s: ' "$which" "$round"
        "$CLIENT" bench-load --addr "127.0.0.1:$PORT" --connections 32 --duration "$SECS" 2>&1 \
            | grep -E 'checks/s' | head -1
        kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=""
        rm -rf "$DIR"
    done
done
