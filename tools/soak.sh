#!/usr/bin/env bash
# A soak: `ledger sim` at a steady rate against `ledger up` (three sites, embedded durable server)
# for MINUTES, sampling the resident memory of the `ledger up` process (its six site services:
# a projector and a command service per site) and the calls in progress; then `ledger verify`
# checks that the lists, the audit and the stream agree.
#
#   tools/soak.sh [MINUTES] [CALLS_PER_SECOND] [MEAN_GAP_MS]      (via ./dev soak)
#
# Bytes per call in progress = (resident memory now - before the first call) / (calls in
# progress x 3 sites x 2 views). Each view also keeps the last 10,000 ended calls (to recognise
# late events), so memory grows until that many calls have ended (at 20 calls/s, about 8.5
# minutes) and is flat from then on; "per held call" divides by the calls in progress plus the
# ended calls kept (estimated from the calls started so far).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-10}
rate=${2:-20}
gap_ms=${3:-10000}
sample_s=${SOAK_SAMPLE_S:-15}
bin=target/release/ledger
sites=(--site SiteA --site SiteB --site SiteC)

data=$(mktemp -d "${TMPDIR:-/tmp}/ledger-soak-XXXXXX")
"$bin" up --data "$data" "${sites[@]}" >"$data/up.out" 2>"$data/up.log" &
up=$!
cleanup() {
  [[ -n ${sim:-} ]] && kill "$sim" 2>/dev/null || true
  kill "$up" 2>/dev/null || true
  wait "$up" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT

state=$data/ledger-server.json
for _ in $(seq 200); do [[ -s $state ]] && break; sleep 0.1; done
[[ -s $state ]] || { echo "ledger up did not start:" >&2; cat "$data/up.log" >&2; exit 1; }
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$state")
server_pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["server_pid"])' "$state")

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
in_progress() {
  local total=0 n
  for s in SiteA SiteB SiteC; do
    n=$("$bin" status --server "$url" --site "$s" --format json 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["active_calls"])' 2>/dev/null || echo 0)
    total=$((total > n ? total : n))
  done
  echo "$total"
}

# Wait for the three leaders, then take the baseline.
for _ in $(seq 100); do
  "$bin" status --server "$url" --site SiteC >/dev/null 2>&1 && break
  sleep 0.2
done
sleep 2
base=$(rss_kb "$up")
calls=$(python3 -c "print(int($minutes * 60 * $rate))")
echo "soak: $calls calls at $rate/s (mean gap ${gap_ms} ms) for $minutes min on $url; ledger up pid $up, baseline ${base} KiB"
"$bin" sim --server "$url" "${sites[@]}" --calls "$calls" --rate "$rate" --gap-ms "$gap_ms" --seed 1 \
  --format json >"$data/sim.json" 2>"$data/sim.log" &
sim=$!

printf '%8s %14s %14s %10s %10s %16s %16s\n' elapsed "ledger up KiB" "server KiB" calls held "bytes/call/view" "bytes/held/view"
start=$(date +%s)
while kill -0 "$sim" 2>/dev/null; do
  sleep "$sample_s"
  kill -0 "$sim" 2>/dev/null || break
  rss=$(rss_kb "$up")
  srv=$(rss_kb "$server_pid")
  n=$(in_progress)
  t=$(($(date +%s) - start))
  held=$(python3 -c "s = min($calls, $t * $rate); print(int($n + min(max(0, s - $n), 10000)))")
  per=$(python3 -c "print(round(($rss - $base) * 1024 / max(1, $n * 3 * 2)))")
  per_held=$(python3 -c "print(round(($rss - $base) * 1024 / max(1, $held * 3 * 2)))")
  printf '%7ss %14s %14s %10s %10s %16s %16s\n' "$t" "$rss" "$srv" "$n" "$held" "$per" "$per_held"
done
wait "$sim" || { echo "ledger sim failed:" >&2; cat "$data/sim.log" >&2; exit 1; }
echo "sim: $(cat "$data/sim.json")"
echo "after the calls: ledger up $(rss_kb "$up") KiB, server $(rss_kb "$server_pid") KiB"
"$bin" verify --server "$url" "${sites[@]}" --wait 120
