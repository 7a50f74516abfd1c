#!/usr/bin/env bash
# Install and start what `berth serve` needs on this machine: the Docker engine and the session
# images (the console and the binary are built by setup.sh). Idempotent: a second run only checks.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_docker
ensure_images
log "dependencies ready"
