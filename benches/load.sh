#!/usr/bin/env bash
# Load test: POST /v1/evaluations (an inline record, every seed policy) next to GET /healthz,
# in the same run, against a release build on loopback. Prints both throughputs, their ratio
# and p99 latencies.
#
#   bash benches/load.sh                 # 10 s per endpoint, 2 threads, 32 connections
#   DURATION=30s CONNECTIONS=64 bash benches/load.sh
#
# Needs wrk (Debian: apt-get install wrk; the script installs it when it can).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18080}

if ! command -v wrk >/dev/null; then
  apt-get install -y -qq wrk >/dev/null 2>&1 || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
fi

cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT

KEY=$(./target/release/eligo keys create --role admin --database-url "sqlite://$work/load.db" 2>/dev/null)
RUST_LOG=${RUST_LOG:-warn} ELIGO_DATABASE_URL="sqlite://$work/load.db" ELIGO_BIND="127.0.0.1:$PORT" \
  ./target/release/eligo serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done

cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.body = [[{"as_of": "2024-06-01", "student": {
  "student_id": "IL-000123", "school_id": "d204-metea-valley", "graduation_date": "2024-05-30",
  "endorsements": [{"area": "manufacturing_engineering_technology_trades", "status": "earned", "earned_on": "2024-05-30"}],
  "early_college_credits": [{"course": "MFG 101", "subject": "machining", "credit_hours": 3.0, "institution_id": "jjc"},
                            {"course": "WLD 101", "subject": "welding", "credit_hours": 3.0, "institution_id": "jjc"}],
  "work_based_learning": [{"kind": "internship", "hours": 120, "employer": "Acme Tool & Die"}],
  "job_offers": [{"employer": "Acme Tool & Die", "naics": "332710", "local": true, "offered_on": "2024-04-15"}],
  "postsecondary": {"institution_id": "ivcc", "status": "enrolled", "term": "2024FA"},
  "payee_preference": "student",
  "demographics": {"gender": "female", "race_ethnicity": ["hispanic_latino"]}}}]]
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
cat >"$work/get.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

check=$(curl -s -XPOST "http://127.0.0.1:$PORT/v1/evaluations" -H 'content-type: application/json' -H "Authorization: Bearer $KEY" \
  -d '{"as_of":"2024-06-01","student":{"student_id":"x"}}' | grep -o '"policy_id"' | wc -l)
echo "preview returns $check decisions per request"

run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$1" "$2" | awk '/^RESULT/ {print $2, $3, $4}'; }
wrk -t1 -c4 -d2s "http://127.0.0.1:$PORT/healthz" >/dev/null   # warm up
read -r health_rps health_p99 health_err < <(run "$work/get.lua" "http://127.0.0.1:$PORT/healthz")
read -r eval_rps eval_p99 eval_err < <(run "$work/post.lua" "http://127.0.0.1:$PORT/v1/evaluations")

printf 'GET  /healthz         %10.0f req/s   p99 %7.2f ms   errors %s\n' "$health_rps" "$health_p99" "$health_err"
printf 'POST /v1/evaluations  %10.0f req/s   p99 %7.2f ms   errors %s\n' "$eval_rps" "$eval_p99" "$eval_err"
awk -v e="$eval_rps" -v h="$health_rps" 'BEGIN { printf "previews / health: %.1f%% (target >= 35%%)\n", 100 * e / h }'
