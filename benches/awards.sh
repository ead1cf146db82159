#!/usr/bin/env bash
# Award throughput: POST /v1/awards at 32 concurrent clients (wrk) against a release build on
# loopback, on SQLite and (when reachable) PostgreSQL. Every request carries a fresh
# Idempotency-Key, so every request is a new decision recorded in the ledger.
#
#   bash benches/awards.sh                       # 10 s per backend
#   DURATION=30s BACKENDS=sqlite bash benches/awards.sh
#   PG_URL=postgres://postgres@127.0.0.1:5432/postgres bash benches/awards.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
STUDENTS=${STUDENTS:-20000}
PORT=${PORT:-18090}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
BACKENDS=${BACKENDS:-sqlite postgres}

command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null 2>&1 || { echo "wrk is needed" >&2; exit 1; }
cargo build --release --quiet
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$STUDENTS" >"$work/students.json" <<'PY'
import json, sys
n = int(sys.argv[1])
print(json.dumps([{"student_id": f"AW-{i}", "graduation_date": "2024-05-30",
  "endorsements": [{"area": "manufacturing_engineering_technology_trades", "status": "earned"}],
  "postsecondary": {"institution_id": "ivcc", "status": "enrolled"}} for i in range(n)]))
PY

cat >"$work/awards.lua" <<LUA
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
function init(args)
  math.randomseed(os.time() + tid)
end
request = function()
  counter = counter + 1
  local student = (counter * 7 + tid * 7919) % $STUDENTS
  local body = '{"student_id":"AW-' .. student .. '","policy_id":"ima-mett-scholarship","as_of":"2024-06-01"}'
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer __KEY__",
                   ["Idempotency-Key"] = "bench-" .. tid .. "-" .. counter .. "-" .. math.random(1, 1000000000)}
  return wrk.format("POST", "/v1/awards", headers, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.2f %.2f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

run_backend() {
  local name=$1 url=$2
  KEY=$(./target/release/eligo keys create --role admin --database-url "$url" 2>/dev/null)
  sed -i "s/__KEY__/$KEY/" "$work/awards.lua"
  RUST_LOG=warn ELIGO_DATABASE_URL="$url" ELIGO_BIND="127.0.0.1:$PORT" ./target/release/eligo serve >"$work/$name.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$PORT/v1/students/import" -H 'content-type: application/json' -H "Authorization: Bearer $KEY" \
    --data-binary @"$work/students.json" -o /dev/null
  read -r rps p50 p99 bad errors < <(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/awards.lua" \
    "http://127.0.0.1:$PORT/v1/awards" | awk '/^RESULT/ {print $2, $3, $4, $5, $6}')
  verify=$(curl -s -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/ledger/verify")
  sed -i "s/$KEY/__KEY__/" "$work/awards.lua"
  printf '%-9s %8.0f awards/s   p50 %6.2f ms   p99 %6.2f ms   non-2xx %s   socket errors %s\n' \
    "$name" "$rps" "$p50" "$p99" "$bad" "$errors"
  echo "          ledger verify: $verify"
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
}

for backend in $BACKENDS; do
  case $backend in
    sqlite) run_backend sqlite "sqlite://$work/awards.db" ;;
    postgres)
      if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
        db="eligo_bench_$$"
        psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
        run_backend postgres "${PG_URL%/*}/$db"
        psql "$PG_URL" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
      else
        echo "postgres  skipped: no server at 127.0.0.1:5432"
      fi ;;
  esac
done
