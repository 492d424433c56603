#!/usr/bin/env bash
# benches/million.sh - peak memory of `tripseal init` and `check` over one
# million files.
#
# Usage: benches/million.sh [FILES]   (default 1000000)
# Makes FILES small files (1 to 64 bytes) in directories of 1,000 under
# $FIMBENCH_ROOT/million (default /tmp/fimbench), once, then runs
# `tripseal init`, then (the baseline signed) `check --fast` and `check`,
# under GNU time, and prints wall time and peak RSS of each. A check holds
# the verified baseline in memory (it reads the file once and compares with
# that copy), so its peak follows the size of the baseline file.
# Needs GNU time (apt-get install time). Takes a few minutes the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
ROOT="${FIMBENCH_ROOT:-/tmp/fimbench}/million"
cargo build --release --quiet
BIN="$PWD/target/release/tripseal"
if [[ "$(cat "$ROOT.stamp" 2>/dev/null)" != "$N" ]]; then
  rm -rf "$ROOT"; mkdir -p "$ROOT"
  python3 - "$ROOT" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:04d}")
    if i % 1000 == 0:
        os.mkdir(d)
    with open(os.path.join(d, f"f{i:07d}"), "wb") as f:
        f.write(b"x" * (1 + i % 64))
PY
  echo "$N" > "$ROOT.stamp"
fi
printf '[[rule]]\nname = "million"\npaths = ["%s/**"]\ncheck = ["type", "mode", "uid", "gid", "size", "mtime", "hash"]\n' "$ROOT" > "$ROOT.toml"
rm -f "$ROOT.db"
/usr/bin/time -f 'tripseal init: %e s wall, %M KiB peak RSS' \
  "$BIN" init --rules "$ROOT.toml" --db "$ROOT.db"
ls -l "$ROOT.db"
rm -f "$ROOT.key" "$ROOT.key.pub" "$ROOT.db.accepted"
"$BIN" keygen --out "$ROOT.key" >/dev/null
"$BIN" sign --key "$ROOT.key" "$ROOT.db" >/dev/null
/usr/bin/time -f 'tripseal check --fast: %e s wall, %M KiB peak RSS' \
  "$BIN" check --fast --trust "$ROOT.key.pub" --db "$ROOT.db"
/usr/bin/time -f 'tripseal check: %e s wall, %M KiB peak RSS' \
  "$BIN" check --trust "$ROOT.key.pub" --db "$ROOT.db"
