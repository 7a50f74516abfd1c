# shellcheck shell=bash
# Shared helpers for berth's scripts. Source it; callers set `set -euo pipefail`.
#
#   log MSG...          print "==> MSG" to stderr
#   apt_install PKG...  install the Debian packages that are missing (apt-get update once per run)
#   ensure_docker       install docker.io if needed and make sure dockerd answers
#   ensure_images       build berth/rootfs:bookworm, berth/base and berth/jupyter when missing or
#                       out of date
#   ensure_wasm_tools   the wasm32 target and the wasm-bindgen CLI of Cargo.lock's version
#   ensure_chromium     Debian's Chromium, for the end-to-end tests
#   ensure_e2e_deps     the end-to-end tests' npm packages
#   berth_dir_hash DIR  sha256 of a directory's names and contents (what a build depends on)
#   ensure_contract_tools  openapi-spec-validator and schemathesis in $BERTH_CACHE/venv
#   ensure_postgres     Debian's PostgreSQL server and a throwaway cluster on a free loopback
#                       port, stopped and removed when the calling shell exits; sets
#                       BERTH_PG_URL (the server's maintenance database, trust auth) and
#                       BERTH_PG_RESTART (a command that restarts that cluster)
#   ensure_nginx        Debian's nginx (the replica tests run their own instances of it)
#   ensure_prometheus   Debian's Prometheus server (the metrics test runs its own instance)
#   ensure_ssh_client   Debian's OpenSSH client (ssh, scp, sftp, ssh-keygen: the SSH tests and
#                       the SSH benchmark drive the real one)

# Repository root, whatever the caller's cwd.
BERTH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BERTH_CACHE="${BERTH_CACHE:-${HOME:-/tmp}/.cache/berth}"
: "${_BERTH_APT_UPDATED:=0}"

if [ "$(id -u)" -eq 0 ]; then
    _BERTH_SUDO=()
else
    _BERTH_SUDO=(sudo)
fi

log() {
    printf '==> %s\n' "$*" >&2
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# apt-get, waiting for another apt/dpkg run (e.g. from another shell) to release its locks.
_berth_apt_get() {
    local attempt err rc
    err="$(mktemp)"
    for attempt in $(seq 1 60); do
        rc=0
        "${_BERTH_SUDO[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
            apt-get -q -o DPkg::Lock::Timeout=300 "$@" 2>"$err" || rc=$?
        cat "$err" >&2
        if [ "$rc" -eq 0 ]; then
            rm -f "$err"
            return 0
        fi
        if grep -qiE 'could not get lock|unable to acquire|is another process using it' "$err"; then
            log "apt is busy in another process; retrying in 5 s (attempt $attempt)"
            sleep 5
            continue
        fi
        rm -f "$err"
        return "$rc"
    done
    rm -f "$err"
    die "apt-get $* could not get the apt/dpkg lock for 5 minutes"
}

_berth_pkg_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}

apt_install() {
    local pkg missing=()
    for pkg in "$@"; do
        _berth_pkg_installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$_BERTH_APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        _berth_apt_get update
        _BERTH_APT_UPDATED=1
    fi
    log "apt-get install ${missing[*]}"
    _berth_apt_get install -y --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------------------------------------
# Docker engine

ensure_docker() {
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        apt_install docker.io
    fi
    # `ip` makes the bridge of the second engine the multi-node tests start.
    command -v ip >/dev/null 2>&1 || apt_install iproute2
    docker info >/dev/null 2>&1 && return 0

    case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
        unix:///var/run/docker.sock | unix:///run/docker.sock) ;;
        *) die "DOCKER_HOST=$DOCKER_HOST does not answer 'docker info'; not starting a local dockerd for it" ;;
    esac

    if pgrep -x dockerd >/dev/null 2>&1; then
        log "dockerd is already starting; waiting for it"
    else
        log "starting dockerd (log: /var/log/dockerd.log)"
        # setsid + nohup: the daemon outlives this script and its terminal.
        "${_BERTH_SUDO[@]}" sh -c 'setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &'
    fi

    local deadline=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$deadline" ]; do
        timeout 10 docker info >/dev/null 2>&1 && { log "dockerd is up"; return 0; }
        sleep 0.5
    done
    tail -n 20 /var/log/dockerd.log >&2 2>/dev/null || true
    die "dockerd did not answer 'docker info' within 60 s (see /var/log/dockerd.log$( [ "${#_BERTH_SUDO[@]}" -gt 0 ] && printf '; is %s in the docker group?' "$(id -un)"))"
}

# ---------------------------------------------------------------------------------------------
# Session images

BERTH_ROOTFS_IMAGE="berth/rootfs:bookworm"
BERTH_BASE_IMAGE="berth/base:latest"
BERTH_JUPYTER_IMAGE="berth/jupyter:latest"
# The host's CA bundle, copied into berth/jupyter's build context for pip (TLS to PyPI may go
# through an intercepting proxy). Used during the build only; never committed.
_BERTH_HOST_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt"
# Everything that decides the content of the rootfs (the mirror does not).
_BERTH_ROOTFS_SUITE="bookworm"
_BERTH_ROOTFS_INCLUDE="python3,python3-venv,bash,procps,ca-certificates,coreutils,openssh-server,openssh-sftp-server,rsync"
_BERTH_ROOTFS_RECIPE="debootstrap --variant=minbase --include=$_BERTH_ROOTFS_INCLUDE $_BERTH_ROOTFS_SUITE; recipe v1"

# sha256 of a directory's file names and contents (stable order, paths relative to the dir).
berth_dir_hash() {
    (
        cd "$1" || exit 1
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1
    )
}

_berth_image_label() {  # IMAGE LABEL -> value, or empty (also when the image is missing)
    docker image inspect -f "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

_berth_image_id() {
    docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true
}

_berth_rootfs_hash() {
    printf '%s\n' "$_BERTH_ROOTFS_RECIPE" | sha256sum | cut -d' ' -f1
}

_berth_rootfs_current() {
    [ "$(_berth_image_label "$BERTH_ROOTFS_IMAGE" berth.recipe-hash)" = "$(_berth_rootfs_hash)" ]
}

_berth_base_current() {
    local labels
    labels="$(docker image inspect -f '{{index .Config.Labels "berth.recipe-hash"}} {{index .Config.Labels "berth.rootfs-id"}}' \
        "$BERTH_BASE_IMAGE" 2>/dev/null)" || return 1
    [ "$labels" = "$(berth_dir_hash "$BERTH_ROOT/images/base") $(_berth_image_id "$BERTH_ROOTFS_IMAGE")" ]
}

# berth/jupyter: current when built from this images/jupyter/ on top of the current berth/base.
_berth_jupyter_current() {
    local labels
    labels="$(docker image inspect -f '{{index .Config.Labels "berth.recipe-hash"}} {{index .Config.Labels "berth.base-id"}}' \
        "$BERTH_JUPYTER_IMAGE" 2>/dev/null)" || return 1
    [ "$labels" = "$(berth_dir_hash "$BERTH_ROOT/images/jupyter") $(_berth_image_id "$BERTH_BASE_IMAGE")" ]
}

_berth_build_rootfs() {
    local mirror="" tmp
    apt_install debootstrap
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        mirror="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
    fi
    mirror="${mirror:-http://deb.debian.org/debian}"

    mkdir -p "$BERTH_CACHE"
    tmp="$(mktemp -d "$BERTH_CACHE/rootfs.XXXXXX")"
    # Subshell so that the cleanup trap neither leaks into nor replaces the caller's traps.
    (
        trap '"${_BERTH_SUDO[@]}" rm -rf --one-file-system "$tmp"' EXIT
        log "debootstrap $_BERTH_ROOTFS_SUITE from $mirror (a minute or two)"
        "${_BERTH_SUDO[@]}" debootstrap --variant=minbase --include="$_BERTH_ROOTFS_INCLUDE" \
            "$_BERTH_ROOTFS_SUITE" "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
            tail -n 30 "$tmp/debootstrap.log" >&2
            exit 1
        }
        # Package caches are not needed in the image (images that install packages run apt-get update).
        # shellcheck disable=SC2016  # expanded by the inner sh
        "${_BERTH_SUDO[@]}" sh -c 'rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' _ "$tmp/rootfs"
        log "docker import $BERTH_ROOTFS_IMAGE"
        "${_BERTH_SUDO[@]}" tar --numeric-owner -C "$tmp/rootfs" -c . |
            docker import \
                --change "LABEL berth.recipe-hash=$(_berth_rootfs_hash)" \
                --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
                --change 'CMD ["bash"]' \
                - "$BERTH_ROOTFS_IMAGE" >/dev/null
    )
}

_berth_build_base() {
    local dir="$BERTH_ROOT/images/base"
    log "docker build $BERTH_BASE_IMAGE from images/base"
    # The legacy builder: this engine has no buildx/BuildKit.
    mkdir -p "$BERTH_CACHE"
    DOCKER_BUILDKIT=0 docker build \
        --label "berth.recipe-hash=$(berth_dir_hash "$dir")" \
        --label "berth.rootfs-id=$(_berth_image_id "$BERTH_ROOTFS_IMAGE")" \
        -t "$BERTH_BASE_IMAGE" "$dir" >"$BERTH_CACHE/build-base.log" 2>&1 || {
        tail -n 30 "$BERTH_CACHE/build-base.log" >&2
        die "docker build of $BERTH_BASE_IMAGE failed (full log: $BERTH_CACHE/build-base.log)"
    }
}

_berth_build_jupyter() {
    local dir="$BERTH_ROOT/images/jupyter" ctx start hash
    [ -r "$_BERTH_HOST_CA_BUNDLE" ] || die "cannot read the host's CA bundle $_BERTH_HOST_CA_BUNDLE (needed to pip install JupyterLab)"
    hash="$(berth_dir_hash "$dir")"
    mkdir -p "$BERTH_CACHE"
    ctx="$(mktemp -d "$BERTH_CACHE/jupyter-ctx.XXXXXX")"
    # Subshell so that the cleanup trap neither leaks into nor replaces the caller's traps.
    (
        trap 'rm -rf "$ctx"' EXIT
        # The build context: the recipe plus the host's CA bundle (not part of the recipe hash).
        cp -R "$dir/." "$ctx/"
        cp "$_BERTH_HOST_CA_BUNDLE" "$ctx/build-ca.crt"
        log "docker build $BERTH_JUPYTER_IMAGE from images/jupyter (pip install JupyterLab, about a minute)"
        start=$SECONDS
        DOCKER_BUILDKIT=0 docker build \
            --label "berth.recipe-hash=$hash" \
            --label "berth.base-id=$(_berth_image_id "$BERTH_BASE_IMAGE")" \
            -t "$BERTH_JUPYTER_IMAGE" "$ctx" >"$BERTH_CACHE/build-jupyter.log" 2>&1 || {
            tail -n 30 "$BERTH_CACHE/build-jupyter.log" >&2
            die "docker build of $BERTH_JUPYTER_IMAGE failed (full log: $BERTH_CACHE/build-jupyter.log)"
        }
        log "built $BERTH_JUPYTER_IMAGE in $((SECONDS - start)) s"
    )
}

ensure_images() {
    # Fast path: nothing to do, no lock taken.
    if _berth_rootfs_current && _berth_base_current && _berth_jupyter_current; then
        log "session images are current ($BERTH_BASE_IMAGE, $BERTH_JUPYTER_IMAGE)"
        return 0
    fi
    mkdir -p "$BERTH_CACHE"
    # One builder at a time (two scripts may start together); fd closed when the subshell ends.
    (
        flock 9
        if ! _berth_rootfs_current; then
            _berth_build_rootfs
        fi
        if ! _berth_base_current; then
            _berth_build_base
        fi
        # After berth/base: a rebuilt base changes its id, which berth/jupyter's label records.
        if ! _berth_jupyter_current; then
            _berth_build_jupyter
        fi
    ) 9>"$BERTH_CACHE/images.lock"
    # Remove dangling layers left by rebuilding a tag.
    docker image prune -f --filter 'label=berth.recipe-hash' >/dev/null 2>&1 || true
}

# The wasm32 target and the wasm-bindgen CLI of exactly the version in Cargo.lock.
ensure_wasm_tools() {
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        log "adding the wasm32-unknown-unknown target"
        rustup target add wasm32-unknown-unknown >&2
    fi
    local v
    v="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/, ""); print; exit}' "$BERTH_ROOT/Cargo.lock")"
    [ -n "$v" ] || die "cannot read the wasm-bindgen version from Cargo.lock"
    export PATH="$HOME/.cargo/bin:$PATH"
    if ! wasm-bindgen --version 2>/dev/null | grep -q " $v\$"; then
        log "installing wasm-bindgen-cli $v (once, a few minutes)"
        cargo install wasm-bindgen-cli --version "$v" --locked >&2 ||
            cargo install wasm-bindgen-cli --version "$v" >&2
    fi
}

# Debian's Chromium for the end-to-end tests and screenshots.
ensure_chromium() {
    command -v chromium >/dev/null 2>&1 || apt_install chromium
}

# The npm packages of the end-to-end tests (playwright-core drives Debian's Chromium).
ensure_e2e_deps() {
    (cd "$BERTH_ROOT/e2e" && npm ci --no-audit --no-fund --silent)
}

# The Python tools of the API contract check (scripts/contract.sh): openapi-spec-validator and
# schemathesis 4, in a venv kept in the cache (outside the checkout). Reinstalled only when
# scripts/contract-requirements.txt changes.
ensure_contract_tools() {
    local venv="$BERTH_CACHE/venv" req="$BERTH_ROOT/scripts/contract-requirements.txt" want
    want="$(sha256sum "$req" | cut -c1-16)"
    if [ "$(cat "$venv/.berth-requirements" 2>/dev/null)" != "$want" ]; then
        log "installing the contract tools into $venv"
        mkdir -p "$BERTH_CACHE"
        python3 -m venv --clear "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
        echo "$want" >"$venv/.berth-requirements"
    fi
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL, for the integration tests' PostgreSQL pass

ensure_postgres() {
    if [ -n "${BERTH_PG_URL:-}" ] && psql "$BERTH_PG_URL" -qAtc 'SELECT 1' >/dev/null 2>&1; then
        return 0
    fi
    apt_install postgresql
    local bin port dir owner
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [ -x "$bin/initdb" ] || die "PostgreSQL's initdb is not under /usr/lib/postgresql/*/bin"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    dir="$(mktemp -d /tmp/berth-pg.XXXXXX)"
    # initdb refuses root: the cluster belongs to the postgres user then.
    if [ "$(id -u)" -eq 0 ]; then
        owner=postgres
        chown postgres "$dir"
        _berth_as_pg() { runuser -u postgres -- "$@"; }
    else
        owner="$(id -un)"
        _berth_as_pg() { "$@"; }
    fi
    log "PostgreSQL: a throwaway cluster in $dir on 127.0.0.1:$port"
    _berth_as_pg "$bin/initdb" -A trust -U "$owner" -D "$dir/data" >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    _berth_as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" \
        >/dev/null || { cat "$dir/server.log" >&2; die "PostgreSQL did not start"; }
    _BERTH_PG_STOP="$bin/pg_ctl -D $dir/data -m immediate stop"
    if [ "$(id -u)" -eq 0 ]; then
        BERTH_PG_RESTART="runuser -u postgres -- $bin/pg_ctl -D $dir/data -l $dir/server.log -w -t 60 -m fast restart"
    else
        BERTH_PG_RESTART="$bin/pg_ctl -D $dir/data -l $dir/server.log -w -t 60 -m fast restart"
    fi
    _BERTH_PG_DIR="$dir"
    trap '_berth_as_pg $_BERTH_PG_STOP >/dev/null 2>&1 || true; rm -rf "$_BERTH_PG_DIR"' EXIT
    # Not exported: berth would warn about a BERTH_* variable that is not its setting.
    BERTH_PG_URL="postgres://$owner@127.0.0.1:$port/postgres"
}

# ---------------------------------------------------------------------------------------------
# nginx, in front of gateway replicas in the replica tests and the benchmark (each run starts
# its own nginx with its own configuration; the packaged service is not used)

ensure_nginx() {
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_install nginx
}

# ---------------------------------------------------------------------------------------------
# Prometheus, scraping a test gateway in the metrics test (the test starts its own instance
# with a generated configuration; the packaged service is not used)

ensure_ssh_client() {
    local c
    for c in ssh scp sftp ssh-keygen; do
        if ! command -v "$c" >/dev/null 2>&1; then
            apt_install openssh-client
            return
        fi
    done
}

ensure_prometheus() {
    command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || apt_install prometheus
}
