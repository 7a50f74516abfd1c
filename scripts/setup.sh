#!/usr/bin/env bash
# The first command: installs whatever is missing (Docker engine, session images, WASM
# tools, the console build, the berth binary) and starts `berth serve` on 127.0.0.1:8080.
# Idempotent: a second run skips finished work. Extra arguments go to `berth serve`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"

ensure_docker
ensure_images
bash scripts/build-console.sh
log "building berth (release)"
cargo build --quiet --release -p gateway
export BERTH_CONSOLE_DIR="${BERTH_CONSOLE_DIR:-$BERTH_ROOT/frontend/dist}"
log "starting berth serve (data in ${BERTH_DATA_DIR:-$BERTH_ROOT/berth-data}; it prints the address to open)"
exec "$CARGO_TARGET_DIR/release/berth" serve "$@"
