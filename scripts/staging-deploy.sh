#!/usr/bin/env bash
# Staging deploy with retort: wait for the database, check the scripts, back up, migrate, verify.
#
#   scripts/staging-deploy.sh [--no-backup] [--wait SECONDS] [--backup-dir DIR]
#
# Steps, each stopping the deploy with its own exit code:
#   1. wait     until the server accepts connections (migrate-current, retried for --wait)
#   2. check    the migration scripts: migrate-check --offline
#   3. plan     migrate-check: already at the heads -> nothing to do, exit 0 (no backup taken);
#               else migrate-up --dry-run shows what will run and refuses a database whose state
#               forbids it (a revision no script has, an edited applied script)
#   4. backup   pg_dump -Fc to $BACKUP_DIR/<database>-<UTC time>.dump (skip: --no-backup or
#               SKIP_BACKUP=1)
#   5. migrate  migrate-up
#   6. verify   migrate-check: the scripts are sound and the database is at the heads
#
# Exit codes (for CI jobs):
#    0  deployed, or the database was already at the heads
#    2  usage or configuration: bad option, no database URL, migrate-* or pg_dump not found
#   10  database unreachable within --wait (also: authentication failed, database missing)
#   11  migration scripts invalid (parse error, cycle, missing parent, several heads)
#   12  backup failed (nothing was migrated)
#   13  migration failed (migrate-up's message says what state the database is in)
#   14  verification failed after migrating (migrate-check found problems)
#   15  the database's state forbids migrating (unknown revision, edited applied script);
#       nothing was changed
#   16  another process held the migration lock too long; nothing was changed
#
# Environment:
#   DATABASE_URL, else PGVECTOR_DB_URL (else those keys in ./.env)   the database
#   MIGRATIONS_DIR   the scripts (default: ./migrations; read by the binaries)
#   RETORT_BIN       directory with the migrate-* binaries; when unset: PATH, else target/release
#   PG_BIN           directory with pg_dump; when unset: PATH, else `scripts/pg.sh bin`
#   BACKUP_DIR       where backups go (default: backups)
#   SKIP_BACKUP=1    no backup (same as --no-backup)
#   WAIT             seconds to wait for the database (default: 60; also 90s, 2m)
#
# The password is never printed nor put on a command line: the binaries read the URL from the
# environment, and pg_dump gets a URL without the password plus PGPASSWORD in its environment.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

EXIT_USAGE=2
EXIT_UNREACHABLE=10
EXIT_SCRIPTS=11
EXIT_BACKUP=12
EXIT_MIGRATION=13
EXIT_VERIFY=14
EXIT_STATE=15
EXIT_LOCK=16

log() { echo "staging-deploy: $*" >&2; }
step() { echo "== $*" >&2; }
fail() { local code=$1; shift; echo "staging-deploy: error: $*" >&2; exit "$code"; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

WAIT=${WAIT:-60}
BACKUP_DIR=${BACKUP_DIR:-backups}
SKIP_BACKUP=${SKIP_BACKUP:-0}
while [ $# -gt 0 ]; do
  case "$1" in
    --no-backup) SKIP_BACKUP=1 ;;
    --wait) [ $# -ge 2 ] || fail $EXIT_USAGE "--wait needs a value"; WAIT=$2; shift ;;
    --wait=*) WAIT=${1#--wait=} ;;
    --backup-dir) [ $# -ge 2 ] || fail $EXIT_USAGE "--backup-dir needs a value"; BACKUP_DIR=$2; shift ;;
    --backup-dir=*) BACKUP_DIR=${1#--backup-dir=} ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; fail $EXIT_USAGE "unknown argument: $1" ;;
  esac
  shift
done
case "$SKIP_BACKUP" in 1|true|yes) SKIP_BACKUP=1 ;; *) SKIP_BACKUP=0 ;; esac
case "$WAIT" in
  *[!0-9smh]*|'') fail $EXIT_USAGE "--wait/WAIT must be seconds (60, 60s, 2m): '$WAIT'" ;;
  *m) WAIT_SECS=$(( ${WAIT%m} * 60 )) ;;
  *h) WAIT_SECS=$(( ${WAIT%h} * 3600 )) ;;
  *s) WAIT_SECS=${WAIT%s} ;;
  *) WAIT_SECS=$WAIT ;;
esac

# ---- the binaries ------------------------------------------------------------------------
if [ -n "${RETORT_BIN:-}" ]; then
  BIN=$RETORT_BIN
elif command -v migrate-up >/dev/null 2>&1; then
  BIN=$(dirname "$(command -v migrate-up)")
else
  BIN=$ROOT/target/release
fi
for b in migrate-up migrate-current migrate-check; do
  [ -x "$BIN/$b" ] || fail $EXIT_USAGE "$BIN/$b not found: build them (make build), put them on PATH or set RETORT_BIN"
done

# ---- the database URL (never printed) --------------------------------------------------
# dotenv_get KEY: KEY's value in ./.env (what the binaries read too), quotes removed.
dotenv_get() {
  [ -f .env ] || return 0
  local v
  v=$(sed -n "s/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$1[[:space:]]*=[[:space:]]*//p" .env | tail -n 1)
  v=${v%$'\r'}
  case "$v" in
    \"*\") v=${v#\"}; v=${v%\"} ;;
    \'*\') v=${v#\'}; v=${v%\'} ;;
  esac
  printf '%s' "$v"
}
URL=${DATABASE_URL:-${PGVECTOR_DB_URL:-}}
[ -n "$URL" ] || URL=$(dotenv_get DATABASE_URL)
[ -n "$URL" ] || URL=$(dotenv_get PGVECTOR_DB_URL)
[ -n "$URL" ] || fail $EXIT_USAGE "no database URL: set DATABASE_URL (or PGVECTOR_DB_URL)"
export DATABASE_URL=$URL

# Split the URL for libpq: scheme (SQLAlchemy's +driver dropped), user, password (percent-
# decoded), the rest; asyncpg's ssl= becomes sslmode=.
scheme=${URL%%://*}
case "$scheme" in
  postgres|postgresql|postgres+*|postgresql+*) ;;
  *) fail $EXIT_USAGE "the database URL must start with postgresql:// (or postgres://, postgresql+asyncpg://, ...)" ;;
esac
rest=${URL#*://}
authority=${rest%%[/?]*}
tail_part=${rest#"$authority"}
userinfo=
hostport=$authority
if [[ "$authority" == *@* ]]; then
  userinfo=${authority%@*}
  hostport=${authority##*@}
fi
db_user=${userinfo%%:*}
db_password=
if [[ "$userinfo" == *:* ]]; then
  enc=${userinfo#*:}
  enc=${enc//\\/\\\\}
  printf -v db_password '%b' "${enc//%/\\x}"
fi
tail_part=${tail_part//\?ssl=/?sslmode=}
tail_part=${tail_part//&ssl=/&sslmode=}
LIBPQ_URL="postgresql://${db_user:+$db_user@}$hostport$tail_part"
db_name=${tail_part#/}
db_name=${db_name%%\?*}
db_name=${db_name:-${db_user:-postgres}}
log "database: ${db_user:+$db_user@}$hostport/$db_name (password not shown)"

# run CMD...: runs CMD and leaves its exit code in rc (set -e does not stop the script).
rc=0
run() { rc=0; "$@" || rc=$?; }
file=

# ---- 1. wait ---------------------------------------------------------------------------
step "1/6 wait for the database (up to ${WAIT_SECS}s)"
errfile=$(mktemp "${TMPDIR:-/tmp}/staging-deploy.XXXXXX")
trap 'rm -f "$errfile"' EXIT
deadline=$(( SECONDS + WAIT_SECS ))
while :; do
  run "$BIN/migrate-current" -q >/dev/null 2>"$errfile"
  [ "$rc" = 3 ] || break
  if [ "$SECONDS" -ge "$deadline" ]; then
    cat "$errfile" >&2
    fail $EXIT_UNREACHABLE "the database did not accept connections within ${WAIT_SECS}s"
  fi
  sleep 2
done
if [ "$rc" = 2 ]; then
  cat "$errfile" >&2
  fail $EXIT_USAGE "migrate-current refused the configuration"
fi
log "the database accepts connections"

# ---- 2. check the scripts --------------------------------------------------------------
step "2/6 check the migration scripts (migrate-check --offline)"
run "$BIN/migrate-check" --offline
case "$rc" in
  0) ;;
  2) fail $EXIT_USAGE "migrate-check --offline: usage or configuration error" ;;
  *) fail $EXIT_SCRIPTS "the migration scripts are invalid (migrate-check --offline exited $rc); nothing was changed" ;;
esac

# ---- 3. plan ---------------------------------------------------------------------------
step "3/6 plan"
run "$BIN/migrate-check" -q
if [ "$rc" = 0 ]; then
  log "the database is already at the heads: nothing to migrate"
  exit 0
fi
[ "$rc" = 3 ] && fail $EXIT_UNREACHABLE "the database stopped accepting connections"
log "not at the heads yet (a 'pending' problem above only means there is work to do); the plan:"
run "$BIN/migrate-up" --dry-run
case "$rc" in
  0) ;;
  3) fail $EXIT_UNREACHABLE "the database stopped accepting connections" ;;
  6) fail $EXIT_SCRIPTS "the migration scripts are invalid; nothing was changed" ;;
  7) fail $EXIT_STATE "the database's state forbids migrating (see above); nothing was changed" ;;
  5) fail $EXIT_LOCK "another migration holds the lock; nothing was changed" ;;
  *) fail $EXIT_STATE "migrate-up --dry-run exited $rc; nothing was changed" ;;
esac

# ---- 4. backup -------------------------------------------------------------------------
if [ "$SKIP_BACKUP" = 1 ]; then
  step "4/6 backup: skipped (--no-backup / SKIP_BACKUP=1)"
else
  step "4/6 backup (pg_dump -Fc)"
  if [ -n "${PG_BIN:-}" ]; then
    PG_DUMP=$PG_BIN/pg_dump
  elif command -v pg_dump >/dev/null 2>&1; then
    PG_DUMP=$(command -v pg_dump)
  elif [ -x "$ROOT/scripts/pg.sh" ] && d=$("$ROOT/scripts/pg.sh" bin 2>/dev/null); then
    PG_DUMP=$d/pg_dump
  else
    PG_DUMP=
  fi
  if [ -z "$PG_DUMP" ] || [ ! -x "$PG_DUMP" ]; then
    fail $EXIT_USAGE "pg_dump not found: install the PostgreSQL client, set PG_BIN, or skip with --no-backup"
  fi
  mkdir -p "$BACKUP_DIR" || fail $EXIT_BACKUP "cannot create $BACKUP_DIR"
  base="$BACKUP_DIR/$db_name-$(date -u +%Y%m%dT%H%M%SZ)"
  file=$base.dump
  n=1
  while [ -e "$file" ]; do file=$base-$n.dump; n=$((n + 1)); done
  # the password travels in pg_dump's environment only; the dump is readable by its owner only
  rc=0
  (
    umask 077
    if [ -n "$db_password" ]; then export PGPASSWORD=$db_password; fi
    exec "$PG_DUMP" --format=custom --no-password --file="$file" --dbname="$LIBPQ_URL"
  ) || rc=$?
  if [ "$rc" != 0 ] || [ ! -s "$file" ]; then
    rm -f "$file"
    fail $EXIT_BACKUP "pg_dump failed (exit $rc); nothing was migrated"
  fi
  log "backup: $file ($(wc -c <"$file" | tr -d ' ') bytes; restore with pg_restore --clean --if-exists -d DB $file)"
fi

# ---- 5. migrate ------------------------------------------------------------------------
step "5/6 migrate (migrate-up)"
run "$BIN/migrate-up"
case "$rc" in
  0) ;;
  3) fail $EXIT_UNREACHABLE "the database stopped accepting connections" ;;
  5) fail $EXIT_LOCK "another migration holds the lock; nothing was changed" ;;
  6) fail $EXIT_SCRIPTS "the migration scripts are invalid; nothing was changed" ;;
  7) fail $EXIT_STATE "the database's state forbids migrating; nothing was changed" ;;
  *) fail $EXIT_MIGRATION "migrate-up failed (exit $rc); see its message above for the database's state${file:+; backup: $file}" ;;
esac

# ---- 6. verify -------------------------------------------------------------------------
step "6/6 verify (migrate-check)"
run "$BIN/migrate-check"
[ "$rc" = 0 ] || fail $EXIT_VERIFY "migrate-check found problems after migrating (exit $rc)${file:+; backup: $file}"
log "done: the database is at the heads"
