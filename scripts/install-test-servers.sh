#!/usr/bin/env bash
# Install the real servers the integration tests run against (Debian packages):
#   Ceph RADOS Gateway (S3 with real SigV4 verification): ceph-mon, ceph-osd, radosgw, ceph-common.
#   Prometheus (scrapes the gateway's metrics listener in tests/telemetry): prometheus, with
#   promtool, which checks the sample alert rules in deploy/prometheus/.
#   HAProxy (load-balances gRPC over HTTP/2 to two gateway replicas in tests/replicas): haproxy.
#   ClamAV (clamd: the malware scanner of tests/scanning, started with a custom signature
#   database): clamav-daemon.
#   rclone (`rclone serve http` and `rclone serve webdav`: peers `make bench` compares the gateway
#   with, started by tests/bench to keep them working): rclone.
#   podman, runc and debootstrap (tests/project/test_container_image.py builds the Dockerfile's
#   image on a Debian base it makes with debootstrap, and runs it): podman, runc, debootstrap.
#
# ceph-mgr is deliberately NOT installed: radosgw only needs a mon and an OSD, and the mgr
# costs ~20 s of install time, ~150 MB RSS and seconds of CPU at start-up.
#
# Idempotent: does nothing when the binaries are already on PATH.
# Needs root (or sudo) and access to the Debian mirror.
set -euo pipefail

PACKAGES=(ceph-mon ceph-osd radosgw ceph-common prometheus haproxy rclone clamav-daemon podman runc debootstrap)
REQUIRED_BINARIES=(ceph-mon ceph-osd radosgw ceph ceph-authtool monmaptool radosgw-admin prometheus promtool haproxy rclone clamd podman runc debootstrap)
# libmagic1, by way of `file` (its command, which says whether it is there): the upload
# policy sniffs file types with it through python-magic (gateway/core/sniffing.py).
PACKAGES+=(file)
REQUIRED_BINARIES+=(file)
LOCK_WAIT_SECONDS=${LOCK_WAIT_SECONDS:-300}   # how long to wait for another apt/dpkg to finish
ATTEMPTS=${ATTEMPTS:-5}                       # retries of each apt-get step

log() { printf 'install-test-servers: %s\n' "$*"; }
die() { printf 'install-test-servers: ERROR: %s\n' "$*" >&2; exit 1; }

missing=()
for bin in "${REQUIRED_BINARIES[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "Ceph, Prometheus, HAProxy, rclone, clamd and podman already installed ($(ceph --version 2>/dev/null | head -n1)); nothing to do"
  exit 0
fi
log "missing: ${missing[*]}"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install ${PACKAGES[*]} by hand"
  SUDO=(sudo)
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script supports Debian/Ubuntu only"

export DEBIAN_FRONTEND=noninteractive

# Another process (unattended-upgrades, a parallel job) may hold the dpkg/apt locks.
# Wait for them with a bounded loop instead of failing at once.
LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock)
lock_held() {
  local f
  for f in "${LOCKS[@]}"; do
    [ -e "$f" ] || continue
    if command -v fuser >/dev/null 2>&1; then
      "${SUDO[@]}" fuser "$f" >/dev/null 2>&1 && return 0
    elif command -v flock >/dev/null 2>&1; then
      # flock -n fails when someone else holds the (fcntl/flock) lock
      "${SUDO[@]}" flock -n "$f" true 2>/dev/null || return 0
    fi
  done
  return 1
}
wait_for_locks() {
  local waited=0
  while lock_held; do
    [ "$waited" -ge "$LOCK_WAIT_SECONDS" ] && die "apt/dpkg lock still held after ${LOCK_WAIT_SECONDS}s"
    [ "$waited" -eq 0 ] && log "apt/dpkg lock held by another process; waiting (max ${LOCK_WAIT_SECONDS}s)"
    sleep 2; waited=$((waited + 2))
  done
}
# Run an apt-get command; retry when it fails (typically: the lock was taken between our check
# and apt's own, or a transient mirror error).
apt_retry() {
  local attempt
  for attempt in $(seq 1 "$ATTEMPTS"); do
    wait_for_locks
    if "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 "$@"; then
      return 0
    fi
    log "apt-get $1 failed (attempt $attempt/$ATTEMPTS); retrying"
    sleep $((attempt * 2))
  done
  die "apt-get $* failed $ATTEMPTS times (see the output above)"
}

T0=$SECONDS
log "apt-get update"
apt_retry update -q
log "apt-get install ${PACKAGES[*]}"
apt_retry install -y -q --no-install-recommends "${PACKAGES[@]}"

for bin in "${REQUIRED_BINARIES[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || die "$bin still missing after installing ${PACKAGES[*]}"
done
log "installed $(ceph --version | head -n1), $(prometheus --version 2>&1 | head -n1), $(haproxy -v | head -n1), $(rclone version 2>/dev/null | head -n1) and $(clamd --version) in $((SECONDS - T0)) s"
