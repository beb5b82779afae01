#!/usr/bin/env bash
# The main job (./dev run): a durable nats-server when none answers at $NATS_URL, then
# `ledger serve` for the sites given (default SiteA SiteB SiteC) until Ctrl-C.
#   ./dev run                      # SiteA SiteB SiteC
#   ./dev run --site East --site West
set -euo pipefail
cd "$(dirname "$0")/.."
url=${NATS_URL:-nats://127.0.0.1:4222}
args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=(--site SiteA --site SiteB --site SiteC)
cargo build --release -p ledger-services --bin ledger
hostport=${url#nats://}
if ! (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null; then
  mkdir -p .data
  echo "starting nats-server (deploy/nats-server.conf, store .data/nats, log .data/nats-server.log)" >&2
  .tools/py/bin/nats-server -c deploy/nats-server.conf >.data/nats-server.log 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null && break
    sleep 0.1
  done
fi
echo "ledger serve ${args[*]} on $url; Ctrl-C stops it cleanly" >&2
./target/release/ledger --nats "$url" serve "${args[@]}" &
ledger=$!
trap 'kill -TERM $ledger 2>/dev/null; wait $ledger; [[ -n ${server:-} ]] && kill $server 2>/dev/null; wait ${server:-} 2>/dev/null' EXIT INT TERM
wait $ledger
