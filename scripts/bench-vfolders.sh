#!/usr/bin/env bash
# VFolder transfer benchmark: a file of random bytes (default 1 GiB) moved three ways on the
# same disk, in the same run:
#   cp        a plain file copy into the data dir's disk (the ceiling)
#   upload    through berth's API: tus creation, then one streamed PATCH (curl -T), ending with
#             the file in place in the folder
#   download  through berth's API: GET …/download streamed to a file (curl -o)
# Every timing starts after a `sync` and ends after one, so each way is measured to the disk
# (otherwise whichever runs while the page cache still absorbs writes wins).
# Each is run BENCH_ROUNDS times (default 3) and the best is kept; prints MB/s, the ratios
# upload/cp and download/cp, and berth's peak resident memory before and after (VmHWM), which
# stays flat when nothing buffers whole files.
#
# Usage: scripts/bench-vfolders.sh [SIZE_MIB]   (default 1024)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$BERTH_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BERTH_CACHE/target}"

SIZE_MIB="${1:-1024}"
ROUNDS="${BENCH_ROUNDS:-3}"
PASSWORD="bench-vfolders-password"
WORK="$(mktemp -d "$BERTH_CACHE/bench-vfolders.XXXXXX")"
BERTH_PID=""

cleanup() {
    [ -n "$BERTH_PID" ] && kill "$BERTH_PID" 2>/dev/null && wait "$BERTH_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

ensure_docker
# BERTH_BIN runs another build (e.g. the previous commit's) to compare two builds.
BIN="${BERTH_BIN:-}"
if [ -z "$BIN" ]; then
    log "building berth (release)"
    cargo build --quiet --release -p gateway
    BIN="$CARGO_TARGET_DIR/release/berth"
fi

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
mkdir -p "$WORK/data"
BERTH_ADMIN_PASSWORD="$PASSWORD" "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
    --console-dir "$WORK/none" >"$WORK/berth.log" 2>&1 &
BERTH_PID=$!
for _ in $(seq 1 100); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.1; done

JAR="$WORK/cookies"
curl -fs -c "$JAR" -H 'Content-Type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" "$BASE/api/v1/auth/login" >/dev/null
FOLDER="$(curl -fs -b "$JAR" -H 'Content-Type: application/json' -d '{"name":"bench"}' \
    "$BASE/api/v1/vfolders" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"

log "making $SIZE_MIB MiB of random data"
SRC="$WORK/src.bin"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$SRC"
BYTES="$(stat -c %s "$SRC")"

hwm() { awk '/VmHWM/ {print $2}' "/proc/$BERTH_PID/status"; }
now() { date +%s.%N; }
rate() { python3 -c "print(f'{$BYTES/($2-$1)/1e6:.0f}')"; }

HWM_BEFORE="$(hwm)"
best_cp=0; best_up=0; best_down=0
for round in $(seq 1 "$ROUNDS"); do
    # The plain copy, into the same file system as the folders.
    sync; t0="$(now)"; cp "$SRC" "$WORK/data/copy.bin"; sync; t1="$(now)"
    cp_rate="$(rate "$t0" "$t1")"; rm -f "$WORK/data/copy.bin"

    # Upload through the API.
    name="r$round.bin"
    meta="path $(printf '%s' "$name" | base64 -w0)"
    sync; t0="$(now)"
    loc="$(curl -fs -b "$JAR" -X POST -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $BYTES" \
        -H "Upload-Metadata: $meta" -D - -o /dev/null "$BASE/api/v1/vfolders/$FOLDER/uploads" \
        | awk 'tolower($1)=="location:" {print $2}' | tr -d '\r')"
    curl -fs -b "$JAR" -X PATCH -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
        -H 'Content-Type: application/offset+octet-stream' -T "$SRC" "$BASE$loc" -o /dev/null
    sync; t1="$(now)"
    up_rate="$(rate "$t0" "$t1")"

    # Download through the API.
    sync; t0="$(now)"
    curl -fs -b "$JAR" -o "$WORK/down.bin" "$BASE/api/v1/vfolders/$FOLDER/download?path=$name"
    sync; t1="$(now)"
    down_rate="$(rate "$t0" "$t1")"
    cmp -s "$SRC" "$WORK/down.bin" || die "round $round: the downloaded file differs from the upload"
    rm -f "$WORK/down.bin" "$WORK/data/vfolders/$FOLDER/$name"
    printf 'round %s: cp %s MB/s, upload %s MB/s, download %s MB/s\n' "$round" "$cp_rate" "$up_rate" "$down_rate"
    [ "$cp_rate" -gt "$best_cp" ] && best_cp="$cp_rate"
    [ "$up_rate" -gt "$best_up" ] && best_up="$up_rate"
    [ "$down_rate" -gt "$best_down" ] && best_down="$down_rate"
done
HWM_AFTER="$(hwm)"

echo
echo "file: $SIZE_MIB MiB, best of $ROUNDS rounds, same disk, each timed to the disk (sync)"
printf '%-10s %8s MB/s\n' cp "$best_cp" upload "$best_up" download "$best_down"
python3 -c "print(f'ratio upload/cp   {$best_up/$best_cp:.2f}  (target >= 0.7)')"
python3 -c "print(f'ratio download/cp {$best_down/$best_cp:.2f}  (target >= 0.7)')"
echo "berth peak RSS: $((HWM_BEFORE / 1024)) MiB before, $((HWM_AFTER / 1024)) MiB after moving $((SIZE_MIB * 2 * ROUNDS)) MiB"
