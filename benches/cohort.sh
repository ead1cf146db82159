#!/usr/bin/env bash
# Whole cohorts at scale, against a release build on loopback, on a fresh SQLite database:
#   - import 100,000 generated students (4 NDJSON requests of 25,000)         target <= 10 s
#   - a preview batch of every seed policy in effect, from POST to done         target <=  2 s
#   - an award batch of every incentive for every eligible student, then
#     GET /v1/ledger/verify                                                    target <= 20 s
#   - each report (awards by every grouping, progression, budget)              target <= 500 ms
# and, for where the time goes, the server's own log lines (load, evaluate, write).
#
#   bash benches/cohort.sh
#   STUDENTS=20000 RUNS=5 bash benches/cohort.sh
set -euo pipefail
cd "$(dirname "$0")/.."

STUDENTS=${STUDENTS:-100000}
RUNS=${RUNS:-3}
PORT=${PORT:-18092}
CHUNK=${CHUNK:-25000}
AS_OF=${AS_OF:-2026-12-07}

cargo build --release --quiet
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

url="sqlite://$work/cohort.db"
./target/release/eligo gen-students --count "$STUDENTS" --seed 1 >"$work/cohort.ndjson"
split -l "$CHUNK" "$work/cohort.ndjson" "$work/part-"
KEY=$(./target/release/eligo keys create --role admin --database-url "$url" 2>/dev/null)
RUST_LOG=warn,eligo::service::batches=info,eligo::service::reports=info ELIGO_DATABASE_URL="$url" \
  ELIGO_BIND="127.0.0.1:$PORT" ./target/release/eligo serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
api() { curl -sf -H "Authorization: Bearer $KEY" "$@"; }

started=$(now)
for part in "$work"/part-*; do
  api "http://127.0.0.1:$PORT/v1/students/import" -H 'content-type: application/x-ndjson' \
    --data-binary @"$part" -o /dev/null
done
printf 'import of %s students: %.2f s (target 10 s)\n' "$STUDENTS" "$(since "$started")"

# Starts a batch and waits for it; prints the seconds from the request to `done`.
batch() {
  local started id state
  started=$(now)
  id=$(api "http://127.0.0.1:$PORT/v1/batches" -H 'content-type: application/json' --data "$1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["batch_id"])')
  while :; do
    state=$(api "http://127.0.0.1:$PORT/v1/batches/$id" | python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["state"], b["done"], json.dumps(b["counts"]))')
    case "$state" in done*|failed*|cancelled*) break ;; esac
    sleep 0.02
  done
  printf '%.2f s (%s)' "$(since "$started")" "$state"
}

# Every seed policy, as a preview does: each incentive for every student, each requirement
# policy for the students on its pathway. Then the same naming all five policies, so that every
# student is also held to both requirement policies (for comparison; not the target).
for run in $(seq 1 "$RUNS"); do
  echo "preview batch of every policy, run $run: $(batch "{\"mode\": \"preview\", \"students\": \"all\", \"as_of\": \"$AS_OF\"}") (target 2 s)"
done
policies=$(api "http://127.0.0.1:$PORT/v1/policies" | python3 -c '
import json, sys
print(json.dumps(sorted({p["id"] for p in json.load(sys.stdin)["policies"]})))')
echo "preview batch naming $policies: $(batch "{\"mode\": \"preview\", \"policy_ids\": $policies, \"students\": \"all\", \"as_of\": \"$AS_OF\"}")"
started=$(now)
echo "award batch of every incentive: $(batch "{\"mode\": \"award\", \"students\": \"all\", \"as_of\": \"$AS_OF\"}")"
verify=$(api "http://127.0.0.1:$PORT/v1/ledger/verify")
printf 'award batch and ledger verification: %.2f s (target 20 s)   %s\n' "$(since "$started")" "$verify"

for report in "awards?group_by=policy" "awards?group_by=school" "awards?group_by=area" \
  "awards?group_by=gender" "awards?group_by=race_ethnicity" "awards?group_by=month" \
  "progression?as_of=$AS_OF" "progression?as_of=$AS_OF&group_by=race_ethnicity" "budget?as_of=$AS_OF"; do
  times=""
  for _ in $(seq 1 "$RUNS"); do
    times="$times $(api -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/v1/reports/$report")"
  done
  printf '%-52s%s s (target 0.5 s)\n' "GET /v1/reports/$report" "$times"
done
kill "$server"; wait "$server" 2>/dev/null || true; server=""
echo "inside the server:"
grep -oE '(batch done|cohort evaluated).*' "$work/server.log" | sed 's/\x1b\[[0-9;]*m//g; s/^/  /' | sort | uniq -c | sort -rn | head -20
