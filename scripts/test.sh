#!/usr/bin/env bash
# The second command: installs what the tests need, then runs every test — formatting and
# lints, unit tests, integration tests against the real Docker engine, and the end-to-end
# stories in headless Chromium. Idempotent; CI runs it through .ci/run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"
export CARGO_TERM_COLOR=never

ensure_docker
ensure_images
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

log "end-to-end stories in headless Chromium"
cargo build --quiet -p gateway
BERTH_BIN="$CARGO_TARGET_DIR/debug/berth" BERTH_CONSOLE_DIR="$BERTH_ROOT/frontend/dist" \
    node --test --test-concurrency=1 e2e/tests/
log "all tests passed"
