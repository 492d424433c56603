#!/usr/bin/env bash
# benches/origin.sh - what explaining drift by package origin adds to a check.
#
# Usage: benches/origin.sh [--drift N] [--runs R]   (default 200 files, 7 runs)
#
# Baselines the shared 100k-file corpus ("small"), rewrites N of its files,
# then runs `check` R times back to back (warm cache). Each run logs how
# long the origin step took (reading dpkg's status and every package's file
# list once, the pip records above the drifted paths, and re-reading the
# drifted files): the table gives the median check, the median origin step
# and its share, with the number of installed packages it read.
#
# Needs the shared bench corpus (FIMBENCH_TOOLS, default ../shared/bench;
# FIMBENCH_ROOT, default /tmp/fimbench).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_DIR="${FIMBENCH_TOOLS:-../shared/bench}"
ROOT="${FIMBENCH_ROOT:-/tmp/fimbench}"
N=200; RUNS=7
while [[ $# -gt 0 ]]; do
  case "$1" in
    --drift) N="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    *) echo "benches/origin.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
cargo build --release --quiet
BIN="$PWD/target/release/tripseal"
bash "$TOOLS_DIR/make-corpus.sh" "$ROOT" small >/dev/null
W=$(mktemp -d /tmp/tripseal-origin-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
cp -a "$ROOT/small" "$W/tree"
printf '[[rule]]\nname = "corpus"\npaths = ["%s", "%s/**"]\ncheck = ["type", "mode", "owner", "group", "size", "hash"]\nseverity = "high"\n' \
  "$W/tree" "$W/tree" >"$W/rules.toml"
"$BIN" -q init --rules "$W/rules.toml" --db "$W/b.db" >/dev/null
find "$W/tree" -type f | sort | sed -n "1,${N}p" | while read -r f; do echo drift >>"$f"; done
totals=(); origins=()
for _ in $(seq "$RUNS"); do
  start=$(date +%s%N)
  log=$(TRIPSEAL_LOG=debug "$BIN" check --allow-unsigned --db "$W/b.db" 2>&1 >/dev/null || true)
  end=$(date +%s%N)
  totals+=($(( (end - start) / 1000 )))
  ms=$(sed -n 's/.*origin: [0-9]* drifted paths explained in \([0-9.]*\) ms.*/\1/p' <<<"$log")
  [[ -n "$ms" ]] || { echo "benches/origin.sh: no origin line in the log:" >&2; echo "$log" >&2; exit 1; }
  origins+=("$(awk -v m="$ms" 'BEGIN { printf "%d", m * 1000 }')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
t=$(median "${totals[@]}"); o=$(median "${origins[@]}")
packages=$(dpkg-query -W -f='${db:Status-Abbrev}\n' 2>/dev/null | grep -c '^.i' || true)
entries=$(find "$W/tree" | wc -l)
printf '%-44s %12s\n' "corpus entries / drifted files / packages" "$entries / $N / $packages"
printf '%-44s %10.1f ms\n' "check, median of $RUNS" "$(awk -v v="$t" 'BEGIN { print v / 1000 }')"
printf '%-44s %10.1f ms\n' "of which the origin step, median" "$(awk -v v="$o" 'BEGIN { print v / 1000 }')"
printf '%-44s %11.1f %%\n' "origin step / (check without it)" "$(awk -v o="$o" -v t="$t" 'BEGIN { print 100 * o / (t - o) }')"
