#!/usr/bin/env bash
# Logins per second against an LDAP directory: starts a throw-away slapd with
# N accounts (StartTLS, SSHA passwords) and a Jaseur whose domain uses it
# (release build, pinned to CPU 0; slapd and jaseur-bench share CPU 1), then
# logs the N accounts in with SASL PLAIN, CONCURRENCY at a time.
#
#   scripts/bench-ldap.sh [N]        N accounts (default 2000)
#
# Two rounds: "cold" (every login searches and binds: cache_ttl has nothing
# yet) and "cached" (the same accounts again: answered from the success cache).
# Environment: POOL (auth.ldap.pool_size, default 8), CONCURRENCY (default
# 200), KEEP=1 keeps the work directory. Needs slapd and ldap-utils.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-2000}
POOL=${POOL:-8}
CONCURRENCY=${CONCURRENCY:-200}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

echo "== building (release)" >&2
cargo build --release --bins
JASEUR=$TARGET_DIR/release/jaseur
BENCH=$TARGET_DIR/release/jaseur-bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d -t jaseur-bench-ldap.XXXXXX)
SLAPD_PID=
SERVER_PID=
cleanup() {
    for pid in $SERVER_PID $SLAPD_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.5
    for pid in $SERVER_PID $SLAPD_PID; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== directory with $N accounts" >&2
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
    -keyout "$WORK/ldap.key" -out "$WORK/ldap.pem" 2>/dev/null
mkdir -p "$WORK/db"
SERVICE_PW=service-secret
cat >"$WORK/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $WORK/slapd.pid
argsfile $WORK/slapd.args
loglevel none
TLSCertificateFile $WORK/ldap.pem
TLSCertificateKeyFile $WORK/ldap.key
database mdb
suffix "dc=bench,dc=test"
rootdn "cn=admin,dc=bench,dc=test"
rootpw admin
directory $WORK/db
maxsize 1073741824
index objectClass eq
index uid eq
limits dn.exact="cn=jaseur,dc=bench,dc=test" size=unlimited
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="cn=jaseur,dc=bench,dc=test" read by users read by * none
CONF
python3 - "$N" "$SERVICE_PW" >"$WORK/data.ldif" <<'PY'
import base64, hashlib, os, sys
n, service = int(sys.argv[1]), sys.argv[2]
def ssha(pw):
    salt = os.urandom(8)
    return "{SSHA}" + base64.b64encode(hashlib.sha1(pw.encode() + salt).digest() + salt).decode()
print("dn: dc=bench,dc=test\nobjectClass: dcObject\nobjectClass: organization\no: bench\ndc: bench\n")
print("dn: ou=people,dc=bench,dc=test\nobjectClass: organizationalUnit\nou: people\n")
print(f"dn: cn=jaseur,dc=bench,dc=test\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: jaseur\nuserPassword: {ssha(service)}\n")
for i in range(1, n + 1):
    print(f"dn: uid=user{i},ou=people,dc=bench,dc=test\nobjectClass: inetOrgPerson\nuid: user{i}\ncn: User {i}\nsn: {i}\nemployeeType: actif\nuserPassword: {ssha(f'pass{i}')}\n")
PY
slapadd -q -f "$WORK/slapd.conf" -l "$WORK/data.ldif"
LDAP_PORT=$(free_port)
taskset -c 1 /usr/sbin/slapd -d none -f "$WORK/slapd.conf" -h "ldap://127.0.0.1:$LDAP_PORT/" 2>"$WORK/slapd.log" &
SLAPD_PID=$!
for _ in $(seq 100); do
    ldapwhoami -x -H "ldap://127.0.0.1:$LDAP_PORT" >/dev/null 2>&1 && break
    sleep 0.1
done

DATA=$WORK/data
cat >"$WORK/jaseur.toml" <<CONF
[server]
domains = ["bench.test"]
data_dir = "$DATA"
[c2s]
listen = ["127.0.0.1:0"]
direct_tls = []
max_connections = 1000000
handshake_timeout = 120
[auth]
backend = "ldap"
[auth.ldap]
url = "ldap://127.0.0.1:$LDAP_PORT"
starttls = true
tls_ca = "$WORK/ldap.pem"
base_dn = "ou=people,dc=bench,dc=test"
filter = "(employeeType=actif)"
bind_dn = "cn=jaseur,dc=bench,dc=test"
bind_password = "$SERVICE_PW"
pool_size = $POOL
timeout = 30
[log]
level = "warn"
CONF
"$JASEUR" -c "$WORK/jaseur.toml" check >"$WORK/check.txt" 2>&1 || { cat "$WORK/check.txt" >&2; exit 1; }
taskset -c 0 "$JASEUR" -c "$WORK/jaseur.toml" run 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 600); do
    [ -f "$DATA/ready" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done
ADDR=$(awk '$1 == "c2s" { print $2; exit }' "$DATA/ready")

for round in cold cached; do
    echo "== $round: $N PLAIN logins, $CONCURRENCY at a time, pool_size $POOL" >&2
    # Four source addresses: back-to-back runs leave tens of thousands of
    # ports in TIME_WAIT, and connect() grows slow searching for a free one.
    RESULT=$(taskset -c 1 "$BENCH" idle --server "$ADDR" --domain bench.test --users "$N" \
        --sources 127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4 \
        --user-prefix user --password-prefix pass --concurrency "$CONCURRENCY" \
        --hold 1 --settle 1 --server-pid "$SERVER_PID" --ca "$DATA/certs/self-signed.pem")
    echo "round=$round pool_size=$POOL $RESULT $("$JASEUR" -c "$WORK/jaseur.toml" ldap status | tr '\n' ' ')"
done
if [ -s "$WORK/server.log" ]; then
    echo "-- server log:" >&2
    tail -n 20 "$WORK/server.log" >&2
fi
