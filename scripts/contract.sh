#!/usr/bin/env bash
# The API contract check, against a live server: starts a real `berth serve` on a temporary
# data dir, logs in as the superadmin, makes an API key, checks the served OpenAPI document with
# openapi-spec-validator, and runs schemathesis over every operation with that key. Fails on a
# 5xx, a status or content type the document does not list, or a body that breaks its schema.
# Bounded to a few minutes on 2 cores; removes the containers of its instance at the end.
#
#   scripts/contract.sh               (BERTH_BIN: the berth binary; default: build it)
#   CONTRACT_EXAMPLES=N               test cases per operation and phase (default 50)
#   CONTRACT_TIMEOUT=S                the most seconds schemathesis may run (default 300)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"

ensure_contract_tools
VENV="$BERTH_CACHE/venv"
if [ -z "${BERTH_BIN:-}" ]; then
    cargo build --quiet -p gateway
    BERTH_BIN="$CARGO_TARGET_DIR/debug/berth"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/berth-contract.XXXXXX")"
pid=""
instance=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [ -n "$instance" ]; then
        # Twice: a create the stopped gateway had in flight may land after the first listing.
        for _ in 1 2; do
            ids="$(docker ps -aq --filter "label=berth.instance=$instance")"
            [ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || true
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT
# A signal (a CI timeout, ^C) still cleans up: exit, which runs the EXIT trap (once the
# command in the foreground ends; schemathesis is bounded by CONTRACT_TIMEOUT).
trap 'exit 130' INT TERM

log "contract: starting berth serve on a temporary data dir"
password="contract-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$work/data" "$work/no-console"
BERTH_ADMIN_PASSWORD="$password" BERTH_CONSOLE_DIR="$work/no-console" \
    BERTH_LOG="info,sqlx=warn,tower_http=warn" \
    env -u BERTH_PUBLIC_URL -u BERTH_LISTEN -u BERTH_DATA_DIR -u BERTH_DOCKER_HOST \
    "$BERTH_BIN" serve --listen 127.0.0.1:0 --data-dir "$work/data" \
    >"$work/stdout" 2>"$work/gateway.log" </dev/null &
pid=$!
addr=""
for _ in $(seq 1 300); do
    addr="$(sed -n 's|^berth: listening on http://\([^ ]*\).*|\1|p' "$work/stdout")"
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$addr" ]; then
    tail -n 40 "$work/gateway.log" >&2
    die "berth serve did not say where it listens"
fi
base="http://$addr/api/v1"
instance="$("$VENV/bin/python" -c '
import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(db.execute("SELECT value FROM meta WHERE key = ?", ("instance_id",)).fetchone()[0])
' "$work/data/berth.db")"

curl -sf -c "$work/cookies" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$password\"}" "$base/auth/login" >/dev/null ||
    die "cannot log in to the contract server"
# POST JSON with the login cookie; prints the answer's `id` (or `key`).
make() {
    curl -sf -b "$work/cookies" -H 'Content-Type: application/json' -d "$2" "$base$1" |
        "$VENV/bin/python" -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "${3:-id}" ||
        die "contract set-up: POST $1 failed"
}
export BERTH_CONTRACT_KEY BERTH_CONTRACT_FOLDER BERTH_CONTRACT_SPARE_FOLDER BERTH_CONTRACT_SESSION \
    BERTH_CONTRACT_USER BERTH_CONTRACT_PROJECT
BERTH_CONTRACT_KEY="$(make /keys '{"name":"contract"}' key)"
BERTH_CONTRACT_FOLDER="$(make /vfolders '{"name":"contract"}')"
BERTH_CONTRACT_SPARE_FOLDER="$(make /vfolders '{"name":"contract-spare"}')"
BERTH_CONTRACT_USER="$(make /users "{\"username\":\"contract-user\",\"password\":\"$password\"}")"
BERTH_CONTRACT_PROJECT="$(make /projects '{"name":"contract"}')"
BERTH_CONTRACT_SESSION="$(make /sessions '{"image":"berth/base","resources":{"cpu":"0.1","mem":"64m"}}')"

log "contract: openapi-spec-validator"
curl -sf "$base/openapi.json" >"$work/openapi.json"
"$VENV/bin/openapi-spec-validator" "$work/openapi.json"
cmp -s "$work/openapi.json" docs/openapi.json ||
    die "the served document differs from docs/openapi.json; run BERTH_BLESS=1 cargo test -p gateway openapi"

log "contract: schemathesis over every operation"
# scripts/contract.toml holds the key, the ids to use and the checks left out (with why);
# scripts/contract_hooks.py says how to send a tus chunk.
set +e
# Run from the work dir, so schemathesis's cache stays out of the checkout.
(cd "$work" && PYTHONPATH="$BERTH_ROOT/scripts" SCHEMATHESIS_HOOKS=contract_hooks \
    timeout --kill-after=10 "${CONTRACT_TIMEOUT:-300}" \
    "$VENV/bin/schemathesis" --config-file "$BERTH_ROOT/scripts/contract.toml" run "$base/openapi.json" \
    --url "$base" \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "${CONTRACT_EXAMPLES:-50}" \
    --workers 2 \
    --request-timeout 20 \
    --seed 14 \
    --no-color \
    --report junit --report-dir "$work/report") 2>&1 | tee "$work/schemathesis.log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
    log "contract: gateway log (last lines)"
    tail -n 40 "$work/gateway.log" >&2
    mkdir -p "$BERTH_CACHE"
    cp "$work/schemathesis.log" "$BERTH_CACHE/contract-schemathesis.log"
    die "schemathesis found contract breaks (log: $BERTH_CACHE/contract-schemathesis.log)"
fi
log "contract: passed"
