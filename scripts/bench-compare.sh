#!/usr/bin/env bash
# Jaseur against Prosody and ejabberd, same machine, same run, same
# scenarios (benchmark issue, point 2).
#
#   scripts/bench-compare.sh                (as root, on Debian 12)
#   scripts/bench-compare.sh --table FILE   the table again from a results file
#
# Installs prosody and ejabberd from Debian's packages when missing (their
# system services are stopped and disabled: every server here runs on a
# loopback port of its own with its own configuration and data under a
# temporary directory), makes one ECDSA P-256 certificate for bench.test and
# *.bench.test used by all three servers, provisions the same accounts
# (userI / passI) on each in bulk, then for each server and each scenario
# starts a fresh server pinned to CPU 0, runs jaseur-bench pinned to CPU 1
# and stops the server. Prints one table with the ratios Jaseur/ejabberd and
# Jaseur/Prosody; the raw result lines go to RESULTS.
#
# Scenarios: idle, login (PLAIN on all three, SCRAM-SHA-256 on Jaseur too),
# msg (closed loop and one open-loop rate), muc (rooms of MUC_ROOM, closed
# loop), storm (STORM_USERS authenticated streams send mutated stanzas for
# STORM_DURATION seconds while probe accounts log in and chat; not in the
# default list: SCENARIOS=storm SERVERS="jaseur prosody" runs it alone).
# A scenario that jaseur-bench does not know yet is skipped.
#
# Environment (defaults in brackets):
#   SERVERS       servers to measure ["jaseur ejabberd prosody"]
#   SCENARIOS     ["idle login msg muc"]
#   N             accounts provisioned, sessions of idle and login [2000]
#   MSG_USERS     users of msg (in pairs) [1000]
#   MUC_USERS     users of muc [1000]
#   MUC_ROOM      occupants per room [100]
#   MUC_SENDERS   senders per room [2]
#   DURATION      seconds of sending in msg and muc [10]
#   WINDOW        closed loop: messages in flight per sender [1]
#   STORM_USERS   hostile sessions of storm [50] (N must be 2 more)
#   STORM_DURATION  seconds of storm [45]
#   STORM_RATE    stanzas/s across the hostile sessions [2000]
#   STORM_SEED    [1]
#   WEBSOCKET     1: Jaseur's idle and msg also run over WebSocket [1]
#   MSG_RATE      open-loop msg rate, messages/s [5000]; 0 skips it; "auto":
#                 80 % of ejabberd's closed-loop rate of this run (ejabberd
#                 then runs first), the rate of the budget's latency target
#   HOLD          idle: seconds sessions stay open once measured [5]
#   CONCURRENCY   logins in flight [200]
#   SOURCES       generator source addresses [127.0.0.1,...,127.0.0.4]
#   DOMAIN        [bench.test]
#   PROSODY_PORT  [15222]   EJABBERD_PORT [25222]
#   EJABBERD_SCHEDULERS  Erlang schedulers (+S N:N +SDcpu N:N) [1, the one
#                 core it is pinned to]; "auto" lets Erlang count the cores
#   RESULTS       raw result lines [target/bench-compare-results.txt]
#   NO_INSTALL=1  do not apt-get install anything
#   KEEP=1        keep the work directory (configs, logs, data)
set -euo pipefail
# The whole script is one brace group, parsed before it runs: editing the
# file during a run cannot change what the run does.
{
cd "$(dirname "$0")/.."
ROOT=$PWD

# print_table RESULTS: the comparison table from a results file.
print_table() {
    awk '
    function field(line, keys,    n, k, i, re) {
        n = split(keys, k, "|")
        for (i = 1; i <= n; i++) {
            re = " " k[i] "="
            if (match(" " line, re "[^ ]+")) return substr(" " line, RSTART + length(re), RLENGTH - length(re))
        }
        return ""
    }
    /^# / {
        # the header lines carry the parameters of the run
        if (match($0, / MSG_RATE=[^ ]+/)) rate = substr($0, RSTART + 10, RLENGTH - 10)
        if (match($0, / MUC_ROOM=[^ ]+/)) room = substr($0, RSTART + 10, RLENGTH - 10)
        next
    }
    {
        server = field($0, "server"); label = field($0, "label")
        line[server, label] = $0
        lost = field($0, "lost")
        if (lost != "" && lost + 0 > 0) lostnote = lostnote sprintf("  %s %s: lost=%s\n", server, label, lost)
        status = field($0, "status")
        if (status != "" && status != "ok") lostnote = lostnote sprintf("  %s %s: %s\n", server, label, status)
    }
    function ratio(r) { return r < 0.1 ? sprintf("%.4f", r) : sprintf("%.2f", r) }
    function row(title, lower, jl, ol, keys,    j, e, p, rj, re) {
        j = field(line["jaseur", jl], keys)
        e = field(line["ejabberd", ol], keys)
        p = field(line["prosody", ol], keys)
        if (j == "" && e == "" && p == "") return
        rj = (j != "" && e != "" && e + 0 != 0) ? ratio(j / e) : "-"
        re = (j != "" && p != "" && p + 0 != 0) ? ratio(j / p) : "-"
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", title, lower ? "lower" : "higher", \
            j == "" ? "-" : j, e == "" ? "-" : e, p == "" ? "-" : p, rj, re
    }
    END {
        print "| Scenario (figure) | Better | Jaseur | ejabberd | Prosody | Jaseur/ejabberd | Jaseur/Prosody |"
        print "|---|---|---:|---:|---:|---:|---:|"
        row("idle: KiB per session", 1, "idle", "idle", "kib_per_session")
        row("idle over WebSocket (Jaseur) vs TCP (others): KiB per session", 1, "idle-ws", "idle", "kib_per_session")
        row("login PLAIN: logins/s", 0, "login-plain", "login-plain", "logins_per_s|login_per_s|rate_per_s")
        row("login PLAIN: p99 ms", 1, "login-plain", "login-plain", "login_p99_ms|lat_p99_ms|p99_ms")
        row("login PLAIN: logins per server CPU-s", 0, "login-plain", "login-plain", "logins_per_server_cpu_s")
        row("login Jaseur SCRAM-SHA-256 vs PLAIN: logins/s", 0, "login-scram-sha-256", "login-plain", "logins_per_s|login_per_s|rate_per_s")
        row("login Jaseur SCRAM-SHA-256 vs PLAIN: logins per server CPU-s", 0, "login-scram-sha-256", "login-plain", "logins_per_server_cpu_s")
        row("msg closed loop: delivered/s", 0, "msg-closed", "msg-closed", "delivered_per_s")
        row("msg closed loop: delivered per server CPU-s", 0, "msg-closed", "msg-closed", "delivered_per_server_cpu_s")
        row("msg closed loop over WebSocket (Jaseur) vs TCP (others): delivered/s", 0, "msg-closed-ws", "msg-closed", "delivered_per_s")
        orate = rate
        if (line["ejabberd", "msg-open"] != "") orate = field(line["ejabberd", "msg-open"], "rate")
        else if (line["jaseur", "msg-open"] != "") orate = field(line["jaseur", "msg-open"], "rate")
        row("msg open loop " orate "/s: p99 ms from the planned send time", 1, "msg-open", "msg-open", "lat_p99_ms|p99_ms")
        row("msg open loop " orate "/s: p99 ms from the actual send", 1, "msg-open", "msg-open", "send_lat_p99_ms")
        row("muc rooms of " room " closed loop: delivered/s", 0, "muc-closed", "muc-closed", "delivered_per_s")
        row("muc rooms of " room " closed loop: delivered per server CPU-s", 0, "muc-closed", "muc-closed", "delivered_per_server_cpu_s")
        row("storm: stanzas sent", 0, "storm", "storm", "sent")
        row("storm: streams the server closed", 0, "storm", "storm", "server_closed")
        row("storm: probe failures", 1, "storm", "storm", "probe_failures")
        row("storm: probe p50 ms (login + message)", 1, "storm", "storm", "probe_p50_ms")
        row("storm: probe max ms", 1, "storm", "storm", "probe_max_ms")
        row("storm: RSS growth KiB (peak - start)", 1, "storm", "storm", "rss_growth_kib")
        row("storm: RSS KiB 5 s after", 1, "storm", "storm", "rss_settled_kib")
        row("storm: server CPU %", 1, "storm", "storm", "server_cpu")
        if (lostnote != "") { print ""; print "Lost messages or failed runs:"; printf "%s", lostnote }
    }' "$1"
}

if [ "${1:-}" = --table ]; then
    [ -f "${2:-}" ] || { echo "usage: $0 --table RESULTS_FILE" >&2; exit 2; }
    print_table "$2"
    exit 0
fi

SERVERS=${SERVERS:-jaseur ejabberd prosody}
SCENARIOS=${SCENARIOS:-idle login msg muc}
N=${N:-2000}
MSG_USERS=${MSG_USERS:-1000}
MUC_USERS=${MUC_USERS:-1000}
MUC_ROOM=${MUC_ROOM:-100}
MUC_SENDERS=${MUC_SENDERS:-2}
STORM_USERS=${STORM_USERS:-50}
STORM_DURATION=${STORM_DURATION:-45}
STORM_RATE=${STORM_RATE:-2000}
STORM_SEED=${STORM_SEED:-1}
DURATION=${DURATION:-10}
WINDOW=${WINDOW:-1}
MSG_RATE=${MSG_RATE:-5000}
HOLD=${HOLD:-5}
CONCURRENCY=${CONCURRENCY:-200}
SOURCES=${SOURCES:-127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4}
DOMAIN=${DOMAIN:-bench.test}
PROSODY_PORT=${PROSODY_PORT:-15222}
EJABBERD_PORT=${EJABBERD_PORT:-25222}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RESULTS=${RESULTS:-$TARGET_DIR/bench-compare-results.txt}
EJABBERD_NODE=jaseurbench@localhost
EJABBERD_SCHEDULERS=${EJABBERD_SCHEDULERS:-1}

log() { echo "== $*" >&2; }
die() { echo "bench-compare: $*" >&2; exit 1; }

for u in $((N)) $((MSG_USERS)) $((MUC_USERS)) $((STORM_USERS + 2)); do
    [ "$u" -le "$N" ] || die "MSG_USERS, MUC_USERS and STORM_USERS + 2 must not exceed N=$N"
done
[ "$(id -u)" = 0 ] || die "run as root (installs packages, runs servers as their own users)"
command -v taskset >/dev/null || die "taskset (util-linux) is missing"
[ "$(nproc)" -ge 2 ] || echo "warning: fewer than 2 CPUs: server and generator share one" >&2

# ---------------------------------------------------------------- install
want_prosody=0 want_ejabberd=0
for s in $SERVERS; do
    case $s in
        jaseur) ;;
        prosody) want_prosody=1 ;;
        ejabberd) want_ejabberd=1 ;;
        *) die "unknown server '$s' (jaseur, ejabberd, prosody)" ;;
    esac
done
missing=()
[ $want_prosody = 1 ] && ! command -v prosody >/dev/null && missing+=(prosody)
[ $want_ejabberd = 1 ] && ! [ -x /usr/sbin/ejabberdctl ] && missing+=(ejabberd)
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    [ "${NO_INSTALL:-0}" = 1 ] && die "missing: ${missing[*]} (NO_INSTALL=1)"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    # Keep the packages' services from starting while installing.
    policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    install_rc=0
    apt-get install -y -q "${missing[@]}" >&2 || install_rc=$?
    if [ $policy_added = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    [ $install_rc = 0 ] || die "apt-get install failed"
fi
# Whatever the packages started (or a previous boot did), stop it: every
# server of this run is started by this script, on ports of its own.
for svc in prosody ejabberd; do
    [ -e "/etc/init.d/$svc" ] || [ -e "/lib/systemd/system/$svc.service" ] || continue
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
    else
        service "$svc" stop >/dev/null 2>&1 || true
        command -v update-rc.d >/dev/null && update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
done

PROSODY_VERSION=$(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo none)
EJABBERD_VERSION=$(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo none)

# ---------------------------------------------------------------- build
log "building Jaseur (release)"
cargo build --release --bins >&2
JASEUR=$TARGET_DIR/release/jaseur
BENCH=$TARGET_DIR/release/jaseur-bench
JASEUR_VERSION=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

# ---------------------------------------------------------------- limits
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 1048576 ]; then
    ulimit -n 1048576
else
    ulimit -n "$hard"
fi
[ "$(ulimit -n)" -ge $((N + 1000)) ] || echo "warning: open files limit $(ulimit -n) is too low for $N sessions" >&2

# ---------------------------------------------------------------- work dir
WORK=$(mktemp -d -t jaseur-compare.XXXXXX)
chmod 755 "$WORK" # the servers run as their own users and must reach their dirs
SERVER_PID=      # the process whose memory and CPU are measured
SERVER_KIND=
WRAPPER_PID=     # ejabberd: the ejabberdctl shell around beam.smp
EPMD_WAS_RUNNING=0
pgrep -x epmd >/dev/null && EPMD_WAS_RUNNING=1

cleanup() {
    local rc=$?
    stop_server || true
    # The Erlang port mapper our ejabberd started, once no node uses it.
    if [ "$EPMD_WAS_RUNNING" = 0 ] && command -v epmd >/dev/null; then
        epmd -names 2>/dev/null | grep -q name || epmd -kill >/dev/null 2>&1 || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- certificate
log "one ECDSA P-256 certificate for $DOMAIN and *.$DOMAIN"
CERT=$WORK/cert.pem
KEY=$WORK/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$KEY" -out "$CERT" -days 30 -subj "/CN=$DOMAIN" \
    -addext "subjectAltName=DNS:$DOMAIN,DNS:*.$DOMAIN" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" 2>/dev/null
cat "$CERT" "$KEY" >"$WORK/bundle.pem"
chmod 644 "$CERT" "$KEY" "$WORK/bundle.pem" # a throw-away key, read by three users

awk -v n="$N" -v d="$DOMAIN" 'BEGIN { for (i = 1; i <= n; i++) printf "user%d@%s pass%d\n", i, d, i }' \
    >"$WORK/users.txt"

fill() { # fill TEMPLATE OUT NAME=VALUE...
    local template=$1 out=$2
    shift 2
    local args=()
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$template" >"$out"
}

port_free() { # port_free PORT: nothing listens there yet
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        echo "127.0.0.1:$1 is already in use (set PROSODY_PORT / EJABBERD_PORT)" >&2
        return 1
    fi
}

wait_port() { # wait_port PORT PID SECONDS
    local port=$1 pid=$2 i
    for i in $(seq $(($3 * 10))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- Jaseur
jaseur_setup() {
    local dir=$WORK/jaseur
    mkdir -p "$dir"
    fill "$ROOT/bench/jaseur.toml.in" "$dir/jaseur.toml" DIR="$dir" DOMAIN="$DOMAIN" CERT="$CERT" KEY="$KEY"
    log "jaseur: creating $N accounts (jaseur user add --bulk)"
    local start=$SECONDS
    "$JASEUR" -c "$dir/jaseur.toml" user add --bulk "$WORK/users.txt" >&2 || return 1
    log "jaseur: accounts done in $((SECONDS - start))s"
}
jaseur_start() {
    local dir=$WORK/jaseur
    rm -f "$dir/data/ready"
    RUN=$((RUN + 1))
    taskset -c 0 "$JASEUR" -c "$dir/jaseur.toml" run 2>"$dir/server-$RUN.log" &
    SERVER_PID=$!
    SERVER_LOG=$dir/server-$RUN.log
    local i
    for i in $(seq 600); do
        [ -f "$dir/data/ready" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; return 1; }
        sleep 0.1
    done
    [ -f "$dir/data/ready" ] || return 1
    ADDR=$(awk '$1 == "c2s" { print $2; exit }' "$dir/data/ready")
    HTTP_ADDR=$(awk '$1 == "http" { print $2; exit }' "$dir/data/ready")
}
jaseur_stop() { term_wait "$SERVER_PID"; }

term_wait() { # TERM, then KILL after 10 s
    local pid=$1 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- Prosody
# Prosody refuses to run as root: it runs as the prosody user (setpriv execs
# in place, so the measured pid is Prosody's own), with its own config, data
# directory and log under $WORK/prosody.
prosody_setup() {
    local dir=$WORK/prosody
    mkdir -p "$dir/data" "$dir/certs"
    cp "$CERT" "$dir/certs/$DOMAIN.crt"
    cp "$KEY" "$dir/certs/$DOMAIN.key"
    fill "$ROOT/bench/prosody.cfg.lua.in" "$dir/prosody.cfg.lua" \
        DIR="$dir" DOMAIN="$DOMAIN" PORT="$PROSODY_PORT" CERT="$CERT" KEY="$KEY"
    log "prosody: writing $N internal_hashed accounts (SCRAM-SHA-1, 10000 iterations)"
    local start=$SECONDS
    python3 "$ROOT/bench/provision.py" prosody "$dir/data" "$DOMAIN" "$N" 10000 || return 1
    chown -R prosody:prosody "$dir"
    log "prosody: accounts done in $((SECONDS - start))s"
}
prosody_start() {
    local dir=$WORK/prosody
    port_free "$PROSODY_PORT" || return 1
    RUN=$((RUN + 1))
    SERVER_LOG=$dir/prosody.log
    taskset -c 0 setpriv --reuid=prosody --regid=prosody --init-groups \
        env HOME="$dir" prosody -F --config "$dir/prosody.cfg.lua" >"$dir/stdout-$RUN.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$PROSODY_PORT" "$SERVER_PID" 30 || {
        cat "$dir/stdout-$RUN.log" "$SERVER_LOG" >&2 2>/dev/null
        return 1
    }
    ADDR=127.0.0.1:$PROSODY_PORT
}
prosody_stop() { term_wait "$SERVER_PID"; }

# ---------------------------------------------------------------- ejabberd
# ejabberdctl with a config, spool, log dir and node name of its own, run as
# the ejabberd user with a HOME under $WORK (its Erlang cookie lives there).
# The measured process is beam.smp, a child of the ejabberdctl shell.
ejctl() {
    local dir=$WORK/ejabberd
    setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$dir/home" \
        ejabberdctl --config "$dir/ejabberd.yml" --ctl-config "$dir/ejabberdctl.cfg" \
        --spool "$dir/spool" --logs "$dir/logs" "$@"
}
ejabberd_setup() {
    local dir=$WORK/ejabberd
    mkdir -p "$dir/spool" "$dir/logs" "$dir/home"
    fill "$ROOT/bench/ejabberd.yml.in" "$dir/ejabberd.yml" \
        DOMAIN="$DOMAIN" PORT="$EJABBERD_PORT" CERT_BUNDLE="$WORK/bundle.pem"
    local sched=
    [ "$EJABBERD_SCHEDULERS" = auto ] ||
        sched="+S $EJABBERD_SCHEDULERS:$EJABBERD_SCHEDULERS +SDcpu $EJABBERD_SCHEDULERS:$EJABBERD_SCHEDULERS"
    fill "$ROOT/bench/ejabberdctl.cfg.in" "$dir/ejabberdctl.cfg" NODE="$EJABBERD_NODE" SCHED="$sched"
    python3 "$ROOT/bench/provision.py" piefxis "$DOMAIN" "$N" >"$dir/users.xml" || return 1
    chown -R ejabberd:ejabberd "$dir"
    ejabberd_start || return 1
    log "ejabberd: importing $N accounts (ejabberdctl import_piefxis)"
    local start=$SECONDS
    ejctl import_piefxis "$dir/users.xml" >&2 || return 1
    local count
    count=$(ejctl registered_users "$DOMAIN" 2>/dev/null | wc -l)
    log "ejabberd: $count accounts in $((SECONDS - start))s"
    [ "$count" = "$N" ] || { echo "ejabberd: expected $N accounts" >&2; return 1; }
    ejabberd_stop
}
ejabberd_start() {
    local dir=$WORK/ejabberd
    port_free "$EJABBERD_PORT" || return 1
    RUN=$((RUN + 1))
    SERVER_LOG=$dir/logs/ejabberd.log
    taskset -c 0 setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$dir/home" \
        ejabberdctl --config "$dir/ejabberd.yml" --ctl-config "$dir/ejabberdctl.cfg" \
        --spool "$dir/spool" --logs "$dir/logs" foreground >"$dir/logs/stdout-$RUN.log" 2>&1 &
    WRAPPER_PID=$!
    local i
    SERVER_PID=
    for i in $(seq 300); do
        SERVER_PID=$(pgrep -P "$WRAPPER_PID" -f "beam.smp.*$EJABBERD_NODE" | head -n1 || true)
        [ -n "$SERVER_PID" ] && break
        kill -0 "$WRAPPER_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$SERVER_PID" ] && wait_port "$EJABBERD_PORT" "$SERVER_PID" 60 || {
        tail -n 30 "$dir/logs/stdout-$RUN.log" "$SERVER_LOG" >&2 2>/dev/null
        return 1
    }
    ADDR=127.0.0.1:$EJABBERD_PORT
}
ejabberd_stop() {
    [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null || return 0
    ejctl stop >/dev/null 2>&1 || true
    local i
    for i in $(seq 150); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    term_wait "$SERVER_PID"
    term_wait "$WRAPPER_PID"
    WRAPPER_PID=
}

stop_server() {
    if [ -n "$SERVER_KIND" ] && [ -n "$SERVER_PID" ]; then
        "${SERVER_KIND}_stop" || true
    fi
    SERVER_PID=
}

# ---------------------------------------------------------------- scenarios
has_scenario() { "$BENCH" "$1" --help >/dev/null 2>&1; }

RUN=0
FAILED=0
: >"$RESULTS"
{
    echo "# bench-compare $(date -u +%Y-%m-%dT%H:%M:%SZ) jaseur=$JASEUR_VERSION prosody=$PROSODY_VERSION ejabberd=$EJABBERD_VERSION"
    echo "# N=$N STORM_USERS=$STORM_USERS STORM_DURATION=$STORM_DURATION STORM_RATE=$STORM_RATE STORM_SEED=$STORM_SEED MSG_USERS=$MSG_USERS MUC_USERS=$MUC_USERS MUC_ROOM=$MUC_ROOM DURATION=$DURATION WINDOW=$WINDOW MSG_RATE=$MSG_RATE EJABBERD_SCHEDULERS=$EJABBERD_SCHEDULERS cpus=$(nproc) server=cpu0 generator=cpu1"
} >>"$RESULTS"

# run SERVER LABEL SCENARIO [jaseur-bench options]: one run on a freshly
# started server; appends "server=S label=L <result line>" to RESULTS.
run() {
    local server=$1 label=$2 scenario=$3
    shift 3
    SERVER_KIND=$server
    if ! "${server}_start"; then
        echo "$server: did not start" >&2
        FAILED=1
        SERVER_KIND=
        return
    fi
    sleep 1
    log "$server: $label (server pid $SERVER_PID on CPU 0, generator on CPU 1)"
    local out rc=0 status=ok result addr=$ADDR
    # WebSocket runs connect to the HTTP listener.
    case " $* " in *" --transport websocket "*) addr=$HTTP_ADDR ;; esac
    out=$(taskset -c 1 "$BENCH" "$scenario" --server "$addr" --domain "$DOMAIN" \
        --user-prefix user --password-prefix pass --concurrency "$CONCURRENCY" \
        --sources "$SOURCES" --server-pid "$SERVER_PID" --ca "$CERT" "$@") || rc=$?
    if [ $rc != 0 ]; then
        # jaseur-bench exits non-zero on a lost message or a failed login, and
        # still prints its result line when it got that far: keep it, marked.
        FAILED=1
        status=failed-exit-$rc
        echo "-- $server: $label: jaseur-bench exited with $rc; server log:" >&2
        tail -n 20 "$SERVER_LOG" >&2 2>/dev/null || true
    fi
    result=$(printf '%s\n' "$out" | grep "^$scenario " | tail -n 1 || true)
    echo "server=$server label=$label status=$status ${result:-no-result}" | tee -a "$RESULTS"
    stop_server
    SERVER_KIND=
}

if [ "$MSG_RATE" = auto ]; then
    case " $SERVERS " in
        *" ejabberd "*) SERVERS="ejabberd $(echo " $SERVERS " | sed 's/ ejabberd / /')" ;;
        *) die "MSG_RATE=auto needs ejabberd in SERVERS" ;;
    esac
fi
# The open-loop rate: fixed, or once ejabberd's closed loop is known.
msg_rate() {
    if [ "$MSG_RATE" != auto ]; then echo "$MSG_RATE"; return; fi
    grep '^server=ejabberd label=msg-closed ' "$RESULTS" | tail -n 1 |
        sed -n 's/.* delivered_per_s=\([0-9]*\).*/\1/p' | awk '{ printf "%d", $1 * 0.8 }'
}

for server in $SERVERS; do
    log "$server: setup"
    SERVER_KIND=$server
    if ! "${server}_setup"; then
        echo "$server: setup failed, skipped" >&2
        stop_server
        SERVER_KIND=
        FAILED=1
        continue
    fi
    SERVER_KIND=
    for scenario in $SCENARIOS; do
        if ! has_scenario "$scenario"; then
            log "jaseur-bench has no '$scenario' scenario yet: skipped"
            continue
        fi
        case $scenario in
            idle)
                run "$server" idle idle --users "$N" --hold "$HOLD"
                # Jaseur also serves XMPP over WebSocket: the same, over it.
                [ "$server" = jaseur ] && [ "${WEBSOCKET:-1}" = 1 ] &&
                    run "$server" idle-ws idle --users "$N" --hold "$HOLD" --transport websocket
                ;;
            login)
                run "$server" login-plain login --users "$N" --mechanism plain
                [ "$server" = jaseur ] &&
                    run "$server" login-scram-sha-256 login --users "$N" --mechanism scram-sha-256
                ;;
            msg)
                run "$server" msg-closed msg --users "$MSG_USERS" --window "$WINDOW" --duration "$DURATION"
                [ "$server" = jaseur ] && [ "${WEBSOCKET:-1}" = 1 ] &&
                    run "$server" msg-closed-ws msg --users "$MSG_USERS" --window "$WINDOW" \
                        --duration "$DURATION" --transport websocket
                rate=$(msg_rate)
                if [ -z "$rate" ] || [ "$rate" = 0 ]; then
                    [ "$MSG_RATE" = 0 ] || echo "no open-loop rate (ejabberd's closed loop failed?): msg-open skipped" >&2
                else
                    run "$server" msg-open msg --users "$MSG_USERS" --rate "$rate" --duration "$DURATION"
                fi
                ;;
            storm)
                run "$server" storm storm --users "$STORM_USERS" --duration "$STORM_DURATION" \
                    --rate "$STORM_RATE" --seed "$STORM_SEED" ;;
            muc)
                run "$server" muc-closed muc --users "$MUC_USERS" --room-size "$MUC_ROOM" \
                    --senders "$MUC_SENDERS" --window "$WINDOW" --duration "$DURATION" ;;
            *)
                echo "unknown scenario '$scenario'" >&2 ;;
        esac
    done
done

# ---------------------------------------------------------------- table
log "results in $RESULTS"
echo
print_table "$RESULTS"
echo
echo "prosody $PROSODY_VERSION, ejabberd $EJABBERD_VERSION, jaseur $JASEUR_VERSION; N=$N; server on CPU 0, generator on CPU 1; raw lines: $RESULTS"
exit "$FAILED"
}
