#!/usr/bin/env bash
# Replica benchmark: API requests/s through nginx in front of
#   sqlite   one berth serve on SQLite (the default)
#   pg-1     one berth serve on PostgreSQL
#   pg-2     two berth serve replicas on one PostgreSQL database (round robin)
# all in the same run, release build, the same nginx configuration (1 worker, keepalive
# upstream), loaded with wrk: GET /api/v1/sessions as a logged-in admin (a cookie check and
# a listing, each a few queries) and GET /api/v1/me (the cookie check alone).
#
# Usage: scripts/bench-replicas.sh
# Environment: BENCH_DURATION (seconds per run, default 10), BENCH_CONCURRENCY (default "32"),
# BENCH_ROUNDS (default 2; setups interleaved per round, figures are the mean).
#
# Everything it starts (berth processes, nginx, the PostgreSQL cluster, its temp dir) is
# stopped at the end, also on failure or Ctrl-C.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"

DURATION="${BENCH_DURATION:-10}"
CONCURRENCY="${BENCH_CONCURRENCY:-32}"
ROUNDS="${BENCH_ROUNDS:-2}"
ADMIN_PASSWORD="bench-replicas-password"

WORK="$(mktemp -d /tmp/berth-bench-replicas.XXXXXX)"
PIDS=()

_kill_pid() {  # PID: TERM, then KILL, a process this run started (its command line names WORK)
    local pid="$1" _
    [ -r "/proc/$pid/cmdline" ] || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$WORK" || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

stop_all() {
    local p
    for p in "${PIDS[@]}"; do _kill_pid "$p"; done
    PIDS=()
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_all
    rm -rf "$WORK"
    # ensure_postgres's own trap stops the cluster.
    [ -n "${_BERTH_PG_STOP:-}" ] && { _berth_as_pg $_BERTH_PG_STOP >/dev/null 2>&1; rm -rf "$_BERTH_PG_DIR"; }
    exit "$rc"
}

ensure_docker
ensure_nginx
command -v wrk >/dev/null || apt_install wrk
ensure_postgres
trap cleanup EXIT INT TERM

log "building berth (release)"
cargo build --quiet --release -p gateway
BIN="$CARGO_TARGET_DIR/release/berth"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_berth NAME DATA_DIR [DATABASE_URL]: starts berth serve, waits until it answers; sets PORT.
start_berth() {
    local name="$1" data="$2" url="${3:-}" _
    PORT="$(free_port)"
    mkdir -p "$data"
    if [ -n "$url" ]; then
        BERTH_DATABASE_URL="$url" BERTH_ADMIN_PASSWORD="$ADMIN_PASSWORD" BERTH_LOG=warn \
            BERTH_CONSOLE_DIR="$WORK/no-console" \
            "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$data" >"$WORK/$name.log" 2>&1 &
    else
        env -u BERTH_DATABASE_URL BERTH_ADMIN_PASSWORD="$ADMIN_PASSWORD" BERTH_LOG=warn \
            BERTH_CONSOLE_DIR="$WORK/no-console" \
            "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$data" >"$WORK/$name.log" 2>&1 &
    fi
    PIDS+=("$!")
    for _ in $(seq 1 150); do
        curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
        sleep 0.2
    done
    cat "$WORK/$name.log" >&2
    die "berth ($name) did not answer"
}

# start_nginx NAME PORT...: nginx in front of those ports; sets NGINX_PORT.
start_nginx() {
    local name="$1" servers="" p _
    shift
    for p in "$@"; do servers+="server 127.0.0.1:$p max_fails=0; "; done
    NGINX_PORT="$(free_port)"
    local d="$WORK/nginx-$name"
    mkdir -p "$d"
    cat >"$d/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $d/nginx.pid; error_log $d/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $d/body; proxy_temp_path $d/proxy; fastcgi_temp_path $d/fcgi;
  uwsgi_temp_path $d/uwsgi; scgi_temp_path $d/scgi;
  upstream berth { $servers keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://berth; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$http_host; proxy_buffering off;
    }
  }
}
EOF
    nginx -c "$d/nginx.conf" -p "$d" &
    PIDS+=("$!")
    for _ in $(seq 1 50); do
        curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/healthz" && return 0
        sleep 0.1
    done
    die "nginx ($name) did not answer"
}

# setup NAME: starts the berth processes of a setup and nginx; sets NGINX_PORT and COOKIE.
setup() {
    local name="$1" ports=() url=""
    case "$name" in
    sqlite)
        start_berth sqlite "$WORK/data-sqlite"
        ports+=("$PORT")
        ;;
    pg-1 | pg-2)
        local db="bench_${name/-/_}"
        PGOPTIONS="-c client_min_messages=warning" psql "$BERTH_PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
        url="${BERTH_PG_URL%/*}/$db"
        start_berth "$name-a" "$WORK/data-$name" "$url"
        ports+=("$PORT")
        if [ "$name" = pg-2 ]; then
            start_berth "$name-b" "$WORK/data-$name" "$url"
            ports+=("$PORT")
        fi
        ;;
    esac
    start_nginx "$name" "${ports[@]}"
    COOKIE="$(curl -s -D - -o /dev/null -H 'content-type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" \
        "http://127.0.0.1:$NGINX_PORT/api/v1/auth/login" |
        sed -n 's/^[Ss]et-[Cc]ookie: \(berth_session=[^;]*\).*/\1/p' | head -n 1)"
    [ -n "$COOKIE" ] || die "cannot log in through $name"
}

# run PATH C: wrk through nginx; prints requests/s (refuses a run with non-2xx answers).
run() {
    local path="$1" c="$2" out
    out="$(wrk -t2 -c"$c" -d"${DURATION}s" -H "Cookie: $COOKIE" "http://127.0.0.1:$NGINX_PORT$path")"
    if grep -q "Non-2xx" <<<"$out"; then
        echo "$out" >&2
        die "non-2xx answers on $path"
    fi
    awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

declare -A SUM
SETUPS=(sqlite pg-1 pg-2)
PATHS=(/api/v1/sessions /api/v1/me)
for round in $(seq 1 "$ROUNDS"); do
    for s in "${SETUPS[@]}"; do
        setup "$s"
        for path in "${PATHS[@]}"; do
            for c in $CONCURRENCY; do
                r="$(run "$path" "$c")"
                log "round $round: $s $path c=$c: $r req/s"
                SUM["$s $path $c"]="$(python3 -c "print(${SUM["$s $path $c"]:-0} + $r)")"
            done
        done
        stop_all
    done
done

echo
echo "| setup | path | c | req/s |"
echo "| --- | --- | --- | --- |"
for path in "${PATHS[@]}"; do
    for c in $CONCURRENCY; do
        for s in "${SETUPS[@]}"; do
            printf '| %s | %s | %s | %s |\n' "$s" "$path" "$c" \
                "$(python3 -c "print(f'{${SUM["$s $path $c"]} / $ROUNDS:,.0f}')")"
        done
    done
done
