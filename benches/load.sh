#!/usr/bin/env bash
# Load test: POST /v1/evaluations (an inline record, every seed policy) and the signed-in
# student page (GET /students/{id}: a session, one read, one evaluation, a rendered page) next
# to GET /healthz, in the same run, against a release build on loopback. Prints the
# throughputs, their ratios to /healthz and p99 latencies.
#
# The two endpoints are measured in alternating rounds (health, preview, health, preview, ...)
# and the medians reported, with each round's figures: on a small shared VM one run of either
# moves by 10-20 %, and alternating pairs the two against the same background.
#
#   bash benches/load.sh                 # 3 rounds of 5 s per endpoint, 2 threads, 32 connections
#   ROUNDS=5 DURATION=10s CONNECTIONS=64 bash benches/load.sh
#
# Needs wrk (Debian: apt-get install wrk; the script installs it when it can).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
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

# A stored student and a signed-in session (as a browser gets it) for the student page.
RECORD=$(awk '/^wrk.body = \[\[/,/\]\]$/' "$work/post.lua" | sed -e 's/^wrk.body = \[\[//' -e 's/\]\]$//' \
  | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["student"]))')
curl -sf -XPUT "http://127.0.0.1:$PORT/v1/students/IL-000123" -H "Authorization: Bearer $KEY" \
  -H 'content-type: application/json' -d "$RECORD" >/dev/null
jar="$work/jar"
csrf=$(curl -s -c "$jar" "http://127.0.0.1:$PORT/" | grep -o 'name="csrf" value="[^"]*"' | cut -d'"' -f4)
curl -s -b "$jar" -c "$jar" -o /dev/null -X POST "http://127.0.0.1:$PORT/sign-in" \
  --data-urlencode "key=$KEY" --data-urlencode "csrf=$csrf"
SESSION=$(awk '$6 == "eligo_session" { print $7 }' "$jar")
[ -n "$SESSION" ] || { echo "could not sign in" >&2; exit 1; }
cat >"$work/page.lua" <<LUA
wrk.headers["Cookie"] = "eligo_session=$SESSION"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(99) / 1000, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
PAGE="http://127.0.0.1:$PORT/students/IL-000123?as_of=2024-06-01"
curl -sf -b "eligo_session=$SESSION" "$PAGE" | grep -q 'Student IL-000123' || { echo "the student page did not render" >&2; exit 1; }

check=$(curl -s -XPOST "http://127.0.0.1:$PORT/v1/evaluations" -H 'content-type: application/json' -H "Authorization: Bearer $KEY" \
  -d '{"as_of":"2024-06-01","student":{"student_id":"x"}}' | grep -o '"policy_id"' | wc -l)
echo "preview returns $check decisions per request"

run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$1" "$2" | awk '/^RESULT/ {print $2, $3, $4}'; }
wrk -t1 -c4 -d2s "http://127.0.0.1:$PORT/healthz" >/dev/null   # warm up
: >"$work/rounds"
for round in $(seq 1 "$ROUNDS"); do
  read -r health_rps health_p99 health_err < <(run "$work/get.lua" "http://127.0.0.1:$PORT/healthz")
  read -r eval_rps eval_p99 eval_err < <(run "$work/post.lua" "http://127.0.0.1:$PORT/v1/evaluations")
  read -r page_rps page_p99 page_err < <(run "$work/page.lua" "$PAGE")
  echo "$health_rps $health_p99 $health_err $eval_rps $eval_p99 $eval_err $page_rps $page_p99 $page_err" >>"$work/rounds"
  awk -v r="$round" -v h="$health_rps" -v e="$eval_rps" -v p="$page_rps" \
    'BEGIN { printf "round %d: health %.0f req/s, previews %.0f req/s (%.1f%%), student page %.0f req/s (%.1f%%)\n", r, h, e, 100 * e / h, p, 100 * p / h }'
done

# Medians over the rounds (p99: the median of the rounds' p99s); errors: the sum.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$1" '{ print $c }' "$work/rounds" | median; }
sum() { awk -v c="$1" '{ s += $c } END { print s }' "$work/rounds"; }
ratio=$(awk '{ print 100 * $4 / $1 }' "$work/rounds" | median)
page_ratio=$(awk '{ print 100 * $7 / $1 }' "$work/rounds" | median)

printf 'GET  /healthz         %10.0f req/s   p99 %7.2f ms   errors %s\n' "$(col 1)" "$(col 2)" "$(sum 3)"
printf 'POST /v1/evaluations  %10.0f req/s   p99 %7.2f ms   errors %s\n' "$(col 4)" "$(col 5)" "$(sum 6)"
printf 'GET  /students/{id}     %10.0f req/s   p99 %7.2f ms   errors %s\n' "$(col 7)" "$(col 8)" "$(sum 9)"
printf 'previews / health: %.1f%% (median of %d rounds; target >= 35%%)\n' "$ratio" "$ROUNDS"
printf 'student page / health: %.1f%% (median of %d rounds; target >= 30%%)\n' "$page_ratio" "$ROUNDS"
