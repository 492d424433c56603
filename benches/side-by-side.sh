#!/usr/bin/env bash
# benches/side-by-side.sh - tripseal beside b3sum, AIDE and find on the same corpus.
#
# Usage: benches/side-by-side.sh init|check [--corpus small|big|deep]... [--runs N]
#
# Builds (or reuses) the shared corpora with make-corpus.sh, then runs the
# shared anchors.sh with tripseal added as extra commands, so every figure and
# ratio comes from the same alternating rounds on a corpus locked in RAM.
#   init:  tripseal-init (rule: type size mtime hash; cf. aide-init-w2, sha256)
#          tripseal-init-full (every attribute incl. xattrs; cf. aide-full-init-w2)
#          beside find, b3sum, b3sum-p2. Ratios to b3sum-p2 (big corpus: b3sum).
#   check: tripseal-check, tripseal-check-full (full re-hash) and
#          tripseal-check-fast (--fast) on the unchanged corpus, against
#          signed baselines (the seal is verified in every run), beside
#          aide-check-w2, aide-full-check-w2 and the find stat walk.
#          Ratios to the find walk.
#
# Needs: the shared bench tools (FIMBENCH_TOOLS, default ../shared/bench from
# the repository root), b3sum (cargo install b3sum), aide, vmtouch and GNU time
# (apt-get install aide vmtouch time). ~4 GB under FIMBENCH_ROOT (/tmp/fimbench).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS_DIR="${FIMBENCH_TOOLS:-../shared/bench}"
ROOT="${FIMBENCH_ROOT:-/tmp/fimbench}"
[[ -f "$TOOLS_DIR/anchors.sh" ]] || {
  echo "benches/init.sh: no anchors.sh in $TOOLS_DIR; set FIMBENCH_TOOLS to the shared bench folder" >&2
  exit 2
}
JOB="${1:-}"; shift || true
[[ "$JOB" == init || "$JOB" == check ]] || {
  echo "usage: benches/side-by-side.sh init|check [--corpus NAME]... [--runs N]" >&2; exit 2; }
CORPORA=(); RUNS=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --corpus) CORPORA+=("$2"); shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    *) echo "benches/init.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ ${#CORPORA[@]} -eq 0 ]] && CORPORA=(small)

cargo build --release --quiet
BIN="$PWD/target/release/tripseal"
bash "$TOOLS_DIR/make-corpus.sh" "$ROOT" "${CORPORA[@]}"

STATE="$ROOT/state/tripseal"; mkdir -p "$STATE"
for c in "${CORPORA[@]}"; do
  for kind in content full; do
    if [[ $kind == content ]]; then check='["type", "size", "mtime", "hash"]'
    else check='["type", "mode", "uid", "gid", "size", "mtime", "ctime", "inode", "nlink", "link", "hash", "xattrs"]'; fi
    printf '[[rule]]\nname = "corpus"\npaths = ["%s", "%s/**"]\ncheck = %s\n' \
      "$ROOT/$c" "$ROOT/$c" "$check" > "$STATE/$c-$kind.toml"
  done
done

args=()
for c in "${CORPORA[@]}"; do args+=(--corpus "$c"); done
if [[ $JOB == init ]]; then
  bash "$TOOLS_DIR/anchors.sh" --root "$ROOT" "${args[@]}" --runs "$RUNS" \
    --tools find,b3sum,b3sum-p2,aide-init-w2,aide-full-init-w2 \
    --extra "tripseal-init=$BIN init --force --rules $STATE/{corpus}-content.toml --db $STATE/{corpus}-content.db >/dev/null" \
    --extra "tripseal-init-full=$BIN init --force --rules $STATE/{corpus}-full.toml --db $STATE/{corpus}-full.db >/dev/null"
else
  # Signed baselines: the figures include verifying the seal, as on a host.
  [[ -f "$STATE/bench.key" ]] || "$BIN" keygen --out "$STATE/bench.key" >/dev/null
  for c in "${CORPORA[@]}"; do
    for kind in content full; do
      "$BIN" init --force --rules "$STATE/$c-$kind.toml" --db "$STATE/$c-$kind-check.db" >/dev/null
      "$BIN" sign --key "$STATE/bench.key" "$STATE/$c-$kind-check.db" >/dev/null
      rm -f "$STATE/$c-$kind-check.db.accepted"
    done
  done
  T="--trust $STATE/bench.key.pub"
  bash "$TOOLS_DIR/anchors.sh" --root "$ROOT" "${args[@]}" --runs "$RUNS" --baseline find \
    --tools find,aide-check-w2,aide-full-check-w2 \
    --extra "tripseal-check=$BIN check $T --db $STATE/{corpus}-content-check.db" \
    --extra "tripseal-check-full=$BIN check $T --db $STATE/{corpus}-full-check.db" \
    --extra "tripseal-check-fast=$BIN check $T --fast --db $STATE/{corpus}-full-check.db"
fi
