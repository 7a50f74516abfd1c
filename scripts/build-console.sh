#!/usr/bin/env bash
# Builds the web console into $BERTH_CONSOLE_DIR (default frontend/dist): the Leptos app to
# WASM with the size-optimised profile, wasm-bindgen's JS glue, xterm.js, the styles and the
# API reference page (Swagger UI).
# Skips the work when nothing it depends on changed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"

ensure_wasm_tools
OUT="${BERTH_CONSOLE_DIR:-$BERTH_ROOT/frontend/dist}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"

stamp_now="$(cat Cargo.lock frontend/Cargo.toml frontend/package.json frontend/index.html \
    <(find api/src frontend/src frontend/static style -type f | sort | xargs cat) | sha256sum | cut -c1-16)"
if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$stamp_now" ] && [ -f "$OUT/app_bg.wasm" ]; then
    log "console is up to date in $OUT"
    exit 0
fi

log "building the console (WASM)"
cargo build --quiet --profile wasm-release --target wasm32-unknown-unknown -p frontend
mkdir -p "$OUT"
wasm-bindgen --target web --no-typescript --out-dir "$OUT" --out-name app \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/frontend.wasm"
(cd frontend && npm ci --no-audit --no-fund --silent)
# Size: binaryen's wasm-opt -Oz roughly halves the module (2.7 MB → 1.3 MB, 690 → 520 KB
# gzipped). The npm build (pinned in package.json) is used because Debian's binaryen 108
# mangles wasm-bindgen's externref table. The features are those rustc emits for wasm32.
frontend/node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$OUT/app_bg.wasm" -o "$OUT/app_bg.wasm"
cp frontend/node_modules/@xterm/xterm/lib/xterm.js frontend/node_modules/@xterm/xterm/css/xterm.css \
   frontend/node_modules/@xterm/addon-fit/lib/addon-fit.js frontend/static/term.js \
   frontend/index.html style/berth.css "$OUT/"
# The API reference at /api/v1/docs: Swagger UI's standalone bundle beside our page and setup.
mkdir -p "$OUT/api-docs"
cp frontend/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
   frontend/node_modules/swagger-ui-dist/swagger-ui.css frontend/static/api-docs/* "$OUT/api-docs/"
echo "$stamp_now" > "$OUT/.stamp"
log "console built in $OUT ($(du -k "$OUT/app_bg.wasm" | cut -f1) KiB wasm)"
