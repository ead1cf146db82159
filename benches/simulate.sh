#!/usr/bin/env bash
# What-if at scale: imports 100,000 generated students into a fresh SQLite database and times a
# what-if of IMA v2 against v1 on all of them through the API (POST /v1/policies/{id}/simulate),
# from request to answer, against a release build on loopback. Target: at most 2 s on a
# 2-core machine. Then, for where the time goes, the same comparison offline (`eligo simulate`
# on the NDJSON file: parsing and evaluating, no database, no HTTP).
#
#   bash benches/simulate.sh
#   STUDENTS=20000 RUNS=5 bash benches/simulate.sh
set -euo pipefail
cd "$(dirname "$0")/.."

STUDENTS=${STUDENTS:-100000}
RUNS=${RUNS:-3}
PORT=${PORT:-18091}
CHUNK=${CHUNK:-25000}

cargo build --release --quiet
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

url="sqlite://$work/simulate.db"
./target/release/eligo gen-students --count "$STUDENTS" --seed 1 >"$work/cohort.ndjson"
split -l "$CHUNK" "$work/cohort.ndjson" "$work/part-"
KEY=$(./target/release/eligo keys create --role admin --database-url "$url" 2>/dev/null)
RUST_LOG=warn,eligo::service::simulate=info ELIGO_DATABASE_URL="$url" ELIGO_BIND="127.0.0.1:$PORT" ./target/release/eligo serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
started=$(date +%s.%N)
for part in "$work"/part-*; do
  curl -sf "http://127.0.0.1:$PORT/v1/students/import" -H 'content-type: application/x-ndjson' \
    -H "Authorization: Bearer $KEY" --data-binary @"$part" -o /dev/null
done
printf 'imported %s students in %.1f s (setup, not the target)\n' "$STUDENTS" "$(echo "$(date +%s.%N) - $started" | bc)"

body='{"version": 2, "against": 1, "as_of": "2024-06-01"}'
for run in $(seq 1 "$RUNS"); do
  time=$(curl -s -o "$work/answer.json" -w '%{time_total}' "http://127.0.0.1:$PORT/v1/policies/ima-mett-scholarship/simulate" \
    -H 'content-type: application/json' -H "Authorization: Bearer $KEY" --data "$body")
  summary=$(python3 - "$work/answer.json" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
print("students %d, eligible %d -> %d, gained %d, lost %d"
      % (w["students"], w["before"]["eligible"], w["after"]["eligible"], w["gained"], w["lost"]))
PY
)
  printf 'what-if through the API, run %s: %.3f s   (%s)\n' "$run" "$time" "$summary"
done
kill "$server"; wait "$server" 2>/dev/null || true; server=""
echo "inside the server (reading the records from SQLite; parsing and evaluating on every core):"
grep -o 'what-if done.*' "$work/server.log" | sed 's/\x1b\[[0-9;]*m//g; s/^/  /'

started=$(date +%s.%N)
./target/release/eligo simulate --policy rules/ima-mett-scholarship.v2.rhai --against-version 1 \
  --students "$work/cohort.ndjson" --as-of 2024-06-01 >/dev/null
printf 'offline (eligo simulate: read file, parse, evaluate both on every core): %.3f s\n' \
  "$(echo "$(date +%s.%N) - $started" | bc)"
