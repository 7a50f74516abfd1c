#!/usr/bin/env bash
# App-proxy benchmark: the same container port (nginx serving a 1 KiB file inside a berth
# session) reached four ways in the same run, all on 127.0.0.1:
#   direct  the port Docker publishes on 127.0.0.1 (docker-proxy)
#   berth   berth's app proxy (subdomain mode, Host: web--SESSION.localhost:PORT + app cookie)
#   nginx   nginx on the host as a reverse proxy (1 worker, keepalive upstream): the ceiling
#   chp     configurable-http-proxy (npm), the peer JupyterHub uses
# wrk at each concurrency; prints requests/s, p50 and p99, and the ratios berth/nginx,
# berth/chp and berth's p50 minus nginx's.
#
# Usage: scripts/bench-apps.sh
# Environment: BENCH_DURATION (seconds per run, default 10), BENCH_CONCURRENCY (default
# "1 10 50"), BENCH_ROUNDS (default 2; the runs of each round are interleaved, figures are the
# mean of the rounds).
#
# Everything it starts (berth, the session, nginx, configurable-http-proxy) is stopped at the end,
# also on failure or Ctrl-C; a run that was killed outright is cleaned up by the next one.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"

DURATION="${BENCH_DURATION:-10}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 10 50}"
ROUNDS="${BENCH_ROUNDS:-2}"
BENCH_IMAGE="berth/bench-nginx:latest"
BENCH_DIR="$BERTH_CACHE/bench"
CHP_VERSION="4.6.3"
STATE="$BENCH_DIR/apps-run.state"   # what the current run started, for a later run to clean up
ADMIN_PASSWORD="bench-apps-password"

mkdir -p "$BENCH_DIR"

# ---------------------------------------------------------------------------------------------
# Cleanup

WORK=""
BERTH_PID=""
NGINX_PID=""
CHP_PID=""
BASE=""
SID=""

_kill_pid() {  # PID MARK: TERM, then KILL, a process we started (its command line holds MARK)
    local pid="$1" mark="$2" _
    [ -n "$pid" ] || return 0
    [ -r "/proc/$pid/cmdline" ] || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$mark" || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$SID" ] && [ -n "$BASE" ] && [ -n "$WORK" ]; then
        curl -s -o /dev/null -m 20 -b "$WORK/cookies" -X DELETE "$BASE/api/v1/sessions/$SID"
        # Wait (briefly) for the container to go before stopping berth.
        for _ in $(seq 1 50); do
            docker inspect "berth-$SID" >/dev/null 2>&1 || break
            sleep 0.2
        done
    fi
    [ -n "$WORK" ] && _kill_pid "$CHP_PID" "$WORK"
    [ -n "$WORK" ] && _kill_pid "$NGINX_PID" "$WORK"
    [ -n "$WORK" ] && _kill_pid "$BERTH_PID" "$WORK"
    [ -n "$SID" ] && docker rm -f "berth-$SID" >/dev/null 2>&1
    [ -n "$WORK" ] && rm -rf "$WORK"
    rm -f "$STATE"
    exit "$rc"
}

# A previous run killed with SIGKILL: stop what it left (only processes whose command line
# names its work dir, and its session container).
cleanup_stale() {
    [ -r "$STATE" ] || return 0
    local work="" pids="" sid=""
    # shellcheck disable=SC1090
    . "$STATE"
    if [ -n "$work" ]; then
        log "cleaning up after an interrupted run ($work)"
        for p in $pids; do _kill_pid "$p" "$work"; done
        rm -rf "$work"
    fi
    if [ -n "$sid" ]; then docker rm -f "berth-$sid" >/dev/null 2>&1 || true; fi
    rm -f "$STATE"
}

save_state() {
    printf 'work=%q\npids=%q\nsid=%q\n' "$WORK" "$BERTH_PID $NGINX_PID $CHP_PID" "$SID" >"$STATE"
}

# ---------------------------------------------------------------------------------------------
# Set-up

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

json_get() {  # KEY.PATH < JSON
    python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v.get(k)
print("" if v is None else v)' "$1"
}

ensure_bench_image() {
    local dir="$BERTH_ROOT/images/bench-nginx" want have
    want="$(berth_dir_hash "$dir") $(_berth_image_id "$BERTH_BASE_IMAGE")"
    have="$(docker image inspect -f '{{index .Config.Labels "berth.recipe-hash"}} {{index .Config.Labels "berth.base-id"}}' \
        "$BENCH_IMAGE" 2>/dev/null || true)"
    [ "$have" = "$want" ] && return 0
    log "docker build $BENCH_IMAGE from images/bench-nginx (apt-get install nginx-light)"
    DOCKER_BUILDKIT=0 docker build \
        --label "berth.recipe-hash=$(berth_dir_hash "$dir")" \
        --label "berth.base-id=$(_berth_image_id "$BERTH_BASE_IMAGE")" \
        -t "$BENCH_IMAGE" "$dir" >"$BENCH_DIR/build-bench-nginx.log" 2>&1 || {
        tail -n 30 "$BENCH_DIR/build-bench-nginx.log" >&2
        die "docker build of $BENCH_IMAGE failed (full log: $BENCH_DIR/build-bench-nginx.log)"
    }
    docker image prune -f --filter 'label=berth.recipe-hash' >/dev/null 2>&1 || true
}

ensure_chp() {
    local pkg="$BENCH_DIR/node_modules/configurable-http-proxy/package.json"
    if [ -r "$pkg" ] && grep -q "\"version\": \"$CHP_VERSION\"" "$pkg"; then
        return 0
    fi
    log "npm install configurable-http-proxy@$CHP_VERSION into $BENCH_DIR"
    (cd "$BENCH_DIR" && npm install --no-audit --no-fund --silent --no-save \
        "configurable-http-proxy@$CHP_VERSION" >&2)
}

wait_http_ok() {  # URL [curl args...]: until 200 with a 1024-byte body, 60 s at most
    local url="$1" deadline=$((SECONDS + 60)) out
    shift
    while [ "$SECONDS" -lt "$deadline" ]; do
        out="$(curl -s -m 5 -o /dev/null -w '%{http_code} %{size_download}' "$@" "$url" || true)"
        [ "$out" = "200 1024" ] && return 0
        sleep 0.2
    done
    die "$url never answered 200 with the 1 KiB file (last: $out)"
}

cleanup_stale
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_docker
ensure_images
ensure_bench_image
apt_install nginx wrk curl
ensure_chp
# BERTH_BIN runs another build (e.g. the previous commit's) to compare two builds.
if [ -z "${BERTH_BIN:-}" ]; then
    log "cargo build --release -p gateway --bin berth"
    cargo build --quiet --release -p gateway --bin berth
    BERTH_BIN="$CARGO_TARGET_DIR/release/berth"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-apps.XXXXXX")"
mkdir -p "$WORK/data" "$WORK/nginx" "$WORK/out"
save_state

# ---------------------------------------------------------------------------------------------
# berth, a session of the nginx image, the app opened through the proxy

log "starting berth serve"
BERTH_ADMIN_PASSWORD="$ADMIN_PASSWORD" BERTH_LOG=warn \
    "$BERTH_BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" \
    >"$WORK/berth.out" 2>"$WORK/berth.err" </dev/null &
BERTH_PID=$!
save_state
deadline=$((SECONDS + 30))
while ! grep -q '^berth: listening on ' "$WORK/berth.out"; do
    kill -0 "$BERTH_PID" 2>/dev/null || { cat "$WORK/berth.err" >&2; die "berth exited"; }
    [ "$SECONDS" -lt "$deadline" ] || die "berth did not start listening within 30 s"
    sleep 0.1
done
BASE="$(sed -n 's/^berth: listening on \([^ ]*\).*/\1/p' "$WORK/berth.out" | head -n 1)"
BERTH_PORT="${BASE##*:}"

curl -sf -m 10 -c "$WORK/cookies" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" \
    "$BASE/api/v1/auth/login" >/dev/null || die "login as admin failed"
api() {  # METHOD PATH [JSON]
    local args=(-s -m 20 -b "$WORK/cookies" -c "$WORK/cookies" -X "$1" -w '\n%{http_code}')
    [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' -d "$3")
    local out code
    out="$(curl "${args[@]}" "$BASE$2")" || die "$1 $2: curl failed"
    code="${out##*$'\n'}"
    out="${out%$'\n'*}"
    case "$code" in 2*) printf '%s' "$out" ;; *) die "$1 $2: HTTP $code: $out" ;; esac
}

log "launching a $BENCH_IMAGE session (1 CPU, 512m)"
SID="$(api POST /api/v1/sessions \
    '{"image":"berth/bench-nginx","name":"bench-apps","resources":{"cpu":"1","mem":"512m"}}' |
    json_get id)"
[ -n "$SID" ] || die "no session id"
save_state
deadline=$((SECONDS + 60))
while :; do
    status="$(api GET "/api/v1/sessions/$SID" | json_get status)"
    [ "$status" = RUNNING ] && break
    case "$status" in FAILED | TERMINATED | CANCELLED) die "session $SID ended: $status" ;; esac
    [ "$SECONDS" -lt "$deadline" ] || die "session $SID not RUNNING after 60 s ($status)"
    sleep 0.2
done
DIRECT="$(docker port "berth-$SID" 8080/tcp | grep '^127\.0\.0\.1:' | head -n 1)"
[ -n "$DIRECT" ] || die "container port 8080 is not published on 127.0.0.1"
wait_http_ok "http://$DIRECT/"

LINK="$(api POST "/api/v1/sessions/$SID/apps/web" '{}' | json_get url)"
# http://web--SID.localhost:PORT/__berth/auth?token=…  (glibc does not resolve *.localhost:
# dial 127.0.0.1 and send the Host header, as the browser's request would carry it).
APP_HOST="$(printf '%s' "$LINK" | sed -E 's|^https?://([^/]+)/.*|\1|')"
LINK_PATH="/$(printf '%s' "$LINK" | sed -E 's|^https?://[^/]+/||')"
APP_COOKIE="$(curl -s -m 10 -o /dev/null -D - -H "Host: $APP_HOST" "http://127.0.0.1:$BERTH_PORT$LINK_PATH" |
    sed -n 's/^[Ss]et-[Cc]ookie: *\(berth_app=[^;]*\).*/\1/p' | head -n 1)"
[ -n "$APP_COOKIE" ] || die "the app link gave no berth_app cookie"
BERTH_URL="http://127.0.0.1:$BERTH_PORT/"
wait_http_ok "$BERTH_URL" -H "Host: $APP_HOST" -H "Cookie: $APP_COOKIE"

# ---------------------------------------------------------------------------------------------
# The peers: nginx as a reverse proxy and configurable-http-proxy, in front of the same port

NGINX_PORT="$(free_port)"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    keepalive_requests 1000000;
    upstream app {
        server $DIRECT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
}
EOF
log "starting nginx (reverse proxy) on 127.0.0.1:$NGINX_PORT"
nginx -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' \
    >"$WORK/nginx/stdout" 2>&1 </dev/null &
NGINX_PID=$!
save_state
wait_http_ok "http://127.0.0.1:$NGINX_PORT/"

CHP_PORT="$(free_port)"
CHP_API_PORT="$(free_port)"
log "starting configurable-http-proxy on 127.0.0.1:$CHP_PORT"
CONFIGPROXY_AUTH_TOKEN="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')" \
    node "$BENCH_DIR/node_modules/configurable-http-proxy/bin/configurable-http-proxy" \
    --ip 127.0.0.1 --port "$CHP_PORT" --api-ip 127.0.0.1 --api-port "$CHP_API_PORT" \
    --default-target "http://$DIRECT" --log-level warn --no-x-forward \
    --pid-file "$WORK/chp.pid" >"$WORK/chp.out" 2>&1 </dev/null &
CHP_PID=$!
save_state
wait_http_ok "http://127.0.0.1:$CHP_PORT/"

# ---------------------------------------------------------------------------------------------
# Load

TARGETS="direct berth nginx chp"
target_url() {
    case "$1" in
        direct) echo "http://$DIRECT/" ;;
        berth) echo "$BERTH_URL" ;;
        nginx) echo "http://127.0.0.1:$NGINX_PORT/" ;;
        chp) echo "http://127.0.0.1:$CHP_PORT/" ;;
    esac
}
run_wrk() {  # TARGET CONNECTIONS SECONDS OUTFILE
    local t="$1" c="$2" d="$3" threads=2 args=()
    [ "$c" -lt 2 ] && threads=1
    [ "$t" = berth ] && args=(-H "Host: $APP_HOST" -H "Cookie: $APP_COOKIE")
    wrk -t"$threads" -c"$c" -d"${d}s" --timeout 5s --latency "${args[@]}" "$(target_url "$t")" >"$4"
}

log "warm-up (2 s each)"
for t in $TARGETS; do run_wrk "$t" 10 2 /dev/null; done

log "measuring: ${DURATION} s per run, concurrency $CONCURRENCY, $ROUNDS round(s), targets $TARGETS"
for r in $(seq 1 "$ROUNDS"); do
    for c in $CONCURRENCY; do
        for t in $TARGETS; do
            run_wrk "$t" "$c" "$DURATION" "$WORK/out/$t-c$c-r$r.txt"
            log "round $r c=$c $t: $(sed -n 's/^Requests\/sec: *//p' "$WORK/out/$t-c$c-r$r.txt") req/s"
        done
    done
done

# ---------------------------------------------------------------------------------------------
# Report

python3 - "$WORK/out" "$CONCURRENCY" "$ROUNDS" "$TARGETS" <<'PY'
import os, re, sys
out, conc, rounds, targets = sys.argv[1], sys.argv[2].split(), int(sys.argv[3]), sys.argv[4].split()
UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}

def parse(path):
    text = open(path).read()
    rps = float(re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M).group(1))
    lat = {}
    for q in ("50", "99"):
        m = re.search(rf"^\s*{q}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        lat[q] = float(m.group(1)) * UNIT[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    err = re.search(r"Socket errors:.*", text)
    if bad:
        sys.exit(f"{path}: {bad.group(1)} non-2xx responses: the figures would be wrong")
    return rps, lat["50"], lat["99"], err.group(0) if err else ""

res = {}
for c in conc:
    for t in targets:
        runs = [parse(os.path.join(out, f"{t}-c{c}-r{r}.txt")) for r in range(1, rounds + 1)]
        res[t, c] = tuple(sum(x[i] for x in runs) / len(runs) for i in range(3))
        for x in runs:
            if x[3]:
                print(f"note: {t} c={c}: {x[3]}")

names = {"direct": "direct (published port)", "berth": "berth app proxy",
         "nginx": "nginx reverse proxy", "chp": "configurable-http-proxy"}
print()
print(f"| path | c | req/s | p50 | p99 |")
print(f"| --- | --- | --- | --- | --- |")
for c in conc:
    for t in targets:
        rps, p50, p99 = res[t, c]
        print(f"| {names[t]} | {c} | {rps:,.0f} | {p50:.3f} ms | {p99:.3f} ms |")
print()
print("| c | berth / nginx (req/s) | berth / chp (req/s) | berth p50 − nginx p50 | berth / direct (req/s) |")
print("| --- | --- | --- | --- | --- |")
for c in conc:
    b, n, h, d = (res[t, c] for t in ("berth", "nginx", "chp", "direct"))
    print(f"| {c} | {b[0] / n[0]:.2f} | {b[0] / h[0]:.1f} | {b[1] - n[1]:+.3f} ms | {b[0] / d[0]:.2f} |")
print()
print("targets: berth/nginx >= 0.9, berth/chp >= 5, berth p50 - nginx p50 <= 0.1 ms")
PY
