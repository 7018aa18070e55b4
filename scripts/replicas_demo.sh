#!/usr/bin/env bash
# Replicas on PostgreSQL, tried the way a new user would (issue 14's acceptance), printing each step and what it measured:
#   1. a PostgreSQL server (a throwaway one from .ci/postgres.sh, unless TRAINWATCH_DB names one) and its database;
#   2. two API replicas, `bun run src/server.ts` on ports 8000 and 8001, one database, their own data folders;
#   3. the dashboard's stream (/api/v1/stream) and the run's metrics stream open on 8001 with curl, while the Python
#      example pushes its epochs to 8000: they arrive on 8001 live;
#   4. a local training started on 8000, which is SIGKILLed mid-training: 8001 marks it interrupted once the lease has
#      run out (the time from the kill is measured against TRAINWATCH_LEASE), and every epoch 8001 had streamed before
#      the kill is still stored.
# Exits non-zero when a step does not hold. Needs node_modules (npm ci), curl and python3 (the example runs from the
# checkout with its simulated model unless torch is there; a venv with `pip install ./clients/python` works too).
#   scripts/replicas_demo.sh            # PORT_A=8000 PORT_B=8001 LEASE=5 PYTHON=python3 TRAINWATCH_DB=postgres://… to change
set -euo pipefail
cd "$(dirname "$0")/.."
BUN=node_modules/.bin/bun
PY=${PYTHON:-python3}
A=${PORT_A:-8000}
B=${PORT_B:-8001}
LEASE=${LEASE:-5}
[ -x "$BUN" ] || { echo "replicas_demo: no $BUN (run npm ci)" >&2; exit 2; }
command -v curl >/dev/null || { echo "replicas_demo: needs curl" >&2; exit 2; }
command -v "$PY" >/dev/null || { echo "replicas_demo: needs $PY (set PYTHON)" >&2; exit 2; }

tmp=$(mktemp -d)
pgdir=""
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$pgdir" ] && .ci/postgres.sh stop "$pgdir"
  rm -rf "$tmp"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { "$PY" -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.2f}")' "$1" "$(now)"; }
# A field of a JSON reply: json_field '<python expression on d>' < reply
json_field() { "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
api() { curl -sf "http://127.0.0.1:$1/api/v1$2"; }
epoch_events() { grep -c '^event: epoch' "$1" || true; }

step "1. PostgreSQL"
if [[ "${TRAINWATCH_DB:-}" == postgres* ]]; then
  DB=$TRAINWATCH_DB
  echo "using TRAINWATCH_DB (its tables are created or migrated at start)"
else
  pgdir=$(mktemp -d)
  server=$(.ci/postgres.sh start "$pgdir" --owner-pid $$)
  "$BUN" -e 'const s = new Bun.SQL(process.argv.at(-1)); await s.unsafe("CREATE DATABASE trainwatch"); await s.close();' "$server"
  DB=${server%/postgres}/trainwatch
  echo "a throwaway server (.ci/postgres.sh start $pgdir), database created: $DB"
fi

step "2. two API replicas on ports $A and $B, one database (TRAINWATCH_LEASE=$LEASE s)"
start_replica() {
  local port=$1
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && fail "port $port is in use; set PORT_A/PORT_B"
  mkdir -p "$tmp/api-$port"
  env -u TRAINWATCH_TOKEN -u HOST PORT="$port" TRAINWATCH_DB="$DB" TRAINWATCH_REPLICA_ID="api-$port" \
    TRAINWATCH_LEASE="$LEASE" TRAINWATCH_MODELS_DIR="$tmp/api-$port/models" TRAINWATCH_LOGS_DIR="$tmp/api-$port/logs" \
    TRAINWATCH_DATA_DIR="$tmp/api-$port/datasets" "$BUN" run src/server.ts >"$tmp/api-$port.log" 2>&1 &
  started=$!
  pids+=($started)
  for _ in $(seq 1 300); do
    api "$port" /health >/dev/null 2>&1 && { grep 'listening' "$tmp/api-$port.log"; return; }
    sleep 0.1
  done
  cat "$tmp/api-$port.log" >&2
  fail "the replica on $port did not answer /api/v1/health within 30 s"
}
start_replica "$A"
PID_A=$started
start_replica "$B"

step "3. streams open on $B; the Python example pushes its epochs to $A"
curl -sN "http://127.0.0.1:$B/api/v1/stream" >"$tmp/global.sse" &
pids+=($!)
sleep 0.5
EPOCHS=100
PYTHONUNBUFFERED=1 TRAINWATCH_URL="http://127.0.0.1:$A" "$PY" examples/pytorch_style.py --epochs $EPOCHS --simulate \
  --name "replicas demo" >"$tmp/python.log" 2>&1 &
py=$!
pids+=($py)
run=""
for _ in $(seq 1 200); do
  run=$(grep -o 'op_[a-z]*_[0-9_]*_[0-9a-f]*' "$tmp/python.log" | head -1 || true)
  [ -n "$run" ] && break
  sleep 0.05
done
[ -n "$run" ] || { cat "$tmp/python.log" >&2; fail "the example did not register its run"; }
curl -sN "http://127.0.0.1:$B/api/v1/operations/$run/metrics/stream" >"$tmp/run.sse" &
pids+=($!)
echo "run $run registered on $A; its metrics stream opened on $B"
t0=$(now)
while kill -0 "$py" 2>/dev/null; do
  on_b=$(epoch_events "$tmp/run.sse")
  on_a=$(api "$A" "/operations/$run" | json_field 'd["data"]["progress"]["epochs_completed"]')
  echo "  t=$(since "$t0") s  $B's stream has sent $on_b epochs; $A has stored $on_a"
  sleep 1
done
wait "$py" || { cat "$tmp/python.log" >&2; fail "the example failed"; }
tail -1 "$tmp/python.log"
for _ in $(seq 1 100); do grep -q '^event: end' "$tmp/run.sse" && break; sleep 0.1; done
streamed=$(epoch_events "$tmp/run.sse")
listed=$(grep -c "\"operation_id\":\"$run\"" "$tmp/global.sse" || true)
echo "$B's metrics stream: $streamed epoch events, then $(grep -A1 '^event: end' "$tmp/run.sse" | tail -1)"
echo "$B's dashboard stream (/api/v1/stream): $listed operation events for the run"
[ "$streamed" -eq $EPOCHS ] || fail "$B streamed $streamed epochs of $EPOCHS"
[ "$listed" -gt 0 ] || fail "$B's dashboard stream did not hear the run"

step "4. a local training on $A, SIGKILLed mid-training; $B marks it interrupted after the lease"
spec='{"name": "replicas demo (local)", "dataset": {"kind": "synthetic", "generator": "spirals", "samples": 1000},
       "training": {"epochs": 10000}, "target": "local"}'
training=$(curl -sf -X POST "http://127.0.0.1:$A/api/v1/trainings" -H 'content-type: application/json' -d "$spec" \
  | json_field 'd["data"]["operation_id"]')
curl -sN "http://127.0.0.1:$B/api/v1/operations/$training/metrics/stream" >"$tmp/training.sse" &
pids+=($!)
echo "training $training started on $A (10,000 epochs); its stream open on $B"
for _ in $(seq 1 600); do [ "$(epoch_events "$tmp/training.sse")" -ge 5 ] && break; sleep 0.1; done
t1=$(now)
n1=$(epoch_events "$tmp/training.sse")
sleep 5
rate=$("$PY" -c 'import sys; print(f"{(int(sys.argv[1]) - int(sys.argv[2])) / 5:.0f}")' "$(epoch_events "$tmp/training.sse")" "$n1")
echo "it trains at about $rate epochs/s here: the whole run would take about $("$PY" -c "print(round(10000 / max(1, $rate)))") s"
seen=$(epoch_events "$tmp/training.sse")
kill -9 "$PID_A"
tk=$(now)
wait "$PID_A" 2>/dev/null || true
echo "SIGKILL to $A (pid $PID_A) after $(since "$t1") s of training; $B's stream had acknowledged $seen epochs"
status_now=$(api "$B" "/operations/$training" | json_field 'd["data"]["status"]')
echo "just after the kill, $B reads it as: $status_now"
status=""
for _ in $(seq 1 $((LEASE * 30 + 200))); do
  status=$(api "$B" "/operations/$training" | json_field 'd["data"]["status"]')
  [ "$status" = "failed" ] && break
  sleep 0.1
done
elapsed=$(since "$tk")
[ "$status" = "failed" ] || fail "$B did not mark the training interrupted within $((LEASE * 3 + 20)) s"
api "$B" "/operations/$training" | json_field '"error_message: " + d["data"]["error_message"]'
echo "kill → interrupted: $elapsed s; the lease is $LEASE s (renewed every $("$PY" -c "print(round($LEASE / 3, 2))") s, so expected between $("$PY" -c "print(round($LEASE * 2 / 3, 2))") and $("$PY" -c "print(round($LEASE * 4 / 3, 2))") s after the kill: the lease runs out 2/3 to 1 lease after it, and the replica holding the lock sweeps every third of one)"
for _ in $(seq 1 50); do grep -q '^event: end' "$tmp/training.sse" && break; sleep 0.1; done
api "$B" "/operations/$training/metrics" >"$tmp/stored.json"
# Every epoch the stream sent before the kill must be among the stored ones, with the same values.
"$PY" - "$tmp/training.sse" "$tmp/stored.json" "$seen" <<'PYEOF' || fail "an acknowledged epoch is missing"
import json, sys
events, block = [], {}
for line in open(sys.argv[1]).read().split("\n"):
    if not line:
        if block.get("event") == "epoch":
            events.append(json.loads(block["data"]))
        block = {}
    elif line.startswith("event: "):
        block["event"] = line[7:]
    elif line.startswith("data: "):
        block["data"] = line[6:]
acked = events[: int(sys.argv[3])]
stored = {e["epoch"]: e for e in json.load(open(sys.argv[2]))["data"]["metrics"]["epochs"]}
missing = [e["epoch"] for e in acked if stored.get(e["epoch"]) != e]
print(f"stored: {len(stored)} epochs; the {len(acked)} acknowledged before the kill (epochs {acked[0]['epoch']}..{acked[-1]['epoch']}) "
      + ("are all stored, values unchanged" if not missing else f"MISSING {missing[:10]}"))
print(f"{sys.argv[1].split('/')[-1]}: the stream ended with {'end' if any(l == 'event: end' for l in open(sys.argv[1]).read().split(chr(10))) else 'no end event'}")
sys.exit(1 if missing else 0)
PYEOF

step "summary"
echo "live epochs $A → $B: $streamed of $EPOCHS through the run's stream; kill → interrupted on $B: $elapsed s (lease $LEASE s); acknowledged epochs kept: $seen of $seen"
