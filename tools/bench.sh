#!/usr/bin/env bash
# Reproduces the README's benchmark figures, each on a fresh nats-server of its own (temporary
# store, removed afterwards), each next to raw async-nats in the same run:
# - catch-up: EVENTS events (default 1,000,000), the projector's rate next to async-nats' ordered
#   consumer (the baseline) and a bare pull consumer with the projector's window, medians of 3
#   rounds, for two workloads (100 and 1,000 calls in progress at once);
# - delete: accepted TDeleteFromConference latency (p50/p99/p99.9) next to a raw publish with the
#   same optimistic-concurrency headers, 3 rounds of 2,000;
# - publish: the producer API next to raw publishes with Nats-Msg-Id, 3 rounds of 100,000;
# - replay: one call read back and folded on a stream of 1,000,000 and of 10,000,000 events, next
#   to the raw batched direct get.
# The write benchmarks (delete, publish) run on the server's default configuration and on the
# durable one (sync_interval: always); the read benchmarks on the default.
#
#   tools/bench.sh [EVENTS] [WHICH...]      (called by ./dev bench; WHICH: catch-up delete publish replay)
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
shift || true
which=("$@")
[[ ${#which[@]} -gt 0 ]] || which=(catch-up delete publish replay)
cargo build --release -p ledger-cli --bin ledger >&2
server=.tools/py/bin/nats-server

# Runs `ledger bench ARGS...` against a fresh server of its own; SYNC=always for the durable one.
on_fresh_server() {
  local store port pid status=0
  store=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  {
    echo "host: 127.0.0.1"
    echo "port: $port"
    echo "jetstream { store_dir: \"$store/js\""
    [[ ${SYNC:-} == always ]] && echo "  sync_interval: always"
    echo "}"
  } >"$store/nats.conf"
  "$server" -c "$store/nats.conf" >"$store/server.log" 2>&1 &
  pid=$!
  sleep 0.5
  RUST_LOG=warn ./target/release/ledger bench "$@" --nats "nats://127.0.0.1:$port" || status=$?
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$store"
  return "$status"
}

wants() { [[ " ${which[*]} " == *" $1 "* ]]; }

if wants catch-up; then
  for workload in "100 1000" "1000 3000"; do
    read -r calls batch <<<"$workload"
    echo "== catch-up: $events events, $calls calls in progress at once, batch $batch" >&2
    on_fresh_server catch-up --events "$events" --concurrent-calls "$calls" --batch "$batch" --rounds 3
  done
fi
if wants delete; then
  for sync in default always; do
    echo "== delete latency (sync_interval: $sync): 3 rounds of 2,000 accepted deletes, one at a time" >&2
    SYNC=$sync on_fresh_server delete --requests 2000 --rounds 3
  done
fi
if wants publish; then
  for sync in default always; do
    echo "== publish (sync_interval: $sync): 3 rounds of 100,000 events, 256 acknowledgements in flight" >&2
    SYNC=$sync on_fresh_server publish --events 100000 --rounds 3 --in-flight 256
  done
fi
if wants replay; then
  echo "== replay: one call on streams of 1,000,000 and 10,000,000 events, 1,000 calls in progress" >&2
  on_fresh_server replay --events 1000000,10000000 --concurrent-calls 1000
fi
