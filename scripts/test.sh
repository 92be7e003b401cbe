#!/usr/bin/env bash
# The test command: on a fresh Debian machine, as root, installs what the
# tests need (real clients, Chromium and the web clients of tests/web,
# PostgreSQL when none runs) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(python3-slixmpp python3-nbxmpp go-sendxmpp mcabber postgresql procps slapd ldap-utils chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the web clients (tests/web): Debian's packages only
# when the commands are missing, as a newer Node.js may be installed otherwise.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
    echo "== installing ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
        echo "scripts/test.sh: run as root (or install: ${missing[*]})" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The web clients (xmpp.js, Converse.js, playwright-core) at the versions
# of tests/web/package-lock.json, again whenever the lock file is newer.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && b >= 10) ? 0 : 1)'; then
    echo "scripts/test.sh: the web clients need Node.js >= 20.10 (found $(node --version))" >&2
    exit 1
fi
if [ ! -d tests/web/node_modules ] || [ tests/web/package-lock.json -nt tests/web/node_modules ]; then
    echo "== npm ci --prefix tests/web"
    npm ci --prefix tests/web --no-audit --no-fund --loglevel=error >/dev/null
fi

# PostgreSQL: use the one on 127.0.0.1:5432 when it lets us in without a
# password, else start a private throw-away cluster with trust auth.
pg_ok() { psql "$1/test" -Atqc 'select 1' >/dev/null 2>&1; }
export JASEUR_TEST_PG="${JASEUR_TEST_PG:-postgres://postgres@127.0.0.1:5432}"
if ! pg_ok "$JASEUR_TEST_PG"; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    pgdir=/tmp/jaseur-test-pg
    port=55432
    export JASEUR_TEST_PG="postgres://postgres@127.0.0.1:$port"
    if ! pg_ok "$JASEUR_TEST_PG"; then
        echo "== starting a private PostgreSQL on 127.0.0.1:$port"
        rm -rf "$pgdir"
        mkdir -p "$pgdir"
        chown postgres: "$pgdir"
        su postgres -c "$bindir/initdb -D $pgdir/data -A trust -U postgres" >/dev/null
        su postgres -c "$bindir/pg_ctl -D $pgdir/data -l $pgdir/log -w -o '-p $port -k $pgdir -c listen_addresses=127.0.0.1' start" >/dev/null
        psql "$JASEUR_TEST_PG/postgres" -qc 'CREATE DATABASE test' >/dev/null
    fi
fi

echo "== cargo test (PostgreSQL at $JASEUR_TEST_PG)"
cargo test --all-targets "$@"
