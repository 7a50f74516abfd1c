#!/usr/bin/env bash
# Install and start everything berth needs on this machine. Idempotent: a second run only checks.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_docker
ensure_images
log "dependencies ready"
