#!/usr/bin/env bash
# Reproduces the README's benchmark figures, each on a fresh nats-server of its own (temporary
# store, removed afterwards):
# - catch-up: 1,000,000 events, the projector's rate next to a raw async-nats pull consumer in the
#   same run, medians of 3 rounds, for two workloads;
# - delete: accepted TDeleteFromConference latency (p50/p99/p99.9) next to a raw publish with the
#   same optimistic-concurrency headers, 3 rounds of 2,000.
#   tools/bench.sh [EVENTS]      (called by ./dev bench)
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
cargo build --release -p ledger-cli --bin ledger >&2
server=.tools/py/bin/nats-server
# Runs `ledger bench ARGS...` against a fresh server of its own.
on_fresh_server() {
  local store port pid
  store=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$server" -js -sd "$store" -a 127.0.0.1 -p "$port" >"$store/server.log" 2>&1 &
  pid=$!
  sleep 0.5
  RUST_LOG=warn ./target/release/ledger bench "$@" --nats "nats://127.0.0.1:$port" || status=$?
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$store"
  return "${status:-0}"
}
for workload in "100 1000" "1000 3000"; do
  read -r calls batch <<<"$workload"
  echo "== catch-up: $events events, $calls calls in progress at once, batch $batch" >&2
  on_fresh_server catch-up --events "$events" --concurrent-calls "$calls" --batch "$batch" --rounds 3 "${@:2}"
done
echo "== delete latency: 3 rounds of 2,000 accepted deletes, one at a time" >&2
on_fresh_server delete --requests 2000 --rounds 3 "${@:2}"
