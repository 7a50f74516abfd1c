#!/usr/bin/env bash
# SSH copy benchmark: `scp` of one file (default 1 GiB) into a running session through
# `berth ssh-config` (OpenSSH → berth ssh --stdio → the gateway's tunnel → the session's
# sshd), against `scp` straight to the same sshd's published loopback port (the direct path:
# the same cipher work, no berth) and `docker cp` of the same file into the same container, in
# the same run. Prints the times, throughputs and ratios.
#
# Usage: scripts/bench-ssh.sh [BERTH_BIN]   (default: this checkout's release build)
# Environment: BENCH_SSH_MB (file size in MiB, default 1024).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"

BIN="${1:-}"
MB="${BENCH_SSH_MB:-1024}"
ensure_docker
ensure_images
ensure_ssh_client
if [ -z "$BIN" ]; then
    log "building berth (release)"
    cargo build --quiet --release -p gateway
    BIN="$CARGO_TARGET_DIR/release/berth"
fi

WORK="$(mktemp -d "$BERTH_CACHE/bench-ssh.XXXXXX")"
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    sleep 0.5
    if [ -f "$WORK/data/berth.db" ]; then
        id="$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT value FROM meta WHERE key='instance_id'\").fetchone()[0])" "$WORK/data/berth.db" 2>/dev/null || true)"
        [ -n "$id" ] && docker ps -aq --filter "label=berth.instance=$id" | xargs -r docker rm -f >/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$port"
mkdir -p "$WORK/data" "$WORK/home/.ssh"
BERTH_ADMIN_PASSWORD="bench-ssh-password" BERTH_LOG=warn "$BIN" serve \
    --listen "127.0.0.1:$port" --data-dir "$WORK/data" --console-dir "$WORK/none" \
    >"$WORK/berth.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do curl -fs "$URL/healthz" >/dev/null && break; sleep 0.05; done

export HOME="$WORK/home" BERTH_URL="$URL"
unset XDG_CONFIG_HOME
ssh-keygen -q -t ed25519 -N "" -f "$HOME/.ssh/id_ed25519"
# An API key, the SSH key, a session; then the session's container id.
read -r BERTH_KEY CONTAINER < <(python3 - "$URL" "$HOME/.ssh/id_ed25519.pub" <<'PY'
import http.cookiejar, json, sys, time, urllib.request
url, pub = sys.argv[1], open(sys.argv[2]).read()
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
def call(method, path, body=None):
    req = urllib.request.Request(url + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Origin": url})
    with op.open(req) as r:
        data = r.read()
        return json.loads(data) if data else None
call("POST", "/api/v1/auth/login", {"username": "admin", "password": "bench-ssh-password"})
key = call("POST", "/api/v1/keys", {"name": "bench"})["key"]
call("POST", "/api/v1/me/ssh-keys", {"key": pub})
s = call("POST", "/api/v1/sessions", {"name": "bench", "image": "berth/base",
    "resources": {"cpu": "1", "mem": "1g"}})
while s["status"] != "RUNNING":
    time.sleep(0.2)
    s = call("GET", "/api/v1/sessions/" + s["id"])
print(key, s["container_id"])
PY
)
export BERTH_KEY
"$BIN" ssh-config >"$WORK/ssh_config"
head -c "$((MB << 20))" /dev/urandom >"$WORK/file.bin"
SSH=(-F "$WORK/ssh_config" -i "$HOME/.ssh/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes)
# Warm-up: sshd answers and the page cache holds the file.
ssh "${SSH[@]}" berth-bench true
cat "$WORK/file.bin" >/dev/null

# The direct path: the same sshd at its published loopback port, no berth in between.
DIRECT_PORT="$(docker port "$CONTAINER" 2200/tcp | head -n1 | sed 's/.*://')"
DIRECT=(-P "$DIRECT_PORT" -i "$HOME/.ssh/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
ssh -p "$DIRECT_PORT" "${DIRECT[@]:2}" work@127.0.0.1 true

t0=$(date +%s.%N)
scp -q "${SSH[@]}" "$WORK/file.bin" berth-bench:/home/work/via-scp.bin
t1=$(date +%s.%N)
docker cp "$WORK/file.bin" "$CONTAINER:/home/work/via-docker-cp.bin"
t2=$(date +%s.%N)
scp -q "${DIRECT[@]}" "$WORK/file.bin" work@127.0.0.1:/home/work/via-direct.bin
t3=$(date +%s.%N)

want="$(sha256sum <"$WORK/file.bin" | cut -c1-64)"
got="$(ssh "${SSH[@]}" berth-bench 'sha256sum < /home/work/via-scp.bin' | cut -c1-64)"
[ "$want" = "$got" ] || { echo "the copy differs from the file" >&2; exit 1; }

python3 - "$MB" "$t0" "$t1" "$t2" "$t3" <<'PY'
import sys
mb, t0, t1, t2, t3 = int(sys.argv[1]), *map(float, sys.argv[2:])
scp, cp, direct = t1 - t0, t2 - t1, t3 - t2
print(f"file: {mb} MiB")
print(f"scp through berth ssh-config: {scp:.2f} s ({mb / scp:.0f} MiB/s)")
print(f"scp straight to the sshd's loopback port: {direct:.2f} s ({mb / direct:.0f} MiB/s)")
print(f"docker cp (same file, same container): {cp:.2f} s ({mb / cp:.0f} MiB/s)")
print(f"ratio berth / direct scp (throughput): {direct / scp:.2f}")
print(f"ratio scp / docker cp (time): {scp / cp:.2f}")
PY
