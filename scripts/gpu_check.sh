#!/usr/bin/env bash
# Device check of script trainings on an NVIDIA GPU: starts a GPU host and an API on free loopback ports, runs the
# example recipe tiny-torch-gpu with device=cuda through the host, and prints the GPU's name (torch's and nvidia-smi's),
# the epochs/s the script measured and the API saw, and the operation's metadata.gpu. Needs node_modules (npm ci), an
# NVIDIA driver and a Python with CUDA torch (PYTHON, default python3); installs ./clients/python into it when
# `import trainwatch` fails. Exits non-zero when anything is missing or the run does not complete.
#   scripts/gpu_check.sh                 # PYTHON=/path/to/venv/bin/python EPOCHS=300 SAMPLES=20000 to change
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
EPOCHS=${EPOCHS:-200}
SAMPLES=${SAMPLES:-20000}
BUN=node_modules/.bin/bun
[ -x "$BUN" ] || { echo "gpu_check: no $BUN (run npm ci)" >&2; exit 2; }
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader || { echo "gpu_check: nvidia-smi failed: no NVIDIA GPU or driver" >&2; exit 2; }
"$PY" -c 'import torch, sys; ok = torch.cuda.is_available(); print("torch", torch.__version__, "cuda", torch.version.cuda, "available", ok, torch.cuda.get_device_name(0) if ok else ""); sys.exit(0 if ok else 3)' \
  || { echo "gpu_check: $PY has no CUDA torch" >&2; exit 3; }
"$PY" -c 'import trainwatch' 2>/dev/null || "$PY" -m pip install -q --no-deps --no-build-isolation ./clients/python

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HOST_PORT=$(free_port)
API_PORT=$(free_port)
# The example's recipes with this Python: the GPU one asks the host for one GPU (CUDA_VISIBLE_DEVICES per run).
"$PY" - "$ROOT/examples/recipes/trainwatch.recipes.json" "$tmp/recipes.json" "$PY" <<'PYEOF'
import json, os, sys
src, dst, py = sys.argv[1:]
f = json.load(open(src))
for r in f["recipes"]:
    r["command"] = [py, os.path.join(os.path.dirname(src), "tiny_torch.py")]
    r["cwd"] = os.path.dirname(src)
json.dump(f, open(dst, "w"), indent=2)
PYEOF

echo '{"recipes": []}' >"$tmp/none.json"
TRAINWATCH_RECIPES=$tmp/recipes.json TRAINWATCH_HOST_PORT=$HOST_PORT TRAINWATCH_HOST_DB=$tmp/host.db \
  TRAINWATCH_LOGS_DIR=$tmp/host-logs TRAINWATCH_MODELS_DIR=$tmp/models "$BUN" run src/host >"$tmp/host.log" 2>&1 &
pids+=($!)
PORT=$API_PORT TRAINWATCH_DB=$tmp/api.db TRAINING_HOST_URL=http://127.0.0.1:$HOST_PORT TRAINWATCH_RECIPES=$tmp/none.json \
  "$BUN" run src/server.ts >"$tmp/api.log" 2>&1 &
pids+=($!)
API=http://127.0.0.1:$API_PORT/api/v1
for _ in $(seq 1 200); do
  curl -sf "$API/health" >/dev/null 2>&1 && curl -sf "http://127.0.0.1:$HOST_PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$API/health" >/dev/null || { echo "gpu_check: the API did not start:"; cat "$tmp/api.log"; exit 4; }
echo "== host: $(grep -h 'recipes:' "$tmp/host.log" || true)"

started=$(date +%s.%N)
reply=$(curl -s -X POST "$API/trainings" -H 'content-type: application/json' \
  -d "{\"recipe\": \"tiny-torch-gpu\", \"target\": \"host\", \"params\": {\"device\": \"cuda\", \"epochs\": $EPOCHS, \"samples\": $SAMPLES}}")
id=$(echo "$reply" | "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(d["data"]["operation_id"]) if d.get("success") else sys.exit("refused: " + json.dumps(d))')
echo "== started $id"
status=running
for _ in $(seq 1 3000); do
  status=$(curl -s "$API/operations/$id" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["data"]["status"])')
  case $status in completed|failed|cancelled) break ;; esac
  sleep 0.2
done
ended=$(date +%s.%N)
curl -s "$API/operations/$id" | "$PY" -c '
import json, sys
op = json.load(sys.stdin)["data"]
m = op["metadata"]
res = op.get("result") or {}
print("== status:", op["status"], op.get("error_message") or "")
print("== epochs stored:", op["progress"]["epochs_completed"], "of", op["progress"]["total_epochs"])
print("== metadata.gpu:", m.get("gpu"), "| gpu_visible:", m.get("gpu_visible"), "| host:", m.get("host"), "| backend:", m.get("backend"))
print("== epochs/s (the script measured):", round(res["epochs_per_s"], 1) if "epochs_per_s" in res else None, "| device:", res.get("device"), "| gpu:", res.get("gpu"))
'
"$PY" -c "import sys; print('== wall time from POST to finished: %.1f s' % (float(sys.argv[2]) - float(sys.argv[1])))" "$started" "$ended"
echo "== last log lines:"
curl -s "$API/operations/$id/logs?tail=6" | "$PY" -c 'import json, sys; print("\n".join(json.load(sys.stdin)["data"]["lines"]))'
[ "$status" = completed ]
