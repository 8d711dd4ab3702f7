# retort — the user's entry point. `make help` lists every target.
#
# Extra arguments go through `args=`, e.g. `make migrate-down args="-2"`,
# `make migrate-up args="--dry-run"`, `make migrate-history args="-v"`.

SHELL := /bin/bash
CARGO ?= cargo
BIN ?= target/release
args ?=
m ?=
rev ?=

MIGRATE_BINS := migrate-up migrate-down migrate-current migrate-history migrate-revision migrate-check migrate-stamp
BUILT := $(addprefix $(BIN)/,$(MIGRATE_BINS))

.DEFAULT_GOAL := help
.PHONY: help build test lint fmt bench demo db-up db-down db-url deps \
        migrate-up migrate-down migrate-current migrate-history migrate-revision migrate-check migrate-stamp

help: ## List every target with one line each
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  %-24s %s\n", $$1, $$2}'

deps: ## Install what is missing (system packages, Rust check, PostgreSQL+pgvector into .venv)
	@scripts/setup.sh

build: ## Build the migrate-* binaries (release) into target/release
	$(CARGO) build --release --bin migrate-up --bin migrate-down --bin migrate-current \
	  --bin migrate-history --bin migrate-revision --bin migrate-check --bin migrate-stamp

test: deps ## Run every test against a throwaway PostgreSQL with pgvector (started and stopped here)
	scripts/pg.sh run -- $(CARGO) test --workspace --all-targets

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

bench: deps ## Benchmarks (release build) against a throwaway server; figures go to docs/benchmarks.md
	$(CARGO) build --release --workspace --all-targets
	scripts/pg.sh run -- scripts/bench.sh

db-up: deps ## Start the local development PostgreSQL with pgvector (port DB_PORT, default 5433)
	@scripts/pg.sh up

db-down: ## Stop the local development PostgreSQL (data kept in .pg/)
	@scripts/pg.sh down

db-url: ## Print the local development server's URL
	@scripts/pg.sh url

demo: deps build db-up ## Fresh machine: install, build, start PostgreSQL, apply migrations/, show current and history
	@[ -f .env ] || { cp .env.example .env; echo "created .env from .env.example"; }
	@export DATABASE_URL=$$(scripts/pg.sh url); \
	  set -e; \
	  echo "== migrate-up"; $(BIN)/migrate-up; \
	  echo "== migrate-current"; $(BIN)/migrate-current; \
	  echo "== migrate-history"; $(BIN)/migrate-history --indicate-current; \
	  echo "== migrate-check"; $(BIN)/migrate-check

$(BUILT): $(shell find core/src bins/src -name '*.rs' 2>/dev/null) Cargo.toml core/Cargo.toml bins/Cargo.toml
	@$(MAKE) --no-print-directory build

migrate-up: $(BIN)/migrate-up ## Apply pending migrations (args="TARGET --dry-run --sql ...")
	$(BIN)/migrate-up $(args)

migrate-down: $(BIN)/migrate-down ## Roll back the last migration (args="-2" / "base --yes" / REV)
	$(BIN)/migrate-down $(args)

migrate-current: $(BIN)/migrate-current ## Show the database's current revision (args="-v --check-heads")
	$(BIN)/migrate-current $(args)

migrate-history: $(BIN)/migrate-history ## Show the revision history (args="-v -i -r base:head --branches")
	$(BIN)/migrate-history $(args)

migrate-revision: $(BIN)/migrate-revision ## Create a new revision: m="message" (prompts when empty)
	$(BIN)/migrate-revision $(if $(m),-m "$(m)") $(args)

migrate-check: $(BIN)/migrate-check ## Exit 0 only if scripts are sound and the database is at the heads
	$(BIN)/migrate-check $(args)

migrate-stamp: $(BIN)/migrate-stamp ## Mark the database as at rev=REV without running scripts (args="--purge")
	@[ -n "$(rev)" ] || { echo 'usage: make migrate-stamp rev=REV [args="--purge"]' >&2; exit 2; }
	$(BIN)/migrate-stamp $(rev) $(args)
