#!/usr/bin/env bash
# App-proxy benchmark through a node's own proxy: a second Docker engine on this machine is
# added as node `edge` with `--proxy-url`, `berth wsproxy` serves it, and the same container
# port (nginx serving a 1 KiB file inside a berth session on `edge`) is reached three ways in
# the same run, all on 127.0.0.1:
#   direct   the port Docker publishes on 127.0.0.1 (docker-proxy)
#   wsproxy  the node's `berth wsproxy` (Host: web--SESSION.localhost:PORT + app cookie)
#   nginx    nginx on the host as a reverse proxy (1 worker, keepalive upstream): the ceiling
# wrk at each concurrency; prints requests/s, p50 and p99, and the ratios wsproxy/nginx,
# wsproxy/direct and the p50 added over nginx's.
#
# Usage: scripts/bench-wsproxy.sh
# Environment: BENCH_DURATION (seconds per run, default 10), BENCH_CONCURRENCY (default
# "1 10 50"), BENCH_ROUNDS (default 2; runs of a round are interleaved, figures are the mean).
#
# Everything it starts (the second engine and its bridge, berth, the proxy, the session,
# nginx) is stopped at the end, also on failure or Ctrl-C.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"

DURATION="${BENCH_DURATION:-10}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 10 50}"
ROUNDS="${BENCH_ROUNDS:-2}"
BENCH_IMAGE="berth/bench-nginx:latest"
ADMIN_PASSWORD="bench-wsproxy-password"
BRIDGE="br-bwp"

WORK=""
ENGINE=""     # the second engine's directory (short: unix socket paths are limited)
DOCKERD_PID=""
BERTH_PID=""
WSP_PID=""
NGINX_PID=""
BASE=""
SID=""

_kill_pid() {  # PID: TERM, then KILL, a process we started
    local pid="$1" _
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$SID" ] && [ -n "$BASE" ]; then
        curl -s -o /dev/null -m 20 -b "$WORK/cookies" -X DELETE "$BASE/api/v1/sessions/$SID"
        sleep 1
    fi
    _kill_pid "$NGINX_PID"
    _kill_pid "$WSP_PID"
    _kill_pid "$BERTH_PID"
    if [ -n "$DOCKERD_PID" ]; then
        local h="unix://$ENGINE/docker.sock"
        docker -H "$h" ps -aq | xargs -r docker -H "$h" rm -f >/dev/null 2>&1
        docker -H "$h" network ls -q --filter type=custom | xargs -r docker -H "$h" network rm >/dev/null 2>&1
        _kill_pid "$DOCKERD_PID"
    fi
    ip link del "$BRIDGE" 2>/dev/null
    [ -n "$ENGINE" ] && { umount -R "$ENGINE/x" 2>/dev/null; umount -R "$ENGINE/data" 2>/dev/null; rm -rf "$ENGINE"; }
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit "$rc"
}

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

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_docker
ensure_images
docker image inspect "$BENCH_IMAGE" >/dev/null 2>&1 ||
    die "$BENCH_IMAGE is missing: run scripts/bench-apps.sh once (it builds it)"
apt_install nginx wrk curl
if [ -z "${BERTH_BIN:-}" ]; then
    log "cargo build --release -p gateway --bin berth"
    cargo build --quiet --release -p gateway --bin berth
    BERTH_BIN="$CARGO_TARGET_DIR/release/berth"
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-wsp.XXXXXX")"
mkdir -p "$WORK/data" "$WORK/nginx" "$WORK/out"

# ---------------------------------------------------------------------------------------------
# The second engine (ENVIRONMENT.md's recipe), with the bench image

ENGINE="/tmp/bwp-$$"
mkdir -p "$ENGINE"
ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
ip addr show "$BRIDGE" | grep -q 172.31.249.1 || ip addr add 172.31.249.1/24 dev "$BRIDGE"
ip link set "$BRIDGE" up
log "starting a second dockerd in $ENGINE"
dockerd --data-root "$ENGINE/data" --exec-root "$ENGINE/x" --pidfile "$ENGINE/docker.pid" \
    -H "unix://$ENGINE/docker.sock" --bridge "$BRIDGE" --cgroup-parent /bwp --iptables=false \
    >"$WORK/dockerd.log" 2>&1 </dev/null &
DOCKERD_PID=$!
H="unix://$ENGINE/docker.sock"
deadline=$((SECONDS + 60))
until docker -H "$H" info >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "the second engine did not answer within 60 s"
    sleep 0.3
done
log "loading $BENCH_IMAGE into it"
docker save "$BENCH_IMAGE" | docker -H "$H" load >/dev/null

# ---------------------------------------------------------------------------------------------
# berth, the node with its proxy, a session there, the app opened through the proxy

log "starting berth serve"
BERTH_ADMIN_PASSWORD="$ADMIN_PASSWORD" BERTH_LOG=warn \
    "$BERTH_BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" \
    >"$WORK/berth.out" 2>"$WORK/berth.err" </dev/null &
BERTH_PID=$!
deadline=$((SECONDS + 30))
while ! grep -q '^berth: listening on ' "$WORK/berth.out"; do
    kill -0 "$BERTH_PID" 2>/dev/null || { cat "$WORK/berth.err" >&2; die "berth exited"; }
    [ "$SECONDS" -lt "$deadline" ] || die "berth did not start listening within 30 s"
    sleep 0.1
done
BASE="$(sed -n 's/^berth: listening on \([^ ]*\).*/\1/p' "$WORK/berth.out" | head -n 1)"
curl -sf -m 10 -c "$WORK/cookies" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" \
    "$BASE/api/v1/auth/login" >/dev/null || die "login as admin failed"
api() {  # METHOD PATH [JSON]
    local args=(-s -m 30 -b "$WORK/cookies" -c "$WORK/cookies" -X "$1" -w '\n%{http_code}')
    [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' -d "$3")
    local out code
    out="$(curl "${args[@]}" "$BASE$2")" || die "$1 $2: curl failed"
    code="${out##*$'\n'}"
    out="${out%$'\n'*}"
    case "$code" in 2*) printf '%s' "$out" ;; *) die "$1 $2: HTTP $code: $out" ;; esac
}

WSP_PORT="$(free_port)"
WSP_URL="http://127.0.0.1:$WSP_PORT"
log "adding node edge with its proxy at $WSP_URL"
KEY="$(api POST /api/v1/nodes "{\"name\":\"edge\",\"docker\":\"$H\",\"proxy_url\":\"$WSP_URL\"}" |
    json_get proxy_key)"
[ -n "$KEY" ] || die "no proxy key in the answer"
(umask 077 && printf '%s\n' "$KEY" >"$WORK/edge.key")
"$BERTH_BIN" wsproxy --node edge --docker "$H" --key-file "$WORK/edge.key" \
    --listen "127.0.0.1:$WSP_PORT" --public-url "$WSP_URL" --base-domain localhost \
    >"$WORK/wsproxy.out" 2>"$WORK/wsproxy.err" </dev/null &
WSP_PID=$!
deadline=$((SECONDS + 30))
until curl -sf -m 2 "$WSP_URL/__berth/health" >/dev/null; do
    kill -0 "$WSP_PID" 2>/dev/null || { cat "$WORK/wsproxy.err" >&2; die "berth wsproxy exited"; }
    [ "$SECONDS" -lt "$deadline" ] || die "berth wsproxy did not answer within 30 s"
    sleep 0.2
done
api PATCH /api/v1/nodes/local '{"state":"DRAINING"}' >/dev/null

log "launching a $BENCH_IMAGE session on edge (1 CPU, 512m)"
SID="$(api POST /api/v1/sessions \
    '{"image":"berth/bench-nginx","name":"bench-wsp","resources":{"cpu":"1","mem":"512m"}}' |
    json_get id)"
[ -n "$SID" ] || die "no session id"
deadline=$((SECONDS + 90))
while :; do
    status="$(api GET "/api/v1/sessions/$SID" | json_get status)"
    [ "$status" = RUNNING ] && break
    case "$status" in ERROR | TERMINATED | CANCELLED) die "session $SID ended: $status" ;; esac
    [ "$SECONDS" -lt "$deadline" ] || die "session $SID not RUNNING after 90 s ($status)"
    sleep 0.3
done
DIRECT="$(docker -H "$H" port "berth-$SID" 8080/tcp | grep '^127\.0\.0\.1:' | head -n 1)"
[ -n "$DIRECT" ] || die "container port 8080 is not published on 127.0.0.1"
wait_http_ok "http://$DIRECT/"

# The gateway's link goes to the proxy, which spends it and redirects to the app's origin.
LINK="$(api POST "/api/v1/sessions/$SID/apps/web" '{}' | json_get url)"
case "$LINK" in "$WSP_URL/__berth/open?token="*) ;; *) die "the app link is not on the proxy: $LINK" ;; esac
LOGIN="$(curl -s -m 10 -o /dev/null -w '%{redirect_url}' "$LINK")"
APP_HOST="$(printf '%s' "$LOGIN" | sed -E 's|^https?://([^/]+)/.*|\1|')"
LOGIN_PATH="/$(printf '%s' "$LOGIN" | sed -E 's|^https?://[^/]+/||')"
APP_COOKIE="$(curl -s -m 10 -o /dev/null -D - -H "Host: $APP_HOST" "$WSP_URL$LOGIN_PATH" |
    sed -n 's/^[Ss]et-[Cc]ookie: *\(berth_app=[^;]*\).*/\1/p' | head -n 1)"
[ -n "$APP_COOKIE" ] || die "the app login gave no berth_app cookie"
wait_http_ok "$WSP_URL/" -H "Host: $APP_HOST" -H "Cookie: $APP_COOKIE"

# ---------------------------------------------------------------------------------------------
# nginx as a reverse proxy in front of the same port

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
wait_http_ok "http://127.0.0.1:$NGINX_PORT/"

# ---------------------------------------------------------------------------------------------
# Load

TARGETS="direct wsproxy nginx"
target_url() {
    case "$1" in
        direct) echo "http://$DIRECT/" ;;
        wsproxy) echo "$WSP_URL/" ;;
        nginx) echo "http://127.0.0.1:$NGINX_PORT/" ;;
    esac
}
run_wrk() {  # TARGET CONNECTIONS SECONDS OUTFILE
    local t="$1" c="$2" d="$3" threads=2 args=()
    [ "$c" -lt 2 ] && threads=1
    [ "$t" = wsproxy ] && args=(-H "Host: $APP_HOST" -H "Cookie: $APP_COOKIE")
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
    if bad:
        sys.exit(f"{path}: {bad.group(1)} non-2xx responses: the figures would be wrong")
    return rps, lat["50"], lat["99"]

res = {}
for c in conc:
    for t in targets:
        runs = [parse(os.path.join(out, f"{t}-c{c}-r{r}.txt")) for r in range(1, rounds + 1)]
        res[t, c] = tuple(sum(x[i] for x in runs) / len(runs) for i in range(3))

names = {"direct": "direct (published port)", "wsproxy": "berth wsproxy (node's proxy)",
         "nginx": "nginx reverse proxy"}
print()
print("| path | c | req/s | p50 | p99 |")
print("| --- | --- | --- | --- | --- |")
for c in conc:
    for t in targets:
        rps, p50, p99 = res[t, c]
        print(f"| {names[t]} | {c} | {rps:,.0f} | {p50:.3f} ms | {p99:.3f} ms |")
print()
print("| c | wsproxy / nginx (req/s) | wsproxy / direct (req/s) | wsproxy p50 − nginx p50 |")
print("| --- | --- | --- | --- |")
for c in conc:
    w, n, d = (res[t, c] for t in ("wsproxy", "nginx", "direct"))
    print(f"| {c} | {w[0] / n[0]:.2f} | {w[0] / d[0]:.2f} | {w[1] - n[1]:+.3f} ms |")
PY
