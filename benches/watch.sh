#!/usr/bin/env bash
# benches/watch.sh - the daemon: latency from a write to its event, and what
# it costs while idle, on the shared 100k-file corpus, with each backend
# (inotify, then fanotify).
#
# Usage: benches/watch.sh [--changes N] [--idle SECONDS]   (default 1000, 60)
#
#  latency: N changes, one at a time, to files of the corpus; for each, the
#           time until its event is in tripseal's file sink (p50, p99, max),
#           beside inotifywait -m on the same directory (the kernel's own
#           notification, the floor no daemon can beat).
#  idle:    CPU time (utime + stime from /proc) of the daemon over SECONDS
#           with nothing changing, and its peak RSS, watching the corpus.
#
# Needs the shared bench corpus (FIMBENCH_TOOLS, default ../shared/bench;
# FIMBENCH_ROOT, default /tmp/fimbench) and inotifywait (apt-get install
# inotify-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_DIR="${FIMBENCH_TOOLS:-../shared/bench}"
ROOT="${FIMBENCH_ROOT:-/tmp/fimbench}"
N=1000; IDLE=60
while [[ $# -gt 0 ]]; do
  case "$1" in
    --changes) N="$2"; shift 2 ;;
    --idle) IDLE="$2"; shift 2 ;;
    *) echo "benches/watch.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v inotifywait >/dev/null || { echo "benches/watch.sh: needs inotifywait (apt-get install inotify-tools)" >&2; exit 2; }
cargo build --release --quiet
BIN="$PWD/target/release/tripseal"
bash "$TOOLS_DIR/make-corpus.sh" "$ROOT" small >/dev/null

W=$(mktemp -d /tmp/tripseal-watch-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

# The changes go to a directory of their own beside the corpus, watched with it.
mkdir -p "$W/tree/changes"
for i in $(seq -w 1 50); do echo "$i" > "$W/tree/changes/f$i"; done
printf '[[rule]]\nname = "corpus"\npaths = ["%s", "%s/**"]\ncheck = ["type", "mode", "size", "mtime", "hash"]\n[[rule]]\nname = "changes"\npaths = ["%s/**"]\ncheck = ["type", "size", "hash"]\n' \
  "$ROOT/small" "$ROOT/small" "$W/tree/changes" > "$W/rules.toml"
"$BIN" init --rules "$W/rules.toml" --db "$W/b.db" >/dev/null
for B in inotify fanotify; do
  : > "$W/events.jsonl"
  "$BIN" watch --backend "$B" --db "$W/b.db" --allow-unsigned --emit "file:$W/events.jsonl" 2>"$W/watch.err" &
  DAEMON=$!; pids+=("$DAEMON")
  until grep -q fim-scan-finished "$W/events.jsonl" 2>/dev/null; do sleep 0.1; done
  watched=$(grep -o '"watched_directories":[0-9]*' "$W/events.jsonl" | head -1 | cut -d: -f2)

  inotifywait -m -q -e close_write --format '%f' "$W/tree/changes" > "$W/inotify.txt" &
  pids+=($!); sleep 0.5

  echo "[$B] latency over $N changes, ms (p50 p99 max), alternating halves:"
  half=$((N / 2))
  r1=$(python3 benches/watch_latency.py "$W/events.jsonl" "$W/tree/changes" "$half")
  k1=$(python3 benches/watch_latency.py "$W/inotify.txt" "$W/tree/changes" "$half" --inotifywait)
  r2=$(python3 benches/watch_latency.py "$W/events.jsonl" "$W/tree/changes" "$half")
  k2=$(python3 benches/watch_latency.py "$W/inotify.txt" "$W/tree/changes" "$half" --inotifywait)
  echo "  tripseal watch -> file sink: $r1 | $r2"
  echo "  inotifywait (kernel floor):  $k1 | $k2"

  ticks() { awk '{print $14 + $15}' "/proc/$DAEMON/stat"; }
  HZ=$(getconf CLK_TCK)
  sleep 2
  t0=$(ticks); s0=$(date +%s.%N); sleep "$IDLE"; t1=$(ticks); s1=$(date +%s.%N)
  cpu=$(echo "scale=4; ($t1 - $t0) / $HZ" | bc)
  pct=$(echo "scale=4; 100 * $cpu / ($s1 - $s0)" | bc)
  rss=$(awk '/VmHWM/ {print $2 / 1024 " MiB"}' "/proc/$DAEMON/status")
  now=$(awk '/VmRSS/ {print $2 / 1024 " MiB"}' "/proc/$DAEMON/status")
  files=$(find "$ROOT/small" | wc -l)
  echo "[$B] idle over ${IDLE}s watching $files entries in $watched directories: ${cpu}s CPU = ${pct}%; RSS now $now, peak $rss"
  kill "$DAEMON" 2>/dev/null || true; wait "$DAEMON" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pids=()
done
