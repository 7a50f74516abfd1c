#!/usr/bin/env bash
# Live-stats benchmark: what following every running session's stats costs the gateway.
# One release `berth serve` (SQLite) and N idle sessions (berth/base with smaller minimums, so
# 50 fit 2 cores); in the same run:
#   idle       the gateway with no session (its floor)
#   sessions   N running sessions, so N stats streams and a sample per session every 2 s
#   browsers   the same, with B admin browsers subscribed to /api/v1/events (every sample)
#   docker     the peer: `docker stats` (Docker's own CLI) following the same N containers
# For each: CPU used (utime+stime from /proc, in % of one core) over BENCH_WINDOW seconds, and
# the gateway's resident memory at the start and end of the sessions+browsers window, sampled
# every minute over BENCH_MINUTES (memory must stay flat).
#
# Usage: scripts/bench-stats.sh
# Environment: BENCH_SESSIONS (default 50), BENCH_BROWSERS (10), BENCH_WINDOW (60),
# BENCH_MINUTES (5).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"

SESSIONS="${BENCH_SESSIONS:-50}"
BROWSERS="${BENCH_BROWSERS:-10}"
WINDOW="${BENCH_WINDOW:-60}"
MINUTES="${BENCH_MINUTES:-5}"
ADMIN_PASSWORD="bench-stats-password"
WORK="$(mktemp -d /tmp/berth-bench-stats.XXXXXX)"
PIDS=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    # The sessions' containers carry this instance's label.
    if [ -f "$WORK/data/berth.db" ]; then
        id="$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT value FROM meta WHERE key='instance_id'\").fetchone()[0])" "$WORK/data/berth.db" 2>/dev/null)"
        [ -n "$id" ] && docker ps -aq --filter "label=berth.instance=$id" | xargs -r docker rm -f >/dev/null
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT INT TERM

ensure_docker
ensure_images
# berth/base asks for 0.1 CPU and 64 MiB; 50 sessions must fit a 2-core machine, so the
# benchmark's image is the same with smaller minimums.
BENCH_IMAGE="berth/bench-idle:latest"
docker build -q -t "$BENCH_IMAGE" - >/dev/null <<'DOCKERFILE'
FROM berth/base:latest
LABEL berth.min-resources='{"cpu":"0.01","mem":"16m"}'
DOCKERFILE
log "building berth (release)"
cargo build --quiet --release -p gateway
BIN="$CARGO_TARGET_DIR/release/berth"

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
BERTH_ADMIN_PASSWORD="$ADMIN_PASSWORD" BERTH_LOG=warn BERTH_CONSOLE_DIR="$WORK/no-console" \
    "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/berth.log" 2>&1 &
BERTH_PID=$!
PIDS+=("$BERTH_PID")
for _ in $(seq 1 150); do curl -sf -o /dev/null "$BASE/healthz" && break; sleep 0.2; done
COOKIE="$(curl -s -D - -o /dev/null -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$ADMIN_PASSWORD\"}" "$BASE/api/v1/auth/login" |
    sed -n 's/^[Ss]et-[Cc]ookie: \(berth_session=[^;]*\).*/\1/p' | head -n 1)"
[ -n "$COOKIE" ] || die "cannot log in"

# cpu PID: the process's CPU time so far, in clock ticks (utime + stime).
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# busy PID SECONDS: % of one core the process used over the next SECONDS.
busy() {
    local a b hz
    hz="$(getconf CLK_TCK)"
    a="$(cpu "$1")"
    sleep "$2"
    b="$(cpu "$1")"
    python3 -c "print(f'{($b - $a) / $hz / $2 * 100:.2f}')"
}
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

log "idle gateway: ${WINDOW}s"
IDLE="$(busy "$BERTH_PID" "$WINDOW")"

log "launching $SESSIONS sessions"
curl -sf -o /dev/null -X PUT -H "Cookie: $COOKIE" -H 'content-type: application/json' \
    -d '{"max_pending_sessions": null}' "$BASE/api/v1/users/admin/policy" ||
    die "cannot lift the admin's pending-session limit"
for i in $(seq 1 "$SESSIONS"); do
    curl -sf -o /dev/null -H "Cookie: $COOKIE" -H 'content-type: application/json' \
        -d "{\"name\":\"bench-$i\",\"image\":\"$BENCH_IMAGE\",\"resources\":{\"cpu\":\"0.02\",\"mem\":\"32m\"}}" \
        "$BASE/api/v1/sessions" || die "launch $i refused"
done
for _ in $(seq 1 600); do
    running="$(curl -sf -H "Cookie: $COOKIE" "$BASE/api/v1/sessions" | python3 -c 'import json,sys; print(sum(s["status"] == "RUNNING" for s in json.load(sys.stdin)))')"
    [ "$running" -ge "$SESSIONS" ] && break
    sleep 1
done
[ "$running" -ge "$SESSIONS" ] || die "only $running of $SESSIONS sessions run"
sleep 10 # every collector started
log "$SESSIONS sessions streaming stats: ${WINDOW}s"
WITH_SESSIONS="$(busy "$BERTH_PID" "$WINDOW")"

log "$BROWSERS browsers subscribed"
for _ in $(seq 1 "$BROWSERS"); do
    curl -sN -H "Cookie: $COOKIE" "$BASE/api/v1/events" >"$WORK/events.$RANDOM" 2>/dev/null &
    PIDS+=("$!")
done
sleep 5
RSS0="$(rss_mib "$BERTH_PID")"
WITH_BROWSERS="$(busy "$BERTH_PID" "$WINDOW")"
RSS=("$RSS0")
for m in $(seq 1 "$MINUTES"); do
    sleep 60
    RSS+=("$(rss_mib "$BERTH_PID")")
    log "minute $m: gateway RSS ${RSS[-1]} MiB"
done
EVENTS="$(cat "$WORK"/events.* | grep -c '^event: stats' || true)"

log "the peer: docker stats following the same containers: ${WINDOW}s"
docker stats --format '{{.Name}} {{.CPUPerc}} {{.MemUsage}}' >/dev/null 2>&1 &
DOCKER_PID=$!
PIDS+=("$DOCKER_PID")
sleep 5
DOCKER="$(busy "$DOCKER_PID" "$WINDOW")"

echo
echo "| what | CPU (% of one core) |"
echo "| --- | --- |"
echo "| gateway, no session | $IDLE |"
echo "| gateway, $SESSIONS sessions streaming stats | $WITH_SESSIONS |"
echo "| gateway, $SESSIONS sessions and $BROWSERS browsers subscribed | $WITH_BROWSERS |"
echo "| docker stats (CLI) following the same $SESSIONS containers | $DOCKER |"
echo
echo "ratio gateway with $SESSIONS sessions and $BROWSERS browsers / docker stats: $(python3 -c "print(f'{$WITH_BROWSERS / max($DOCKER, 0.01):.2f}')")"
echo "gateway RSS each minute (MiB): ${RSS[*]}"
echo "stats events received by the $BROWSERS browsers over the run: $EVENTS"
