#!/usr/bin/env bash
# Launch latency benchmark: POST /api/v1/sessions → the session RUNNING (its container
# started), for a small `berth/base` session, measured on two berth builds side by side in the
# same run, launches alternating between them so both see the same machine load. Prints each
# build's median, p90 and the difference of the medians.
#
# Usage: scripts/bench-launch.sh [BEFORE_BIN] [AFTER_BIN]
#   BEFORE_BIN  another build of berth (e.g. the previous commit's release binary); without it,
#               only the current build is measured.
#   AFTER_BIN   defaults to this checkout's release build (built if needed).
# Environment: BENCH_LAUNCHES (launches per build, default 20).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"

BEFORE="${1:-}"
AFTER="${2:-}"
LAUNCHES="${BENCH_LAUNCHES:-20}"
ensure_docker
ensure_images
if [ -z "$AFTER" ]; then
    log "building berth (release)"
    cargo build --quiet --release -p gateway
    AFTER="$CARGO_TARGET_DIR/release/berth"
fi

WORK="$(mktemp -d "$BERTH_CACHE/bench-launch.XXXXXX")"
cleanup() {
    # (`start` runs in a command substitution, so the pids are kept in files.)
    for f in "$WORK"/*/pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    sleep 0.5
    for d in "$WORK"/*/; do
        [ -f "$d/data/berth.db" ] || continue
        id="$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT value FROM meta WHERE key='instance_id'\").fetchone()[0])" "$d/data/berth.db" 2>/dev/null || true)"
        [ -n "$id" ] && docker ps -aq --filter "label=berth.instance=$id" | xargs -r docker rm -f >/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

start() {  # NAME BIN: starts a gateway, prints its URL
    local name="$1" bin="$2" port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    mkdir -p "$WORK/$name/data"
    BERTH_ADMIN_PASSWORD="bench-launch-password" BERTH_LOG=warn "$bin" serve \
        --listen "127.0.0.1:$port" --data-dir "$WORK/$name/data" --console-dir "$WORK/none" \
        >"$WORK/$name/berth.log" 2>&1 &
    echo "$!" >"$WORK/$name/pid"
    for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
    echo "http://127.0.0.1:$port"
}

URLS=()
NAMES=()
if [ -n "$BEFORE" ]; then
    URLS+=("$(start before "$BEFORE")"); NAMES+=(before)
fi
URLS+=("$(start after "$AFTER")"); NAMES+=(after)

python3 - "$LAUNCHES" "${NAMES[*]}" "${URLS[@]}" <<'PY'
import http.cookiejar, json, statistics, sys, time, urllib.request

launches, names, urls = int(sys.argv[1]), sys.argv[2].split(), sys.argv[3:]

def client(url):
    jar = http.cookiejar.CookieJar()
    op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    def call(method, path, body=None):
        req = urllib.request.Request(url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Origin": url})
        with op.open(req) as r:
            data = r.read()
            return json.loads(data) if data else None
    call("POST", "/api/v1/auth/login", {"username": "admin", "password": "bench-launch-password"})
    return call

calls = [client(u) for u in urls]
times = {n: [] for n in names}
for i in range(launches + 1):
    for name, call in zip(names, calls):
        t0 = time.monotonic()
        s = call("POST", "/api/v1/sessions", {"image": "berth/base", "resources": {"cpu": "0.25", "mem": "128m"}})
        while True:
            st = call("GET", f"/api/v1/sessions/{s['id']}")["status"]
            if st == "RUNNING":
                break
            if st in ("ERROR", "CANCELLED", "TERMINATED"):
                sys.exit(f"{name}: the session ended {st}")
            time.sleep(0.005)
        dt = (time.monotonic() - t0) * 1000
        if i > 0:  # the first launch of each warms up
            times[name].append(dt)
        call("DELETE", f"/api/v1/sessions/{s['id']}")
for n in names:
    t = sorted(times[n])
    print(f"{n:7} median {statistics.median(t):6.0f} ms   p90 {t[int(len(t) * 0.9) - 1]:6.0f} ms   ({len(t)} launches)")
if len(names) == 2:
    d = statistics.median(times["after"]) - statistics.median(times["before"])
    print(f"after - before (medians): {d:+.0f} ms")
PY
