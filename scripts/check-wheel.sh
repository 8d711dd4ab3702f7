#!/usr/bin/env bash
# Checks a built retort-migrate wheel for the systems its tag promises:
#   scripts/check-wheel.sh WHEEL [MAX_GLIBC]      (MAX_GLIBC default: from the tag, e.g. 2.17)
#  1. the platform tag (manylinux2014 / manylinux_2_17 ... or manylinux_X_Y);
#  2. every binary's glibc symbol versions (readelf -V): none newer than the tag's glibc, and
#     no libssl / libcrypto needed (OpenSSL is built in);
#  3. installed with pip into a fresh virtualenv (no index): each binary runs (--version), and
#     with TEST_DATABASE_URL set (scripts/pg.sh run), migrate-up and migrate-current run the
#     example migrations against it.
set -euo pipefail
cd "$(dirname "$0")/.."

wheel=${1:?usage: scripts/check-wheel.sh WHEEL [MAX_GLIBC]}
name=$(basename "$wheel")
case "$name" in
  *manylinux2014_x86_64*|*manylinux_2_17_x86_64*) tag_glibc=2.17 ;;
  *manylinux_2_*_x86_64*) tag_glibc=$(echo "$name" | sed -E 's/.*manylinux_2_([0-9]+)_x86_64.*/2.\1/') ;;
  *) echo "check-wheel: $name has no manylinux x86_64 tag" >&2; exit 1 ;;
esac
max=${2:-$tag_glibc}
echo "check-wheel: $name: tag allows glibc $tag_glibc; checking for symbols newer than $max"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m zipfile -e "$wheel" "$work/unpacked"
bins=$(find "$work/unpacked" -path '*.data/scripts/migrate-*' -type f)
[ -n "$bins" ] || { echo "check-wheel: no migrate-* binaries in $name" >&2; exit 1; }
fail=0
for b in $bins; do
  newest=$(readelf -V --wide "$b" | grep -oE 'GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?' | sed 's/GLIBC_//' | sort -V | tail -1)
  if [ "$(printf '%s\n%s\n' "$newest" "$max" | sort -V | tail -1)" != "$max" ]; then
    echo "check-wheel: $(basename "$b") needs GLIBC_$newest (newer than $max):" >&2
    readelf -V --wide "$b" | grep -oE 'GLIBC_[0-9.]+' | sort -uV | tr '\n' ' ' >&2; echo >&2
    fail=1
  fi
  if readelf -d "$b" | grep -E 'NEEDED.*(libssl|libcrypto)' >/dev/null; then
    echo "check-wheel: $(basename "$b") links the system's OpenSSL" >&2; fail=1
  fi
  echo "  $(basename "$b"): newest glibc symbol GLIBC_$newest; needs $(readelf -d "$b" | grep NEEDED | grep -oE '\[[^]]+\]' | tr -d '[]' | tr '\n' ' ')"
done
[ "$fail" = 0 ] || exit 1

python3 -m venv --without-pip "$work/venv"
venv_py=$work/venv/bin/python
python3 -m pip --python "$venv_py" install --no-index --quiet --disable-pip-version-check "$wheel"
for b in $bins; do
  "$work/venv/bin/$(basename "$b")" --version >/dev/null
done
echo "check-wheel: installed into a fresh virtualenv; every binary runs"
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  db=check_wheel_$$
  # CREATE / DROP DATABASE with the project's Python (psycopg2), the URL in the environment only
  admin() { SQL=$1 "${PYTHON:-.venv/bin/python}" -c 'import os, psycopg2
c = psycopg2.connect(os.environ["TEST_DATABASE_URL"]); c.autocommit = True
c.cursor().execute(os.environ["SQL"])'; }
  admin "CREATE DATABASE $db"
  url="${TEST_DATABASE_URL%/*}/$db"
  DATABASE_URL=$url "$work/venv/bin/migrate-up" --dir migrations -q
  DATABASE_URL=$url "$work/venv/bin/migrate-current" --dir migrations
  admin "DROP DATABASE $db WITH (FORCE)"
  echo "check-wheel: migrate-up and migrate-current of the installed wheel ran against the test server"
fi
