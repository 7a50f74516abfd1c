#!/usr/bin/env bash
# The second command: installs what the tests need, then runs every test — formatting and
# lints, unit tests, integration tests against the real Docker engine, the API contract check
# (schemathesis against a live server) and the end-to-end stories in headless Chromium; the
# database-touching integration tests run a second time on a throwaway PostgreSQL cluster.
# Idempotent; CI runs it through .ci/run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"
export CARGO_TERM_COLOR=never

ensure_docker
ensure_images
# The metrics test scrapes a gateway with a real Prometheus (gateway/tests/it/metrics.rs).
ensure_prometheus
# The SSH tests (gateway/tests/it/ssh.rs) and the workspace story use the real OpenSSH client.
ensure_ssh_client
ensure_chromium
bash scripts/build-console.sh
ensure_e2e_deps

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (server crates, then the console for wasm32)"
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet -p frontend --target wasm32-unknown-unknown -- -D warnings

log "cargo test: unit and integration tests (real Docker)"
cargo test --workspace --exclude frontend 2>&1 | tee "$BERTH_CACHE/cargo-test.log" | grep -vE '^test .* \.\.\. ok$'

# The PostgreSQL pass: the integration tests that touch the database in ways that differ
# between the backends (accounts and logins, session lifecycle and transitions, the scheduler's
# queue, folder quota races and sharing, policies, nodes, kill -9 recovery, the wire contract),
# each on a fresh database of a throwaway cluster, and the gateway replicas (two `berth serve`
# on one database, nginx in front): 44 tests, about 4 minutes on 2 cores. In this pass the
# PostgreSQL-restart test cuts every connection; then it runs alone with a real restart of
# the cluster (pg_ctl restart under load, about 20 s).
PG_TESTS=(accounts:: auth:: dotfiles:: sessions:: scheduler:: vfolders:: vfolders_attack::racing nodes:: home::
          crash:: contract:: replicas:: limits::a_parallel_burst stats:: metrics:: usage:: ssh::)
log "cargo test: the database-touching integration tests again, on PostgreSQL"
ensure_postgres
ensure_nginx
BERTH_TEST_DATABASE_URL="$BERTH_PG_URL" cargo test -p gateway --test it -- "${PG_TESTS[@]}" 2>&1 \
    | tee "$BERTH_CACHE/cargo-test-pg.log" | grep -vE '^test .* \.\.\. ok$'
BERTH_TEST_DATABASE_URL="$BERTH_PG_URL" BERTH_TEST_PG_RESTART="$BERTH_PG_RESTART" \
    cargo test -p gateway --test it -- --exact \
    replicas::postgresql_restarted_under_load_behind_nginx_loses_and_doubles_nothing 2>&1 \
    | grep -vE '^test .* \.\.\. ok$'
log "API contract: the served OpenAPI document, validated and exercised by schemathesis"
bash scripts/contract.sh

log "end-to-end stories in headless Chromium"
cargo build --quiet -p gateway
BERTH_BIN="$CARGO_TARGET_DIR/debug/berth" BERTH_CONSOLE_DIR="$BERTH_ROOT/frontend/dist" \
    node --test --test-concurrency=1 e2e/tests/
log "all tests passed"
