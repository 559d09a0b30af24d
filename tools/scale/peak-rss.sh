#!/usr/bin/env bash
# Runs a command and reports its peak anonymous resident memory (RssAnon, sampled every 0.5 s from
# /proc/PID/status) and peak total RSS (VmHWM) on stderr when it ends. Its exit status is the command's.
#   tools/scale/peak-rss.sh strata build ... --memory-budget 2G
set -uo pipefail
"$@" &
pid=$!
peak_anon=0
hwm=0
while kill -0 "$pid" 2>/dev/null; do
    if [ -r "/proc/$pid/status" ]; then
        a=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        h=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        [ -n "$a" ] && [ "$a" -gt "$peak_anon" ] && peak_anon=$a
        [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
    fi
    sleep 0.5
done
wait "$pid"
rc=$?
echo "peak-rss: RssAnon peak $((peak_anon / 1024)) MiB, VmHWM (anon + file-backed) $((hwm / 1024)) MiB, exit $rc" >&2
exit $rc
