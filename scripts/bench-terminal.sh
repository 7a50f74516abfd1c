#!/usr/bin/env bash
# Terminal throughput benchmark: berth's terminal websocket vs `docker exec -t`, same run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"
ensure_docker
ensure_images
cargo build --quiet --release -p gateway --bin berth --example bench_terminal
"$CARGO_TARGET_DIR/release/examples/bench_terminal" "$@"
