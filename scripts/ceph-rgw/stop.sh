#!/usr/bin/env bash
# Stop the cluster that start.sh BASE_DIR started: signal each daemon by the pid in its pid
# file (never by name: other clusters or engineers' daemons may run on the same machine).
#
#   stop.sh BASE_DIR
#
# Order: radosgw, then the OSD, then the monitor. radosgw talks to the OSD while shutting
# down (it hangs if the OSD is already gone); the OSD tells the monitor it goes down (without
# a monitor it waits osd_mon_shutdown_timeout, 5 s). Whatever is still alive STOP_WAIT
# seconds after SIGTERM gets SIGKILL. Data and logs under BASE_DIR are left in place (only the
# pid files of stopped daemons are removed).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BASE_DIR" >&2; exit 2; }
BASE=$1
RUN=$BASE/run
STOP_WAIT=${STOP_WAIT:-10}

if [ ! -d "$RUN" ]; then
  echo "stop.sh: no $RUN: nothing to stop"
  exit 0
fi

# Running, i.e. not merely a zombie. In containers PID 1 does not always reap orphans, so a
# daemon that exited can linger as a zombie; a zombie leader whose other threads still run is
# still shutting down.
alive() {
  local state threads
  [ -d "/proc/$1" ] || return 1
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && return 0
  threads=$(find "/proc/$1/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  [ "$threads" -gt 1 ]
}

# stop_daemons PATTERN: SIGTERM every daemon whose pid file matches, wait, then SIGKILL.
stop_daemons() {
  local f pid name pids=() left=() deadline
  for f in "$RUN"/$1.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    name=$(basename "$f" .pid)
    # A stale pid file may name a pid since reused by an unrelated process: check the name.
    if [ -n "$pid" ] && alive "$pid" \
        && grep -qE '^(ceph-mon|ceph-osd|radosgw)$' "/proc/$pid/comm" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null && pids+=("$pid") && echo "stop.sh: SIGTERM $name (pid $pid)"
    fi
    rm -f "$f"
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  deadline=$(($(date +%s) + STOP_WAIT))
  while :; do
    left=()
    for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
    [ ${#left[@]} -gt 0 ] || return 0
    [ "$(date +%s)" -lt "$deadline" ] || break
    sleep 0.1
  done
  for pid in "${left[@]}"; do
    echo "stop.sh: pid $pid still alive after ${STOP_WAIT}s: SIGKILL (see $BASE/log/)" >&2
    kill -KILL "$pid" 2>/dev/null || true
  done
}

stop_daemons 'client.rgw.*'
stop_daemons 'osd.*'
stop_daemons 'mon.*'
stop_daemons '*'   # anything else start.sh may have started
