#!/usr/bin/env bash
# benches/fleet.sh - what a role baseline and the --reread share cost.
#
# Usage: benches/fleet.sh [ROUNDS]   (default 7)
# On the small corpus of ../shared/bench/make-corpus.sh (100,000 files, built
# once under $FIMBENCH_ROOT, default /tmp/fimbench, and locked in RAM with
# vmtouch for the run), makes a host's baseline and a role baseline with the
# same rules (every attribute; the role drops inode, dev, ctime and nlink and
# compares owners by name), signs both, then runs each check ROUNDS times,
# alternating, and prints the median wall time and peak RSS of each:
#   check, host vs role        (a role's check also writes its stat cache)
#   check --fast, host vs role (a role's reads it), with --reread 0 and 5
# Needs GNU time and vmtouch (apt-get install time vmtouch).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-7}"
ROOT="${FIMBENCH_ROOT:-/tmp/fimbench}"
SHARED="${SHARED_BENCH:-../shared/bench}"
cargo build --release --quiet
BIN="$PWD/target/release/tripseal"
[[ -d "$ROOT/small" ]] || "$SHARED/make-corpus.sh" "$ROOT" small
STATE="$(mktemp -d)"
vmtouch -q -l "$ROOT/small" & LOCK=$!
trap 'kill $LOCK 2>/dev/null; rm -rf "$STATE"' EXIT
sleep 5 # vmtouch reads the corpus in before it locks it

RULE='[[rule]]\nname = "all"\npaths = ["%s", "%s/**"]\ncheck = ["type", "mode", "uid", "gid", "size", "mtime", "ctime", "inode", "nlink", "link", "hash", "xattrs"]\n'
printf "$RULE" "$ROOT/small" "$ROOT/small" > "$STATE/host.toml"
{ echo 'role = "bench"'; cat "$STATE/host.toml"; } > "$STATE/role.toml"
"$BIN" keygen --out "$STATE/k" >/dev/null
for kind in host role; do
  "$BIN" init -q --rules "$STATE/$kind.toml" --db "$STATE/$kind.db" >/dev/null
  "$BIN" sign --key "$STATE/k" "$STATE/$kind.db" >/dev/null
  # The first check of a role baseline writes its stat cache.
  "$BIN" check -q --trust "$STATE/k.pub" --db "$STATE/$kind.db"
done

run() { # label args... -> "label wall rss"
  local label="$1"; shift
  /usr/bin/time -f "$label %e %M" "$BIN" "$@" -q 2>&1 >/dev/null | tail -n 1
}
for ((i = 0; i < ROUNDS; i++)); do
  for kind in host role; do
    run "check/$kind" check --trust "$STATE/k.pub" --db "$STATE/$kind.db"
    for share in 0 5; do
      run "check--fast--reread=$share/$kind" check --trust "$STATE/k.pub" --fast \
        --reread "$share" --db "$STATE/$kind.db"
    done
  done
done > "$STATE/runs"
python3 - "$STATE/runs" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, wall, rss = line.split()
    runs.setdefault(label, []).append((float(wall), int(rss)))
m = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
print(f"{'run':<32} {'wall, median':>14} {'peak RSS':>10}")
for k in sorted(runs):
    rss = statistics.median(r for _, r in runs[k]) / 1024
    print(f"{k:<32} {m[k]:>12.2f} s {rss:>6.0f} MiB")
fast = "check--fast--reread="
print(f"\nrole / host: check {m['check/role'] / m['check/host']:.2f}, check --fast "
      f"{m[fast + '5/role'] / m[fast + '5/host']:.2f} (--reread 5)")
print(f"--reread 5 / --reread 0: host {m[fast + '5/host'] / m[fast + '0/host']:.2f}, "
      f"role {m[fast + '5/role'] / m[fast + '0/role']:.2f}")
PY
