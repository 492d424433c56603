#!/usr/bin/env bash
# benches/events.sh - events per second through the outbox to RabbitMQ and to
# Redis, beside Celery's own EventDispatcher sending as many events.
#
# Usage: benches/events.sh [--events N] [--runs R]     (default 10000, 5)
#        [--compare OTHER_BINARY] [--no-receiver]
#        TRIPSEAL_BIN=/path/to/tripseal benches/events.sh ...   (another build)
# --compare adds OTHER_BINARY's check, check+redis and check+amqp to the
# same rounds (a before/after that machine noise hits alike), on a baseline
# of its own making. --no-receiver
# starts no Celery Receiver: the sink and the broker alone (on Redis, no
# subscriber's buffers to wait for; on RabbitMQ, events that no queue takes,
# still confirmed).
#
# Starts a Redis and a RabbitMQ on loopback ports (as the tests do), makes a
# tree of N files with a baseline, edits every file, then alternates, R times:
#   check           tripseal check, no sink              (the scan and compare)
#   check+SINK      tripseal check --emit SINK           (plus N+2 events through
#                   the outbox: written, delivered, confirmed, forgotten)
#   celery SINK     Celery's EventDispatcher, N events   (no confirms, no outbox)
# A Celery Receiver consumes from each broker throughout, as in production.
# tripseal's events/s = N / (median(check+SINK) - median(check)).
#
# Needs what scripts/test.sh installs (redis-server, rabbitmq-server, the
# venv with celery in target/test-venv): run the test suite once first.
set -euo pipefail
cd "$(dirname "$0")/.."
N=10000; RUNS=5; OTHER=""; RECEIVERS=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) N="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --compare) OTHER="$2"; shift 2 ;;
    --no-receiver) RECEIVERS=0; shift ;;
    *) echo "benches/events.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
PY="$PWD/target/test-venv/bin/python"
[[ -x "$PY" ]] || { echo "benches/events.sh: no $PY; run ./scripts/test.sh first" >&2; exit 2; }
# TRIPSEAL_BIN: another build to measure (an older one, for a before/after).
if [[ -z "${TRIPSEAL_BIN:-}" ]]; then cargo build --release --quiet; fi
BIN="${TRIPSEAL_BIN:-$PWD/target/release/tripseal}"

W=$(mktemp -d /tmp/tripseal-events-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || true; done
  sleep 1; rm -rf "$W"
}
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
spawn() { setsid "$@" >/dev/null 2>&1 </dev/null & pids+=($!); }

REDIS_PORT=$(free_port); AMQP_PORT=$(free_port); EPMD_PORT=$(free_port); DIST_PORT=$(free_port)
spawn redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$W" --daemonize no
M="$W/rmq"; mkdir -p "$M"
printf 'listeners.tcp.default = 127.0.0.1:%s\ndistribution.listener.interface = 127.0.0.1\n' "$AMQP_PORT" > "$M/rabbitmq.conf"
echo '[].' > "$M/advanced.config"; echo '[].' > "$M/enabled_plugins"
EPMD=$(command -v epmd || ls /usr/lib/erlang/erts-*/bin/epmd | head -1)
spawn "$EPMD" -address 127.0.0.1 -port "$EPMD_PORT"
spawn env HOME="$M" RABBITMQ_CONFIG_FILE="$M/rabbitmq.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$M/advanced.config" \
  RABBITMQ_ENABLED_PLUGINS_FILE="$M/enabled_plugins" RABBITMQ_MNESIA_BASE="$M/mnesia" RABBITMQ_LOG_BASE="$M/log" \
  RABBITMQ_NODENAME=bench@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT="$DIST_PORT" \
  ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$EPMD_PORT" /usr/lib/rabbitmq/bin/rabbitmq-server
wait_port "$REDIS_PORT"; wait_port "$AMQP_PORT"
REDIS="redis://127.0.0.1:$REDIS_PORT/0"; AMQP="amqp://guest:guest@127.0.0.1:$AMQP_PORT//"

for url in "$REDIS" "$AMQP"; do
  [[ $RECEIVERS == 1 ]] || continue
  spawn "$PY" tests/python/receiver.py "$url" "$W/received-$RANDOM.jsonl" 1000000000 86400
done

mkdir -p "$W/tree/tasks"
"$PY" - "$W/tree/tasks" "$N" <<'PYEOF'
import sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(f"{d}/module_{i:05d}.py", "w") as f:
        f.write(f"def task_{i}():\n    return {i}\n")
PYEOF
printf '[[rule]]\nname = "task-modules"\npaths = ["%s/**/*.py"]\ncheck = ["type", "mode", "size", "hash"]\nseverity = "high"\n' "$W/tree" > "$W/rules.toml"
"$BIN" init --rules "$W/rules.toml" --db "$W/b.db" >/dev/null
# The other build makes its own baseline: its schema may differ.
[[ -z "$OTHER" ]] || "$OTHER" init --rules "$W/rules.toml" --db "$W/other.db" >/dev/null
for f in "$W"/tree/tasks/*.py; do echo "# edited" >> "$f"; done
sleep 3   # the receivers bind their queues

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>"$W/last.err" || [[ $? -lt 8 ]]; e=$(date +%s.%N); echo "$e - $s" | bc; }
declare -A T
for r in $(seq "$RUNS"); do
  T[check]+="$(secs "$BIN" check --allow-unsigned --db "$W/b.db") "
  T[check+redis]+="$(secs "$BIN" check --allow-unsigned --db "$W/b.db" --emit "$REDIS") "
  T[celery-redis]+="$("$PY" benches/celery_dispatch.py "$REDIS" "$N") "
  T[check+amqp]+="$(secs "$BIN" check --allow-unsigned --db "$W/b.db" --emit "$AMQP") "
  T[celery-amqp]+="$("$PY" benches/celery_dispatch.py "$AMQP" "$N") "
  if grep -q "not delivered" "$W/last.err"; then cat "$W/last.err" >&2; exit 1; fi
  if [[ -n "$OTHER" ]]; then
    T[other]+="$(secs "$OTHER" check --allow-unsigned --db "$W/other.db") "
    T[other+redis]+="$(secs "$OTHER" check --allow-unsigned --db "$W/other.db" --emit "$REDIS") "
    T[other+amqp]+="$(secs "$OTHER" check --allow-unsigned --db "$W/other.db" --emit "$AMQP") "
    if grep -q "not delivered" "$W/last.err"; then cat "$W/last.err" >&2; exit 1; fi
  fi
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '%-14s %10s   (%s runs, %s events each; seconds)\n' what median "$RUNS" "$N"
keys=(check check+redis celery-redis check+amqp celery-amqp)
[[ -n "$OTHER" ]] && keys+=(other other+redis other+amqp)
for k in "${keys[@]}"; do
  printf '%-14s %10.3f   %s\n' "$k" "$(echo "${T[$k]}" | median)" "${T[$k]}"
done
base=$(echo "${T[check]}" | median)
for b in redis amqp; do
  with=$(echo "${T[check+$b]}" | median); ref=$(echo "${T[celery-$b]}" | median)
  echo "$b: tripseal $(echo "$N / ($with - $base)" | bc) events/s through the outbox (confirmed); Celery's dispatcher $(echo "$N / $ref" | bc) events/s (unconfirmed)"
  if [[ -n "$OTHER" ]]; then
    other=$(echo "${T[other+$b]}" | median); other_base=$(echo "${T[other]}" | median)
    echo "$b: $OTHER $(echo "$N / ($other - $other_base)" | bc) events/s through the outbox (same rounds)"
  fi
done
