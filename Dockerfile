# syntax=docker/dockerfile:1
#
# retort's container image: the seven migrate-* binaries, the PostgreSQL client tools (psql,
# pg_dump, pg_restore), the migrations/ directory and schema.sql (the declarative schema that
# `migrate-revision --autogenerate` and `migrate-check` compare with), running as a non-root user.
#
#   docker build -t retort .
#   docker run --rm -e DATABASE_URL=postgresql://user:pass@host:5432/db retort migrate-up --wait 60s
#
# Your application's image gets the binaries with
#   COPY --from=retort /usr/local/bin/migrate-* /usr/local/bin/
# (see docs/docker.md). Nothing secret is baked in: the database URL comes from the environment
# at run time (DATABASE_URL or PGVECTOR_DB_URL).
#
# Debian 13 (trixie) rather than 12 (bookworm): bookworm's postgresql-client is 15, and pg_dump
# refuses to dump a newer server (the compose file's pgvector/pgvector:pg16), so the backup step
# of scripts/staging-deploy.sh would fail. trixie's client is 17, which dumps servers up to 17.
# The builder and the runtime stage must share a Debian release: the binaries link OpenSSL.

ARG RUST_IMAGE=rust:1.95.0-trixie
ARG RUNTIME_IMAGE=debian:trixie-20260406-slim

# ---- builder: the release binaries --------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY core ./core
COPY bins ./bins
# The cache mounts keep the registry and the build directory between builds; the binaries are
# copied out of the cached target directory into /out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p retort-bins \
      --bin migrate-up --bin migrate-down --bin migrate-current --bin migrate-history \
      --bin migrate-revision --bin migrate-check --bin migrate-stamp \
    && mkdir -p /out \
    && cp target/release/migrate-up target/release/migrate-down target/release/migrate-current \
          target/release/migrate-history target/release/migrate-revision \
          target/release/migrate-check target/release/migrate-stamp /out/

# ---- runtime ----------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
# postgresql-client: psql, pg_dump, pg_restore (major 17; the version glob pins the major).
# ca-certificates: sslmode=verify-full against servers signed by a public CA.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
         postgresql-client-17='17.*' ca-certificates='2025*' \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 retort \
    && useradd --system --uid 10001 --gid retort --home-dir /app --no-create-home \
         --shell /usr/sbin/nologin retort \
    && mkdir -p /app/migrations /backups \
    && chown retort:retort /app /backups

COPY --from=builder /out/ /usr/local/bin/
COPY --chown=retort:retort migrations/ /app/migrations/
COPY --chown=retort:retort schema.sql /app/schema.sql
COPY --chown=retort:retort --chmod=755 scripts/staging-deploy.sh /usr/local/bin/staging-deploy

WORKDIR /app
ENV MIGRATIONS_DIR=/app/migrations \
    MIGRATE_SCHEMA_FILE=/app/schema.sql \
    BACKUP_DIR=/backups \
    RETORT_BIN=/usr/local/bin
# numeric, so that Kubernetes runAsNonRoot can verify it (10001 is the user `retort`)
USER 10001:10001

# One-shot by default: apply pending migrations, waiting up to a minute for the server.
CMD ["migrate-up", "--wait", "60s"]
