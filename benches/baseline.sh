#!/usr/bin/env bash
# benches/baseline.sh - the baseline file: its size per entry, and init,
# check and check --fast beside find and b3sum, optionally beside another
# tripseal build in the same rounds.
#
# Usage: benches/baseline.sh [--runs N] [--corpus small|deep]... [--compare OTHER_BINARY]
#
# Corpora under FIMBENCH_ROOT (/tmp/fimbench), made by the shared
# make-corpus.sh and locked in RAM by anchors.sh. Each build makes and signs
# its own baseline of each corpus once (with every attribute a host's
# baseline keeps), then anchors.sh runs, in alternating rounds:
#   find -printf (a stat walk), b3sum-p2 (two b3sum processes),
#   ts-init, ts-check (seal verified), ts-fast (check --fast),
#   and with --compare the same three of OTHER_BINARY as old-*.
# Ratios are to b3sum-p2, paired per round; this machine's speed drifts, so
# compare ratios taken in one run, never absolute times from two.
# The sizes (bytes per entry of the signed baseline) are printed first.
#
# Needs: the shared bench tools (FIMBENCH_TOOLS, default ../shared/bench),
# b3sum (cargo install b3sum), vmtouch, GNU time and sqlite3.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_DIR="${FIMBENCH_TOOLS:-../shared/bench}"
ROOT="${FIMBENCH_ROOT:-/tmp/fimbench}"
RUNS=5; CORPORA=(); OTHER=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --corpus) CORPORA+=("$2"); shift 2 ;;
    --compare) OTHER="$(realpath "$2")"; shift 2 ;;
    *) echo "benches/baseline.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ ${#CORPORA[@]} -gt 0 ]] || CORPORA=(small deep)

cargo build --release --quiet
BIN="$PWD/target/release/tripseal"
STATE="$ROOT/state/tripseal-baseline"; mkdir -p "$STATE"
[[ -f "$STATE/bench.key" ]] || "$BIN" keygen --out "$STATE/bench.key" >/dev/null

builds=("ts=$BIN")
[[ -n "$OTHER" ]] && builds+=("old=$OTHER")
corpus_args=()
printf '%-8s %-5s %10s %12s %10s\n' corpus build entries bytes B/entry
for c in "${CORPORA[@]}"; do
  bash "$TOOLS_DIR/make-corpus.sh" "$ROOT" "$c"
  corpus_args+=(--corpus "$c")
  printf '[[rule]]\nname = "corpus"\npaths = ["%s", "%s/**"]\ncheck = ["type", "mode", "uid", "gid", "size", "mtime", "ctime", "inode", "nlink", "link", "hash"]\n' \
    "$ROOT/$c" "$ROOT/$c" > "$STATE/$c.toml"
  for b in "${builds[@]}"; do
    name=${b%%=*} bin=${b#*=}
    db="$STATE/$c-$name.db"
    "$bin" init --force --rules "$STATE/$c.toml" --db "$db" >/dev/null 2>&1
    "$bin" sign --key "$STATE/bench.key" "$db" >/dev/null
    rm -f "$db.accepted"
    n=$(sqlite3 -readonly "$db" "SELECT count(*) FROM entries")
    bytes=$(stat -c %s "$db")
    printf '%-8s %-5s %10s %12s %10s\n' "$c" "$name" "$n" "$bytes" "$((bytes / n))"
  done
done

extra=()
for b in "${builds[@]}"; do
  name=${b%%=*} bin=${b#*=}
  extra+=(--extra "$name-init=$bin init --force --rules $STATE/{corpus}.toml --db $STATE/{corpus}-$name-init.db >/dev/null 2>&1")
  extra+=(--extra "$name-check=$bin check --trust $STATE/bench.key.pub --db $STATE/{corpus}-$name.db >/dev/null 2>&1")
  extra+=(--extra "$name-fast=$bin check --fast --trust $STATE/bench.key.pub --db $STATE/{corpus}-$name.db >/dev/null 2>&1")
done
bash "$TOOLS_DIR/anchors.sh" --root "$ROOT" "${corpus_args[@]}" --runs "$RUNS" \
  --baseline b3sum-p2 --tools find,b3sum-p2 "${extra[@]}"
