#!/usr/bin/env bash
# Groupchat fan-out (XEP-0045): starts a throw-away Jaseur (release build,
# pinned to CPU 0) for every run, logs USERS accounts in with jaseur-bench
# (pinned to CPU 1), splits them into rooms of ROOM_SIZE occupants at
# conference.localhost, lets SENDERS occupants per room send groupchat
# messages and prints one result line per run: first closed loop
# (saturation), then open loop at a fixed rate.
#
#   scripts/bench-muc.sh [ROOM_SIZE...]      default: 10 100 1000
#
# Environment: USERS (accounts, default 1000: 100 rooms of 10, 10 of 100,
# 1 of 1000), SENDERS (per room, default 2), DURATION (seconds of sending,
# default 10), WINDOW (closed loop: messages in flight per sender, default
# 1), OPEN_DELIVERIES (open loop: delivered stanzas per second aimed at,
# default 20000; the message rate is this divided by the room size; 0 skips
# the open-loop runs), QUEUE_SIZE (the server's per-session queue, default
# the server's own), KEEP=1 keeps the work directory (server logs, config).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10 100 1000)
USERS=${USERS:-1000}
SENDERS=${SENDERS:-2}
DURATION=${DURATION:-10}
WINDOW=${WINDOW:-1}
OPEN_DELIVERIES=${OPEN_DELIVERIES:-20000}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

max_size=0
for s in "${SIZES[@]}"; do
    [ "$s" -gt "$max_size" ] && max_size=$s
    [ "$s" -le "$USERS" ] || { echo "room size $s is above USERS=$USERS" >&2; exit 1; }
done

echo "== building (release)" >&2
cargo build --release --bins
JASEUR=$TARGET_DIR/release/jaseur
BENCH=$TARGET_DIR/release/jaseur-bench

# Each side holds one descriptor per session: raise the soft limit as far as allowed.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 200000 ]; then
    ulimit -n 200000
else
    ulimit -n "$hard"
fi
if [ "$(ulimit -n)" -lt $((USERS + 100)) ]; then
    echo "warning: open files limit $(ulimit -n) is too low for $USERS sessions" >&2
fi

WORK=$(mktemp -d -t jaseur-bench-muc.XXXXXX)
DATA=$WORK/data
SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
cleanup() {
    stop_server
    if [ "${KEEP:-0}" = 1 ]; then
        echo "work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

max_occupants=1000
[ "$max_size" -gt "$max_occupants" ] && max_occupants=$max_size
queue_line=
[ -n "${QUEUE_SIZE:-}" ] && queue_line="queue_size = $QUEUE_SIZE"
cat >"$WORK/jaseur.toml" <<CONF
[server]
domains = ["localhost"]
data_dir = "$DATA"
shutdown_grace = 5

[c2s]
listen = ["127.0.0.1:0"]
direct_tls = []
max_connections = 1000000
handshake_timeout = 120
$queue_line

[muc]
enabled = true
subdomain = "conference"
max_occupants = $max_occupants

[log]
level = "warn"
CONF

echo "== creating $USERS accounts" >&2
awk -v n="$USERS" 'BEGIN { for (i = 1; i <= n; i++) printf "user%d@localhost pass%d\n", i, i }' \
    >"$WORK/users.txt"
start=$(date +%s)
"$JASEUR" -c "$WORK/jaseur.toml" user add --bulk "$WORK/users.txt" >&2
echo "   done in $(($(date +%s) - start))s" >&2

RUN=0
start_server() {
    RUN=$((RUN + 1))
    rm -f "$DATA/ready"
    taskset -c 0 "$JASEUR" -c "$WORK/jaseur.toml" run 2>"$WORK/server-$RUN.log" &
    SERVER_PID=$!
    for _ in $(seq 600); do
        [ -f "$DATA/ready" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server-$RUN.log" >&2; exit 1; }
        sleep 0.1
    done
    [ -f "$DATA/ready" ] || { echo "the server did not become ready" >&2; exit 1; }
    ADDR=$(awk '$1 == "c2s" { print $2; exit }' "$DATA/ready")
    sleep 1
}

# One run on a freshly started server: bench ROOM_SIZE [jaseur-bench options].
FAILED=0
bench() {
    local size=$1
    shift
    start_server
    echo "== rooms of $size: $* (server pid $SERVER_PID on CPU 0, generator on CPU 1)" >&2
    local sources=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4
    if taskset -c 1 "$BENCH" muc --server "$ADDR" --domain localhost --users "$USERS" \
        --user-prefix user --password-prefix pass --sources "$sources" \
        --room-size "$size" --senders "$SENDERS" --duration "$DURATION" \
        --server-pid "$SERVER_PID" --ca "$DATA/certs/self-signed.pem" "$@"; then
        :
    else
        FAILED=1
        echo "-- the run failed; server log:" >&2
        tail -n 20 "$WORK/server-$RUN.log" >&2
    fi
    stop_server
}

for size in "${SIZES[@]}"; do
    bench "$size" --window "$WINDOW"
    if [ "$OPEN_DELIVERIES" != 0 ]; then
        rate=$(awk -v d="$OPEN_DELIVERIES" -v s="$size" 'BEGIN { printf "%g", d / s }')
        bench "$size" --rate "$rate"
    fi
done
exit "$FAILED"
