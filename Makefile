# retort — the user's entry point. `make help` lists every target.
#
# Extra arguments go through `args=`, e.g. `make migrate-down args="-2"`,
# `make migrate-up args="--dry-run"`, `make migrate-history args="--detail"`.
#
# The migrate-* targets run the binaries in BIN. By default (BIN=target/release) they are built
# from this checkout first when a source changed. Any other BIN runs what is there and needs no
# cargo: `BIN=.venv/bin` (the wheel installed with pip), `BIN=/usr/local/bin`, or `BIN=` /
# `BIN=path` for the binaries on PATH.

SHELL := /bin/bash
CARGO ?= cargo
BIN ?= target/release
args ?=
m ?=
rev ?=

VENV ?= .venv
PYTHON ?= $(VENV)/bin/python

MIGRATE_BINS := migrate-up migrate-down migrate-current migrate-history migrate-revision migrate-check migrate-stamp migrate-import
ifeq ($(strip $(BIN)),target/release)
  # built here: each migrate-* target depends on its binary, rebuilt through cargo when stale
  BIN_PREFIX := target/release/
  BUILT := $(addprefix $(BIN_PREFIX),$(MIGRATE_BINS))
  bin_dep = $(BIN_PREFIX)$(1)
else ifeq ($(filter-out path,$(strip $(BIN))),)
  # BIN= or BIN=path: the binaries on PATH
  BIN_PREFIX :=
  BUILT :=
  bin_dep =
else
  # installed elsewhere (e.g. BIN=.venv/bin after pip install retort-migrate): run, never build
  BIN_PREFIX := $(patsubst %/,%,$(strip $(BIN)))/
  BUILT :=
  bin_dep =
endif

.DEFAULT_GOAL := help
.PHONY: help build test test-rust test-16 test-18 lint fmt bench bench-backfill bench-vector-swap bench-fleet test-histories demo db-up db-down db-url deps wheel wheel-manylinux2014 test-python \
        migrate-up migrate-down migrate-current migrate-history migrate-revision migrate-check migrate-stamp \
        migrate-import

help: ## List every target with one line each
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  %-24s %s\n", $$1, $$2}'

deps: ## Install what is missing (system packages, Rust check, PostgreSQL+pgvector into .venv)
	@scripts/setup.sh

build: ## Build the migrate-* binaries (release) into target/release
	$(CARGO) build --release --bin migrate-up --bin migrate-down --bin migrate-current \
	  --bin migrate-history --bin migrate-revision --bin migrate-check --bin migrate-stamp \
	  --bin migrate-import

test: deps ## Every test: Rust on PostgreSQL 16 (pgvector 0.6) and 18 (pgvector 0.8), Python on 16
	$(CARGO) test --workspace --all-targets --no-run
	PG_SERVER=16 scripts/pg.sh run -- bash -c '$(CARGO) test --workspace --all-targets && "$(abspath $(PYTHON))" -m pytest python/tests -q'
	PG_SERVER=18 scripts/pg.sh run -- $(CARGO) test --workspace --all-targets

test-rust: deps ## The Rust tests only, on both servers
	PG_SERVER=16 scripts/pg.sh run -- $(CARGO) test --workspace --all-targets
	PG_SERVER=18 scripts/pg.sh run -- $(CARGO) test --workspace --all-targets

test-16: deps ## The Rust tests on PostgreSQL 16.2 with pgvector 0.6.2 only
	PG_SERVER=16 scripts/pg.sh run -- $(CARGO) test --workspace --all-targets

test-18: deps ## The Rust tests on PostgreSQL 18.6 with pgvector 0.8.6 only
	PG_SERVER=18 scripts/pg.sh run -- $(CARGO) test --workspace --all-targets

test-python: deps ## Python tests (exporter, schema provider, API, wheel) against a throwaway PostgreSQL
	scripts/pg.sh run -- $(abspath $(PYTHON)) -m pytest python/tests -q $(args)

test-histories: deps ## migrate-import on every real Alembic history (python/tests/real_histories.py), the long ones too
	RETORT_SLOW_HISTORIES=1 scripts/pg.sh run -- $(abspath $(PYTHON)) -m pytest python/tests/test_real_histories.py -q $(args)

wheel: deps ## Build the Python wheel retort-migrate (migrate-* binaries + python/) into target/wheels/
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/maturin build --release --out target/wheels $(args)

ZIGLANG_VERSION ?= 0.17.0
wheel-manylinux2014: deps ## The wheel for glibc 2.17+ (manylinux2014: RHEL 8, Amazon Linux 2, Debian 11, Ubuntu 20.04), linked with zig, into target/wheels/, then checked (scripts/check-wheel.sh)
	@$(PYTHON) -c 'import ziglang' 2>/dev/null || $(VENV)/bin/pip install --quiet --disable-pip-version-check "ziglang==$(ZIGLANG_VERSION)"
	CARGO_TARGET_DIR="$(abspath target/zig)" PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/maturin build --release --zig --compatibility manylinux2014 --out target/wheels $(args)
	scripts/pg.sh run -- scripts/check-wheel.sh "$$(ls -t target/wheels/retort_migrate-*manylinux_2_17*.whl | head -1)"

lint: ## cargo fmt --check, clippy, rustdoc with warnings as errors, and core's layers (no cycle, no upward import)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps
	$(CARGO) test -p retort --test layers

fmt: ## Format the code
	$(CARGO) fmt --all

bench: deps ## Benchmarks (release build) against a throwaway server; figures go to docs/benchmarks.md
	scripts/install-bench-tools.sh
	$(CARGO) build --release --workspace --all-targets
	PG_TMPDIR=$${PG_TMPDIR:-/dev/shm} scripts/pg.sh run -- scripts/bench-speed.sh
	PG_TMPDIR=$${PG_TMPDIR:-/dev/shm} scripts/pg.sh run -- scripts/bench.sh
	PG_TMPDIR=$${PG_TMPDIR:-/dev/shm} scripts/pg.sh run -- scripts/bench-fleet.sh
	scripts/pg.sh run -- scripts/bench-backfill.sh
	scripts/pg.sh run -- scripts/bench-vector-swap.sh

bench-vector-swap: deps ## Vector swap benchmark only: 100,000 x 384, the --vector-swap chain vs the same steps by hand, under inserts and queries
	$(CARGO) build --release -p retort-bins --bin migrate-up --bin migrate-revision --bin migrate-check
	scripts/pg.sh run -- scripts/bench-vector-swap.sh

bench-backfill: deps ## Backfill benchmark only: 1,000,000 rows, one UPDATE vs a backfill step, writes' latency and replica lag
	$(CARGO) build --release -p retort-bins --bin migrate-up
	scripts/pg.sh run -- scripts/bench-backfill.sh

bench-fleet: deps ## Fleet benchmarks only: 1,000 tenant schemas, 200 databases x 20 revisions, a 10,000-revision chain
	$(CARGO) build --release -p retort-bins
	PG_TMPDIR=$${PG_TMPDIR:-/dev/shm} scripts/pg.sh run -- scripts/bench-fleet.sh

db-up: deps ## Start the local development PostgreSQL with pgvector (port DB_PORT, default 5433)
	@scripts/pg.sh up

db-down: ## Stop the local development PostgreSQL (data kept in .pg/)
	@scripts/pg.sh down

db-url: ## Print the local development server's URL
	@scripts/pg.sh url

demo: deps $(if $(BUILT),build) db-up ## Fresh machine: install, build, start PostgreSQL, apply migrations/, show current and history
	@[ -f .env ] || { cp .env.example .env; echo "created .env from .env.example"; }
	@export DATABASE_URL=$$(scripts/pg.sh url); \
	  set -e; \
	  echo "== migrate-up"; $(BIN_PREFIX)migrate-up; \
	  echo "== migrate-current"; $(BIN_PREFIX)migrate-current; \
	  echo "== migrate-history"; $(BIN_PREFIX)migrate-history --indicate-current; \
	  echo "== migrate-check"; $(BIN_PREFIX)migrate-check

ifneq ($(BUILT),)
$(BUILT): $(shell find core/src bins/src -name '*.rs' 2>/dev/null) Cargo.toml core/Cargo.toml bins/Cargo.toml
	@$(MAKE) --no-print-directory build
endif

migrate-up: $(call bin_dep,migrate-up) ## Apply pending migrations (args="TARGET --dry-run --sql ...")
	$(BIN_PREFIX)migrate-up $(args)

migrate-down: $(call bin_dep,migrate-down) ## Roll back the last migration (args="-2" / "base --yes" / REV)
	$(BIN_PREFIX)migrate-down $(args)

migrate-current: $(call bin_dep,migrate-current) ## Show the database's current revision (args="--detail --check-heads")
	$(BIN_PREFIX)migrate-current $(args)

migrate-history: $(call bin_dep,migrate-history) ## Show the revision history (args="--detail -i -r base:head --branches")
	$(BIN_PREFIX)migrate-history $(args)

migrate-revision: $(call bin_dep,migrate-revision) ## Create a new revision: m="message" (prompts when empty)
	$(BIN_PREFIX)migrate-revision $(if $(m),-m "$(m)") $(args)

migrate-check: $(call bin_dep,migrate-check) ## Exit 0 only if scripts are sound and the database is at the heads
	$(BIN_PREFIX)migrate-check $(args)

migrate-stamp: $(call bin_dep,migrate-stamp) ## Mark the database as at rev=REV without running scripts (args="--purge")
	@[ -n "$(rev)" ] || { echo 'usage: make migrate-stamp rev=REV [args="--purge"]' >&2; exit 2; }
	$(BIN_PREFIX)migrate-stamp $(rev) $(args)

migrate-import: $(call bin_dep,migrate-import) ## Import the Alembic history of alembic.ini into migrations/ (args="--allow-unconverted --no-verify ...")
	$(BIN_PREFIX)migrate-import $(args)

# ==== Containers (docker compose) ==========================================================
# docs/docker.md explains the workflow. The docker-migrate-* targets run the binaries inside the
# running SERVICE container (default: backend) with `docker compose exec`, taking the same
# args= / m= / rev= as the local targets above, e.g.
#   make docker-migrate-down args="-2"      make docker-migrate-revision m="add user prefs"
#   make docker-migrate-stamp rev=003       make docker-migrate-current SERVICE=api
# For the production stack, point Compose at its file: COMPOSE_FILE=docker-compose.prod.yml.
# docker-migrate-revision runs as your own uid:gid (REVISION_USER), so the file it writes into
# the bind-mounted ./migrations belongs to you.

COMPOSE ?= docker compose
SERVICE ?= backend
PROD_COMPOSE_FILE ?= docker-compose.prod.yml
REVISION_USER ?= $(shell id -u):$(shell id -g)
# lint-containers: hadolint (scripts/install-linters.sh puts it in .venv), docker-compose v1
# (whose `config` validates a compose file without a Docker engine), shellcheck, and
# kubernetes-validate (PyPI, in .venv: Kubernetes' own schemas, offline) for docs/deploy/
HADOLINT ?= $(if $(wildcard .venv/bin/hadolint),.venv/bin/hadolint,hadolint)
COMPOSE_LINT ?= docker-compose
SHELLCHECK ?= shellcheck
KUBE_VALIDATE ?= $(if $(wildcard .venv/bin/kubernetes-validate),.venv/bin/kubernetes-validate,kubernetes-validate)
SHELL_SCRIPTS = $(shell grep -lE '^\#!.*\b(ba)?sh\b' scripts/* .ci/run 2>/dev/null)

.PHONY: dev dev-local prod docker-migrate docker-migrate-up docker-migrate-down \
        docker-migrate-revision docker-migrate-history docker-migrate-current \
        docker-migrate-check docker-migrate-stamp lint-containers

dev: ## Containers: build and start db, migrate (one-shot), backend (docker compose up --build)
	$(COMPOSE) up --build $(args)

dev-local: ## Containers: only the database, on localhost:DB_PORT (5433); then the local targets
	$(COMPOSE) up -d db

prod: ## Containers: build and start the production stack (docker-compose.prod.yml)
	$(COMPOSE) -f $(PROD_COMPOSE_FILE) up -d --build $(args)

docker-migrate: ## Containers: run the one-shot migrate service again (docker compose run --rm migrate)
	$(COMPOSE) run --rm migrate

docker-migrate-up: ## Containers: migrate-up in SERVICE (args="TARGET --dry-run --sql ...")
	$(COMPOSE) exec $(SERVICE) migrate-up $(args)

docker-migrate-down: ## Containers: migrate-down in SERVICE (args="-2" / "base --yes" / REV)
	$(COMPOSE) exec $(SERVICE) migrate-down $(args)

docker-migrate-revision: ## Containers: new revision in SERVICE's mounted migrations/: m="message"
	$(COMPOSE) exec --user $(REVISION_USER) $(SERVICE) migrate-revision $(if $(m),-m "$(m)") $(args)

docker-migrate-history: ## Containers: migrate-history in SERVICE (args="--detail -i -r base:head")
	$(COMPOSE) exec $(SERVICE) migrate-history $(args)

docker-migrate-current: ## Containers: migrate-current in SERVICE (args="--detail --check-heads")
	$(COMPOSE) exec $(SERVICE) migrate-current $(args)

docker-migrate-check: ## Containers: migrate-check in SERVICE (exit 0 only if at the heads)
	$(COMPOSE) exec $(SERVICE) migrate-check $(args)

docker-migrate-stamp: ## Containers: migrate-stamp rev=REV in SERVICE (args="--purge")
	@[ -n "$(rev)" ] || { echo 'usage: make docker-migrate-stamp rev=REV [args="--purge"]' >&2; exit 2; }
	$(COMPOSE) exec $(SERVICE) migrate-stamp $(rev) $(args)

lint-containers: ## hadolint the Dockerfile, validate the compose files and the Kubernetes example, shellcheck the scripts
	$(HADOLINT) Dockerfile
	$(COMPOSE_LINT) -f docker-compose.yml config -q
	POSTGRES_PASSWORD=lint-only $(COMPOSE_LINT) -f $(PROD_COMPOSE_FILE) config -q
	POSTGRES_PASSWORD=lint-only $(COMPOSE_LINT) -f docs/deploy/compose-replicas.yml config -q
	$(KUBE_VALIDATE) --strict --quiet docs/deploy/kubernetes.yaml
	$(SHELLCHECK) $(SHELL_SCRIPTS)
