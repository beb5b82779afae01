#!/usr/bin/env bash
# Reproduces the README's benchmark figures: for each workload, a fresh nats-server of its own
# (temporary store, removed afterwards), 1,000,000 events, the projector's catch-up rate next to
# a raw async-nats pull consumer in the same run, medians of 3 rounds.
#   tools/bench.sh [EVENTS]      (called by ./dev bench)
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
cargo build --release -p ledger-services --bin ledger >&2
server=.tools/py/bin/nats-server
for workload in "100 1000" "1000 3000"; do
  read -r calls batch <<<"$workload"
  store=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$server" -js -sd "$store" -a 127.0.0.1 -p "$port" >"$store/server.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null; rm -rf "$store"' EXIT
  sleep 0.5
  echo "== $events events, $calls calls in progress at once, batch $batch" >&2
  RUST_LOG=warn ./target/release/ledger bench catch-up --nats "nats://127.0.0.1:$port" \
    --events "$events" --concurrent-calls "$calls" --batch "$batch" --rounds 3 "${@:2}"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$store"
  trap - EXIT
done
