#!/usr/bin/env bash
# Start a throw-away, single-node Ceph cluster serving S3 (RADOS Gateway) for tests.
#
#   start.sh BASE_DIR PORT [ACCESS_KEY SECRET_KEY]
#
# One monitor, one OSD backed by memstore (objects live in the OSD's RAM; nothing touches a
# disk image), and radosgw listening on http://127.0.0.1:PORT with a single S3 user.
# No systemd, no /etc/ceph, no ceph-mgr (radosgw does not need it). Everything lives under
# BASE_DIR: ceph.conf, keyrings, daemon data, pid files (run/), logs (log/).
# On success BASE_DIR/s3.env holds S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION and
# S3_KMS_KEY_ID, and the script exits 0; S3 is ready at that point. Stop it with
# stop.sh BASE_DIR. Besides STANDARD, the storage class COLD exists, and SSE-KMS works
# over plain HTTP with the key id S3_KMS_KEY_ID (a random test key kept in ceph.conf).
#
# Environment:
#   CEPH_MON_PORT   msgr2 port of the monitor (default 3300). The monitor is the only daemon
#                   with a fixed port (the OSD picks a free one in 6800-7300), so two clusters
#                   can run side by side when they get different CEPH_MON_PORTs.
#   CEPH_WAIT       seconds to wait for each readiness step (default 60).
#
# Needs: ceph-mon ceph-osd radosgw ceph-common (scripts/install-test-servers.sh), curl.
set -eEuo pipefail

usage() { echo "usage: $0 BASE_DIR PORT [ACCESS_KEY SECRET_KEY]" >&2; exit 2; }
[ $# -eq 2 ] || [ $# -eq 4 ] || usage

BASE=$1
RGW_PORT=$2
ACCESS_KEY=${3:-TESTACCESSKEY0000001}
SECRET_KEY=${4:-testsecretkey0000000000000000000000000001}
MON_PORT=${CEPH_MON_PORT:-3300}
WAIT=${CEPH_WAIT:-60}
KMS_TEST_KEY_ID=testkey-1

case $RGW_PORT in '' | *[!0-9]*) echo "start.sh: PORT must be a number, got '$RGW_PORT'" >&2; exit 2 ;; esac
case $MON_PORT in '' | *[!0-9]*) echo "start.sh: CEPH_MON_PORT must be a number" >&2; exit 2 ;; esac

for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl; do
  command -v "$bin" >/dev/null 2>&1 \
    || { echo "start.sh: '$bin' not found; run scripts/install-test-servers.sh" >&2; exit 127; }
done

mkdir -p "$BASE"
BASE=$(cd "$BASE" && pwd)   # absolute: the daemons chdir to /
CONF=$BASE/ceph.conf
DATA=$BASE/data
RUN=$BASE/run
LOG=$BASE/log
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

T0=$(date +%s%N)
step() { printf 'ceph-rgw: [%5dms] %s\n' "$((($(date +%s%N) - T0) / 1000000))" "$*"; }

# Abort with a message, the tail of the relevant log, and stop whatever this run started
# (a half-started cluster would otherwise keep the monitor port busy).
fail() {   # fail MESSAGE [LOGFILE...]
  trap - ERR
  local f
  echo "start.sh: ERROR: $1" >&2
  shift
  for f in "$@"; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f ----" >&2
    tail -n 25 "$f" >&2
  done
  echo "start.sh: logs are in $LOG" >&2
  "$HERE/stop.sh" "$BASE" >&2 || true
  exit 1
}
trap 'fail "command failed (line $LINENO): $BASH_COMMAND" "$LOG/cli.err"' ERR

# ---- clean slate -------------------------------------------------------------------------
# Refuse to clobber a cluster that still runs from this BASE_DIR; otherwise wipe what a
# previous run left (the mon/OSD refuse to mkfs over existing data).
for f in "$RUN"/*.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f" 2>/dev/null || true)
  if [ -n "$pid" ] && [ -d "/proc/$pid" ] \
      && grep -qE '^(ceph-mon|ceph-osd|radosgw)$' "/proc/$pid/comm" 2>/dev/null; then
    echo "start.sh: a daemon from $BASE is still running (pid $pid, $f); run stop.sh $BASE first" >&2
    exit 1
  fi
done
rm -rf "$DATA" "$RUN" "$LOG" "$BASE/crash" "$CONF" "$BASE"/keyring.* "$BASE/monmap" "$BASE/s3.env"
mkdir -p "$DATA" "$RUN" "$LOG"

# Fail early and clearly when a port is taken (the daemons would only say so in their logs).
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_busy "$MON_PORT" && fail "port $MON_PORT (monitor) is in use: another cluster running? set CEPH_MON_PORT"
port_busy "$RGW_PORT" && fail "port $RGW_PORT (radosgw) is in use"

# Unix sockets paths are limited to 107 bytes; with a deep BASE_DIR the admin sockets
# cannot be created. We never use them, so drop them rather than fail.
ASOK="$RUN/\$cluster-\$name.asok"
[ ${#RUN} -gt 70 ] && ASOK=""

FSID=$(cat /proc/sys/kernel/random/uuid)
MON_ADDR="[v2:127.0.0.1:$MON_PORT]"

cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = $MON_ADDR
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
# msgr2 only: every daemon and client here is pacific, and a single mon port is easier to
# make configurable (no fixed 6789).
ms bind msgr1 = false
ms bind ipv6 = false

auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = $BASE/keyring.admin

run dir = $RUN
pid file = $RUN/\$name.pid
admin socket = $ASOK
log file = $LOG/\$name.log
mon cluster log file = $LOG/cluster.log
crash dir = $BASE/crash
log to stderr = false
err to stderr = true

# One OSD: pools of size 1, no host failure domain, few PGs (each PG costs OSD memory/CPU).
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool delete = true
# test machines often have small/full /tmp; do not go read-only on low disk space
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $DATA/\$name
# Commit map changes every 0.1 s instead of 1 s: the start-up is a chain of map updates
# (OSD creation, boot, pool creation), this saves seconds.
paxos propose interval = 0.1

[osd]
osd data = $DATA/\$name
keyring = $DATA/\$name/keyring
osd objectstore = memstore
# memstore: upper bound of what tests may store (RAM is only used as objects are written)
memstore device bytes = 4294967296
osd memory target = 1073741824
# fewer worker threads: 2 cores, one client
osd op num shards = 2
osd op num threads per shard = 1

[client.rgw.a]
keyring = $DATA/\$name/keyring
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $DATA/\$name
# the default 512 request threads are far more than tests need
rgw thread pool size = 32
# SSE-KMS with a fixed test key (the "testing" KMS backend: key material in this
# file, for tests only), over plain HTTP: SSE pass-through can then be exercised.
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = $KMS_TEST_KEY_ID=$(head -c 32 /dev/urandom | base64)
EOF
# Every ceph tool below reads this file instead of /etc/ceph/ceph.conf.
export CEPH_CONF=$CONF

# bounded readiness poll: wait_for SECONDS COMMAND... (true once COMMAND succeeds)
wait_for() {
  local seconds=$1 deadline
  shift
  deadline=$(($(date +%s) + seconds))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
# is the daemon of pid file $1 alive? (ceph daemons fork and write their own pid file)
pidfile_alive() { [ -f "$1" ] && [ -d "/proc/$(cat "$1")" ]; }

# ---- monitor -----------------------------------------------------------------------------
# Separate keyrings per daemon: mon. key for the monitor (plus the admin key it must know),
# client.admin for the CLI.
ceph-authtool --create-keyring "$BASE/keyring.mon" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$BASE/keyring.admin" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$BASE/keyring.mon" --import-keyring "$BASE/keyring.admin" >/dev/null
monmaptool --create --fsid "$FSID" --addv a "$MON_ADDR" "$BASE/monmap" >/dev/null
mkdir -p "$DATA/mon.a"
ceph-mon --mkfs -i a --monmap "$BASE/monmap" --keyring "$BASE/keyring.mon" \
  >"$LOG/mon-mkfs.out" 2>&1 || fail "ceph-mon --mkfs failed" "$LOG/mon-mkfs.out"
ceph-mon -i a >"$LOG/mon-start.out" 2>&1 || fail "ceph-mon did not start" "$LOG/mon-start.out" "$LOG/mon.a.log"
step "mon started"
# The CLI retries the connection itself until the timeout.
ceph --connect-timeout "$WAIT" mon stat >/dev/null 2>"$LOG/cli.err" \
  || fail "monitor not answering on 127.0.0.1:$MON_PORT" "$LOG/cli.err" "$LOG/mon.a.log"
step "mon answering"

# ---- OSD ---------------------------------------------------------------------------------
# The OSD's key must be registered with the mon BEFORE ceph-osd --mkfs, which authenticates.
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(ceph osd new "$OSD_UUID" 2>>"$LOG/cli.err")
OSD_DIR=$DATA/osd.$OSD_ID
mkdir -p "$OSD_DIR"
ceph-authtool --create-keyring "$OSD_DIR/keyring" --gen-key -n "osd.$OSD_ID" >/dev/null
ceph auth add "osd.$OSD_ID" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
  -i "$OSD_DIR/keyring" 2>>"$LOG/cli.err"
ceph-osd -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >"$LOG/osd-mkfs.out" 2>&1 \
  || fail "ceph-osd --mkfs failed" "$LOG/osd-mkfs.out"
ceph-osd -i "$OSD_ID" >"$LOG/osd-start.out" 2>&1 || fail "ceph-osd did not start" "$LOG/osd-start.out" "$LOG/osd.$OSD_ID.log"
step "osd.$OSD_ID started"

# ---- RGW pools ---------------------------------------------------------------------------
# radosgw creates these on first use, and the first S3 calls then wait seconds for PG
# creation. Create them up front, while the OSD boots; one ceph process reads all
# commands from stdin (each CLI start costs ~0.3 s of Python start-up).
for pool in .rgw.root default.rgw.control default.rgw.meta default.rgw.log \
  default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec \
  default.rgw.cold.data; do
  echo "osd pool create $pool 8 8 replicated --autoscale-mode=off"
  echo "osd pool application enable $pool rgw"
done | ceph >"$LOG/pools.out" 2>&1 || fail "creating the RGW pools failed" "$LOG/pools.out"
grep -qiE 'error|EINVAL|ENOENT' "$LOG/pools.out" && fail "creating the RGW pools failed" "$LOG/pools.out"
step "rgw pools created"

osd_up() {
  pidfile_alive "$RUN/osd.$OSD_ID.pid" || fail "ceph-osd died" "$LOG/osd.$OSD_ID.log"
  local stat
  stat=$(ceph osd stat 2>>"$LOG/cli.err") || return 1
  [[ $stat == *" 1 up"* ]]
}
wait_for "$WAIT" osd_up || fail "osd.$OSD_ID not up after ${WAIT}s" "$LOG/osd.$OSD_ID.log"
step "osd up"

# ---- radosgw + S3 user -------------------------------------------------------------------
mkdir -p "$DATA/client.rgw.a"
ceph auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' \
  -o "$DATA/client.rgw.a/keyring" 2>>"$LOG/cli.err"
# The user is written straight to RADOS by radosgw-admin; doing it before radosgw starts
# means S3 is usable the moment the gateway answers HTTP.
radosgw-admin -n client.admin user create --uid=test --display-name=test \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$LOG/user-create.json" 2>&1 \
  || fail "radosgw-admin user create failed" "$LOG/user-create.json"
step "S3 user created"
# A second storage class, COLD, in its own pool: storage-class pass-through is then
# observable (RGW refuses classes its placement target does not define).
{
  radosgw-admin -n client.admin zonegroup placement add --rgw-zonegroup default \
    --placement-id default-placement --storage-class COLD &&
    radosgw-admin -n client.admin zone placement add --rgw-zone default \
      --placement-id default-placement --storage-class COLD --data-pool default.rgw.cold.data
} >"$LOG/placement.json" 2>&1 || fail "adding the COLD storage class failed" "$LOG/placement.json"
step "storage class COLD added"
radosgw -n client.rgw.a >"$LOG/rgw-start.out" 2>&1 || fail "radosgw did not start" "$LOG/rgw-start.out" "$LOG/client.rgw.a.log"
rgw_answers() {
  [ -f "$RUN/client.rgw.a.pid" ] && ! pidfile_alive "$RUN/client.rgw.a.pid" \
    && fail "radosgw died" "$LOG/client.rgw.a.log"
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$RGW_PORT/" 2>/dev/null
}
wait_for "$WAIT" rgw_answers \
  || fail "radosgw not answering on 127.0.0.1:$RGW_PORT after ${WAIT}s" "$LOG/client.rgw.a.log"

cat >"$BASE/s3.env.tmp" <<EOF
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_ACCESS_KEY=$ACCESS_KEY
S3_SECRET_KEY=$SECRET_KEY
S3_REGION=us-east-1
S3_KMS_KEY_ID=$KMS_TEST_KEY_ID
EOF
mv "$BASE/s3.env.tmp" "$BASE/s3.env"   # atomic: readers never see a half-written file
trap - ERR
step "S3 ready at http://127.0.0.1:$RGW_PORT (credentials in $BASE/s3.env)"
