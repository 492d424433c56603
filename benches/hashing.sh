#!/usr/bin/env bash
# benches/hashing.sh - tripseal's hashing of large and sparse files beside b3sum.
#
# Usage: benches/hashing.sh [--runs N] [--sparse-gib N]
#
# Corpora under FIMBENCH_ROOT (/tmp/fimbench), locked in RAM by anchors.sh:
#   big:    the shared corpus, 4 files, 2 GiB (make-corpus.sh big);
#   one:    one 1 GiB file alone (a hard link to big's largest): one file
#           must use both cores;
#   sparse: one file of N GiB (default 20) that is a hole but for four
#           16 MiB islands of data: holes must cost no reads.
# Tools, in the same alternating rounds:
#   b3sum (memory-mapped, all threads), b3sum --no-mmap (plain reads, as
#   tripseal reads), tripseal init and tripseal check (seal verified).
# Ratios are to b3sum, paired per round (on sparse, to b3sum --no-mmap, the
# reference the issue names).
#
# What to look for besides the ratios: the system time, printed after the
# table. User time is the hashing; system time on big and one is the copying
# out of the page cache
# (about 0.45 s per 2 GiB on the 2-core machine, whatever the buffer's
# size or alignment: a C reader gives the same). A path whose system time is
# well above that copies in a way it should not.
#
# Needs: the shared bench tools (FIMBENCH_TOOLS, default ../shared/bench),
# b3sum (cargo install b3sum), vmtouch and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_DIR="${FIMBENCH_TOOLS:-../shared/bench}"
ROOT="${FIMBENCH_ROOT:-/tmp/fimbench}"
RUNS=5; SPARSE_GIB=20
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --sparse-gib) SPARSE_GIB="$2"; shift 2 ;;
    *) echo "benches/hashing.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

cargo build --release --quiet
BIN="$PWD/target/release/tripseal"
bash "$TOOLS_DIR/make-corpus.sh" "$ROOT" big

mkdir -p "$ROOT/one" "$ROOT/sparse"
[[ "$ROOT/one/blob-0.bin" -ef "$ROOT/big/blob-0.bin" ]] || ln -f "$ROOT/big/blob-0.bin" "$ROOT/one/blob-0.bin"
printf 'files=1\nbytes=%s\n' "$(stat -c %s "$ROOT/one/blob-0.bin")" > "$ROOT/one.stamp"
img="$ROOT/sparse/sparse.img"
if [[ ! -f "$img" || $(stat -c %s "$img") -ne $((SPARSE_GIB << 30)) ]]; then
  rm -f "$img"; truncate -s "${SPARSE_GIB}G" "$img"
  # Four islands of incompressible data: at the start, twice inside, and
  # just before the end.
  last=$(( (SPARSE_GIB << 10) - 16 ))
  for at in 0 $((last / 3)) $((2 * last / 3 + 1)) $last; do
    dd if="$ROOT/big/blob-2.bin" of="$img" bs=1M count=16 seek="$at" conv=notrunc status=none
  done
fi
printf 'files=1\nbytes=%s\n' "$(stat -c %s "$img")" > "$ROOT/sparse.stamp"

STATE="$ROOT/state/tripseal-hashing"; mkdir -p "$STATE"
[[ -f "$STATE/bench.key" ]] || "$BIN" keygen --out "$STATE/bench.key" >/dev/null
for c in big one sparse; do
  printf '[[rule]]\nname = "corpus"\npaths = ["%s", "%s/**"]\ncheck = ["type", "size", "mtime", "hash"]\n' \
    "$ROOT/$c" "$ROOT/$c" > "$STATE/$c.toml"
  "$BIN" init --force --rules "$STATE/$c.toml" --db "$STATE/$c-check.db" >/dev/null
  "$BIN" sign --key "$STATE/bench.key" "$STATE/$c-check.db" >/dev/null
  rm -f "$STATE/$c-check.db.accepted"
done

B3_NO_MMAP="b3sum-no-mmap=find {dir} -type f -print0 | xargs -0 b3sum --no-mmap >/dev/null"
TS_INIT="tripseal-init=$BIN init --force --rules $STATE/{corpus}.toml --db $STATE/{corpus}.db >/dev/null"
TS_CHECK="tripseal-check=$BIN check --trust $STATE/bench.key.pub --db $STATE/{corpus}-check.db >/dev/null"
bash "$TOOLS_DIR/anchors.sh" --root "$ROOT" --corpus big --corpus one --runs "$RUNS" \
  --tsv "$STATE/runs.tsv" \
  --baseline b3sum --tools b3sum --extra "$B3_NO_MMAP" --extra "$TS_INIT" --extra "$TS_CHECK"
# System time alone: copying 2 GiB out of the page cache has a floor (see
# the header); every tripseal path should sit on it, as b3sum --no-mmap does.
python3 - "$STATE/runs.tsv" <<'PY'
import statistics, sys
sys_s = {}
for line in open(sys.argv[1]):
    corpus, tool, phase, _, _, _, sys_time, _, _ = line.rstrip("\n").split("\t")
    if phase == "run":
        sys_s.setdefault((corpus, tool), []).append(float(sys_time))
print("system time, median of the runs (s):")
for (corpus, tool), v in sys_s.items():
    print(f"  {corpus:8} {tool:16} {statistics.median(v):.2f}")
PY
# Not locked: locking maps every page, and a hole's pages would be made
# (20 GiB of zeros in RAM). Each round reads the islands back in anyway.
bash "$TOOLS_DIR/anchors.sh" --root "$ROOT" --corpus sparse --runs "$RUNS" --no-lock \
  --baseline b3sum-no-mmap --tools b3sum --extra "$B3_NO_MMAP" --extra "$TS_INIT" --extra "$TS_CHECK"
