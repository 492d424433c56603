#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with a Rust toolchain.
# Installs what the tests need, then runs formatting, lints and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive: setfattr (attr) to set extended attributes
# from the outside, setpriv (util-linux) to run the binary as an unprivileged
# user (root reads everything), mount for a tmpfs inside a scanned tree,
# script (bsdutils) for a pseudo-terminal, sqlite3 to edit baselines, openssl
# to check that keys and signatures interoperate; redis-server and
# rabbitmq-server are the brokers the event tests deliver through (the tests
# start their own instances on loopback, never the system's service);
# systemd-analyze (systemd) verifies the units in packaging/systemd;
# dpkg-shlibdeps (dpkg-dev) works out the package's dependencies for
# cargo-deb, and man (man-db) finds the man pages the package installs; ip
# (iproute2) makes the network namespaces the fleet's hosts run in, and
# chromium loads the collector's status page as a browser does; gpg (gnupg)
# signs a test archive that apt-ftparchive (apt-utils) indexes.
need=()
command -v setfattr >/dev/null || need+=(attr)
command -v setpriv  >/dev/null || need+=(util-linux)
command -v mount    >/dev/null || need+=(mount)
command -v script   >/dev/null || need+=(bsdutils)
command -v sqlite3  >/dev/null || need+=(sqlite3)
command -v openssl  >/dev/null || need+=(openssl)
command -v redis-server >/dev/null || need+=(redis-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
command -v man >/dev/null || need+=(man-db)
command -v ip >/dev/null || need+=(iproute2)
command -v chromium >/dev/null || need+=(chromium)
command -v gpg >/dev/null || need+=(gnupg)
command -v apt-ftparchive >/dev/null || need+=(apt-utils)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The consumer side of the event tests is the real Celery, from PyPI, in a
# virtual environment of its own (the version events.md was checked against).
venv=target/test-venv
# celery[auth] brings cryptography, for the receiver that requires signed
# events.
if ! "$venv/bin/python" -c 'import celery, redis, cryptography' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'celery[redis,auth]==5.7.0'
fi
export TRIPSEAL_TEST_PYTHON="$PWD/$venv/bin/python"

# tests/package.rs builds the Debian package with cargo-deb, then installs
# and purges it.
command -v cargo-deb >/dev/null || cargo install --quiet --locked cargo-deb --version 3.7.0

# Snapshot mismatches fail; they are never written over silently.
export INSTA_UPDATE=no

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --all-targets

# Fuzzing, briefly: each target for about 30 s from the committed corpus (the
# long runs and their figures are in the README). New inputs go to a
# temporary directory, never into the checkout; a crash fails the suite.
# --dev: the unoptimized build takes half the time of the release one, and
# keeps overflow checks on; 30 s is about replaying the corpus and a few
# thousand new inputs, not throughput.
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz --version 0.13.2
fuzz_seconds="${TRIPSEAL_FUZZ_SECONDS:-30}"
fuzz_tmp="$(mktemp -d)"
trap 'rm -rf "$fuzz_tmp"' EXIT
(
  cd fuzz
  for target in rules baseline sink_url fleet_event; do
    mkdir -p "$fuzz_tmp/$target"
    if ! cargo fuzz run -s none --dev "$target" "$fuzz_tmp/$target" "corpus/$target" -- \
      -max_total_time="$fuzz_seconds" -print_final_stats=1 >"$fuzz_tmp/$target.log" 2>&1; then
      tail -n 60 "$fuzz_tmp/$target.log" >&2
      echo "scripts/test.sh: fuzz target $target failed (its input is in fuzz/artifacts/$target/)" >&2
      exit 1
    fi
    grep -E '^(stat::number_of_executed_units|Done)' "$fuzz_tmp/$target.log" | sed "s/^/fuzz $target: /"
  done
)
