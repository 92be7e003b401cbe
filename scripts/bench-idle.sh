#!/usr/bin/env bash
# Memory per idle authenticated TLS session: starts a throw-away Jaseur
# (release build, pinned to CPU 0), logs N accounts in with jaseur-bench
# (pinned to CPU 1), holds them idle and prints the server's RSS figures.
#
#   scripts/bench-idle.sh [N]        N sessions (default 10000)
#
# Environment: HOLD (seconds sessions stay open after the last login, default
# 15), CONCURRENCY (logins in flight, default 200), KEEP=1 keeps the work
# directory (server log, config) for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-10000}
HOLD=${HOLD:-15}
CONCURRENCY=${CONCURRENCY:-200}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

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
if [ "$(ulimit -n)" -lt $((N + 100)) ]; then
    echo "warning: open files limit $(ulimit -n) is too low for $N sessions" >&2
fi

WORK=$(mktemp -d -t jaseur-bench.XXXXXX)
DATA=$WORK/data
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

cat >"$WORK/jaseur.toml" <<EOF
[server]
domains = ["localhost"]
data_dir = "$DATA"
shutdown_grace = 5

[c2s]
listen = ["127.0.0.1:0"]
direct_tls = []
max_connections = 1000000
handshake_timeout = 120

[log]
level = "warn"
EOF

echo "== creating $N accounts (PBKDF2: this takes a while)" >&2
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "user%d@localhost pass%d\n", i, i }' \
    >"$WORK/users.txt"
start=$(date +%s)
"$JASEUR" -c "$WORK/jaseur.toml" user add --bulk "$WORK/users.txt" >&2
echo "   done in $(($(date +%s) - start))s" >&2

echo "== starting the server on CPU 0" >&2
taskset -c 0 "$JASEUR" -c "$WORK/jaseur.toml" run 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 600); do
    [ -f "$DATA/ready" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -f "$DATA/ready" ] || { echo "the server did not become ready" >&2; exit 1; }
ADDR=$(awk '$1 == "c2s" { print $2; exit }' "$DATA/ready")

rss() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$SERVER_PID/status"; }
sleep 2
FRESH=$(rss)
echo "   listening on $ADDR, pid $SERVER_PID, fresh RSS $FRESH KiB" >&2

echo "== $N idle sessions from CPU 1" >&2
RESULT=$(taskset -c 1 "$BENCH" idle --server "$ADDR" --domain localhost --users "$N" \
    --user-prefix user --password-prefix pass --concurrency "$CONCURRENCY" \
    --hold "$HOLD" --server-pid "$SERVER_PID" --ca "$DATA/certs/self-signed.pem")

# What the server keeps once every session has closed (allocator retention).
sleep 3
CLOSED=$(rss)
echo "$RESULT server_rss_fresh_kib=$FRESH server_rss_closed_kib=$CLOSED"
if [ -s "$WORK/server.log" ]; then
    echo "-- server log (warnings):" >&2
    tail -n 20 "$WORK/server.log" >&2
fi
