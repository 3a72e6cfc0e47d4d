#!/usr/bin/env bash
# The GPU run of SGLang-JAX, on the device machine (the `device` tool), from the repository root,
# after scripts/gpu/make-carry.sh filled .gpu-kit/ here and the call carried .gpu-kit and dist:
#
#   bash scripts/gpu/sglang-jax-run.sh        (writes $OUT/records.tgz and $OUT/run.log)
#   ONLY=offline bash scripts/gpu/sglang-jax-run.sh   (the offline script alone)
#   ONLY=fit bash scripts/gpu/sglang-jax-run.sh       (the KV pool against `jax-serve fit`, below)
#   COUNT=2 bash scripts/gpu/sglang-jax-run.sh        (tensor parallelism over 2 devices, below)
#
# Off the device (ENGINE_PY given, or no .gpu-kit/), it runs with the interpreters given: PY (torch, transformers, flax:
# the fixtures and the references), ENGINE_PY (SGLang-JAX's dependencies), ENGINE_TGZ (its source
# tarball) and Node on PATH. DEVICE=cpu runs the engine on the CPU; with COUNT=N, on N XLA host
# devices (--xla_force_host_platform_device_count), the same sharding code a GPU run takes.
#
# It makes three exports with our converter from JAX-layout checkpoints the fixture script writes:
#   export128             head_dim 128 (SGLang-JAX pads head_dim to a multiple of 128): must serve
#                         the three APIs equal to transformers' greedy, and pass check-served;
#   export16              head_dim 16, the canonical tiny attention shape: must fail, explained;
#   export128-broken-rope the same weights with a wrong RoPE permutation on q/k: must be caught.
# Each is started through `jax-serve serve --engine sglang-jax` (the Serve panel builds the same
# command line), generated from through /generate, completions and chat, checked, and stopped.
# Everything it saw is recorded under rec/ (tarred into $OUT): the engine's raw log, the CLI's
# stdout and stderr, raw streams and replies, /get_model_info, /v1/models, /get_server_info,
# /metrics, the failed start, and `ps` after each stop. scripts/gpu/import-records.sh turns the
# tarball into a versioned fixture folder in test/fixtures/.
set -u
ROOT=$PWD
KIT=$ROOT/.gpu-kit
OUT=${OUT:?run this through the device tool: \$OUT is where the records go}
COUNT=${COUNT:-1}
DEVICE=${DEVICE:-cuda}
W=/tmp/jax-serve-gpu
R=$W/rec
rm -rf "$W" && mkdir -p "$R"
exec > >(tee -a "$OUT/run.log") 2>&1
# What was recorded so far goes back even when a later step hangs past the call's limit.
save() { (cd "$W" && tar czf "$OUT/records.tgz.part" rec && mv "$OUT/records.tgz.part" "$OUT/records.tgz"); }
trap save EXIT
export PYTHONUNBUFFERED=1
# NVLink multicast stays off (the device README: it can take the host's shared GPUs out of service);
# the engine inherits these through jax-serve serve.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
step() { echo "== $(date -u +%T) $*"; }
smi() { if command -v nvidia-smi > /dev/null; then nvidia-smi "$@"; else echo "no nvidia-smi: the engine ran on $DEVICE"; fi; }
# gpu_csv FILE: memory per GPU as CSV (index, name, total, used), what the TP replay reads.
gpu_csv() { smi --query-gpu=index,name,memory.total,memory.used --format=csv > "$R/$1" 2>&1; }
# gpu_apps FILE: every process on a GPU with its memory, as CSV (only the header when none is left).
gpu_apps() { smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv > "$R/$1" 2>&1; }
# left_at_end: every engine process still running, into ps-at-end.txt ("none" expected).
left_at_end() { { echo "# every process left at the end"; ps -eo pid,pgid,stat,etime,cmd | grep -E 'sgl_jax|launch_server|python3 -m|tee-log' | grep -v grep || echo none; } | tee "$R/ps-at-end.txt"; }

step install
if [ -z "${ENGINE_PY:-}" ] && [ -d "$KIT/wheels" ]; then
  rm -rf /tmp/site
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$KIT"/wheels/*.whl || exit 1
  tgz=$(ls "$KIT"/sglang-jax-*.tar.gz)
  xz -dc "$KIT/node.xz" > /tmp/node && chmod +x /tmp/node
  NODE=/tmp/node PY=python3 ENGINE_PY=python3
  # The engine's own packages (transformers 4.57 and its web stack) only for the engine: the
  # reference and the fixtures use the machine's transformers.
  ENGINE_PATH=/tmp/site:$W/engine-src
else
  tgz=${ENGINE_TGZ:?no .gpu-kit/: give ENGINE_TGZ, ENGINE_PY and PY (see the top of this script)}
  : "${ENGINE_PY:?}" "${PY:?}"
  NODE=node ENGINE_PATH=$W/engine-src
  # serve's --command prefix runs `python3 -m sgl_jax.launch_server`: the engine's venv first on PATH.
  ENGINE_BIN=$(dirname "$ENGINE_PY")
fi
mkdir -p "$W/engine-src" && tar xzf "$tgz" -C "$W/engine-src" || exit 1
CLI="$NODE $ROOT/dist/cli.js"
if [ "$DEVICE" = cpu ]; then
  export JAX_PLATFORMS=cpu
  [ "$COUNT" -gt 1 ] && export XLA_FLAGS="--xla_force_host_platform_device_count=$COUNT${XLA_FLAGS:+ $XLA_FLAGS}"
fi
commit=$(basename "$tgz" .tar.gz | sed 's/^sglang-jax-//')
{
  echo "engine_commit=$commit"
  echo "date=$(date -u +%F)"
  echo "device=$DEVICE"
  echo "count=$COUNT"
  $NODE --version | sed 's/^/node=/'
  PYTHONPATH=$ENGINE_PATH $ENGINE_PY -c "import jax, flax, transformers; print(f'jax={jax.__version__}'); print(f'flax={flax.__version__}'); print(f'transformers_engine={transformers.__version__}'); print(f'devices={jax.devices()}')"
  $PY -c "import torch, transformers; print(f'torch={torch.__version__}'); print(f'transformers_reference={transformers.__version__}')"
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu=/'
} | tee "$R/versions.txt"
smi > "$R/nvidia-smi-before.txt" 2>&1

step models
$PY python/fixtures/shaped_llama.py write "$W/m128" --head-dim 128 --heads 4 --kv-heads 2 > "$R/m128-manifest.json" || exit 1
$PY python/fixtures/shaped_llama.py write "$W/m16" --head-dim 16 --heads 4 --kv-heads 2 > "$R/m16-manifest.json" || exit 1
conv() { $CLI convert "$W/$1/jax/nnx.msgpack" -o "$W/$2" --config-from "$W/$1/hf" --tokenizer-from "$W/$1/hf" "${@:3}" 2>&1 | tee -a "$R/convert.txt"; }
conv m128 export128 && conv m16 export16 && conv m128 export128-broken-rope --rules scripts/gpu/broken-rope.rules.json || exit 1
# CI rebuilds these exports from the same seed and checks it got the same bytes before replaying.
(cd "$W" && sha256sum export*/model.safetensors export*/config.json export*/tokenizer.json) | tee "$R/exports.sha256"

step "greedy references (transformers, f32, one process)"
$PY - "$W" > "$R/greedy.json" <<'PY' || exit 1
# transformers' greedy ids and text per export, prompt and API (chat through the chat template),
# what the three streams must equal. One process: loading torch once per call cost minutes.
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
out = {}
for m in ("export128", "export128-broken-rope"):
    d = f"{sys.argv[1]}/{m}"
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    for p in json.load(open("scripts/gpu/prompts.json")):
        for chat in (False, True):
            if chat:
                x = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
            else:
                x = tok(p, return_tensors="pt")
            with torch.no_grad():
                y = model.generate(**x, do_sample=False, max_new_tokens=16)
            ids = y[0, x["input_ids"].shape[1]:].tolist()
            out.setdefault(m, {})[("chat:" if chat else "") + p] = {"prompt_ids": x["input_ids"][0].tolist(), "ids": ids, "text": tok.decode(ids, skip_special_tokens=True)}
print(json.dumps(out, indent=1))
PY
save

PORT=30000
URL=http://127.0.0.1:$PORT
FLAGS=(--engine sglang-jax --device "$DEVICE" --python "$ENGINE_PY" --port $PORT --memory-fraction ${FRACTION:-0.2}
  --arg --attention-backend --arg native --arg --random-seed --arg 0 --arg --max-running-requests --arg 8)
# SERVE_ARGS: more `jax-serve serve` arguments for every launch (the CPU run caps the pool with them).
read -r -a more <<< "${SERVE_ARGS:-}"
FLAGS+=("${more[@]}")

# serve NAME DIR [extra jax-serve args]: starts it in the background, waits for ready or exit.
serve() {
  local name=$1 dir=$2
  shift 2
  step "serve $name"
  printf '%s\n' serve "$W/$dir" "${FLAGS[@]}" "$@" > "$R/$name.cli-args"
  PATH=${ENGINE_BIN:+$ENGINE_BIN:}$PATH PYTHONPATH=$ENGINE_PATH $CLI serve "$W/$dir" "${FLAGS[@]}" "$@" --command "bash $ROOT/scripts/gpu/tee-log.sh $R/$name.engine.log" \
    > "$R/$name.stdout" 2> "$R/$name.stderr" &
  SP=$!
  for _ in $(seq 1 "${WAIT:-240}"); do
    grep -q '^ready at' "$R/$name.stdout" && break
    kill -0 $SP 2>/dev/null || break
    sleep 1
  done
  cat "$R/$name.stdout"
  if kill -0 $SP 2>/dev/null && ! grep -q '^ready at' "$R/$name.stdout"; then
    echo "not ready in ${WAIT:-240} s: stopping it" | tee "$R/$name.timeout"
    kill -INT $SP
  fi
  if ! grep -q '^ready at' "$R/$name.stdout"; then
    wait $SP
    echo "exit=$?" | tee "$R/$name.exit"
    save
    grep -m1 '^jax-serve:' "$R/$name.stderr" | tee -a "$R/$name.exit"
    return 1
  fi
}
stop() {
  local name=$1
  step "stop $name"
  kill -INT $SP
  wait $SP
  echo "exit=$?" > "$R/$name.exit"
  sleep 2
  { echo "# ps after stopping $name (engine processes left: none expected)"; ps -eo pid,pgid,stat,etime,cmd | grep -E 'sgl_jax|launch_server|tee-log' | grep -v grep || echo "none"; } | tee "$R/$name.ps-after-stop.txt"
  smi --query-compute-apps=pid,used_memory --format=csv > "$R/$name.gpu-apps-after-stop.txt" 2>&1
  save
}
# replies NAME: every prompt of prompts.json (check-served's built-in prompts and "hello") through the
# three APIs, greedy and non-streamed with logprobs, with the bodies check-served sends
# (src/core/serve/checkServed.ts checkRequestBody), so CI can replay the check itself.
replies() {
  $PY - "$URL" "$MODEL" "${REQ_TIMEOUT:-60}" > "$R/replies-$1.json" <<'PY'
import json, sys, urllib.request
url, model, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
def post(path, body):
    r = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(r, timeout=timeout) as f:
        return json.loads(f.read())
out = {"generate": {}, "completions": {}, "chat": {}}
for p in json.load(open("scripts/gpu/prompts.json")):
    out["generate"][p] = post("/generate", {"text": p, "stream": False, "return_logprob": True, "sampling_params": {"max_new_tokens": 16, "temperature": 0}})
    common = {"model": model, "stream": False, "max_tokens": 16, "temperature": 0}
    out["completions"][p] = post("/v1/completions", dict(common, prompt=p, logprobs=1))
    out["chat"][p] = post("/v1/chat/completions", dict(common, messages=[{"role": "user", "content": p}], logprobs=True))
print(json.dumps(out, indent=1))
PY
}
get() { curl -s -m ${REQ_TIMEOUT:-30} -o "$R/$2" -w "%{http_code}\n" "$URL$1" | sed "s|^|$1 -> |"; }
post() { curl -sN -m ${REQ_TIMEOUT:-60} -o "$R/$2" -w "%{http_code}\n" "$URL$1" -H 'content-type: application/json' -d "$3" | sed "s|^|$1 -> |"; }

# answers NAME SOURCE [MODELS_FILE]: for the server now running, /v1/models, every prompt's replies
# (replies-NAME.json) and check-served against the export SOURCE (check-NAME.json).
answers() {
  local name=$1 source=$2 models=${3:-v1-models-$1.json}
  get /v1/models "$models"
  MODEL=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['data'][0]['id'])" "$R/$models")
  replies "$name"
  step "check-served on $name"
  $CLI check-served --url $URL --source "$source" --prompts scripts/gpu/prompts.json --max-tokens 16 --python "$PY" --json > "$R/check-$name.json" 2> "$R/check-$name.stderr"
  echo "exit=$?" | tee -a "$R/check-$name.stderr"; head -c 1500 "$R/check-$name.json"; echo
}

# COUNT=N (N > 1): tensor parallelism over N devices, through `jax-serve serve --tp N` (the Serve
# panel's TP field builds the same command line). Three exports of the canonical shape at head_dim 128:
#   export128  4 heads, 2 KV heads: divides by 2; must serve the three APIs equal to transformers and
#              pass check-served, with tp_size=N in its log and each device holding its shard;
#   exportkv3  6 heads, 3 KV heads: KV heads that do not divide by 2 (SGLang-JAX's source gives each
#              device ⌈3/2⌉ of them, which the weights do not have); whatever the engine does is recorded;
#   exporth3   3 heads: attention heads that do not divide; the engine must refuse, and preflight and
#              fit must have said so before launch.
# Recorded: nvidia-smi before, while serving and after (memory per GPU), the environment that bears on
# memory as NAME=value lines, preflight and fit before each launch, and every process left on a GPU.
if [ "$COUNT" -gt 1 ]; then
  step "TP $COUNT models"
  # A model whose fixture check fails on this machine is left out, said so, and the run goes on
  # (seen on the device's CPU: the 6-head model's NNX forward off transformers' by 1.03e-5).
  tpm=(export128)
  for spec in "kv3 6 3" "h3 3 3"; do
    read -r m heads kv <<< "$spec"
    if $PY python/fixtures/shaped_llama.py write "$W/m$m" --head-dim 128 --heads $heads --kv-heads $kv > "$R/m$m-manifest.json" && conv m$m export$m; then
      tpm+=(export$m)
      (cd "$W" && sha256sum export$m/* | grep -E '/(model\.safetensors|config\.json|tokenizer\.json)$') | tee -a "$R/exports.sha256"
    else
      echo "export$m left out: its fixture could not be made here" | tee -a "$R/tp$COUNT-left-out.txt"
    fi
  done
  for m in "${tpm[@]}"; do cp "$W/$m/config.json" "$R/tp$COUNT-$m.config.json"; done
  for v in XLA_PYTHON_CLIENT_MEM_FRACTION XLA_CLIENT_MEM_FRACTION XLA_PYTHON_CLIENT_PREALLOCATE XLA_PYTHON_CLIENT_ALLOCATOR XLA_FLAGS JAX_PLATFORMS CUDA_VISIBLE_DEVICES TPU_VISIBLE_CHIPS NCCL_NVLS_ENABLE TORCH_SYMM_MEM_DISABLE_MULTICAST NVSHMEM_DISABLE_NVLS; do
    if [ -n "${!v+x}" ]; then echo "$v=${!v}"; else echo "# $v unset"; fi
  done | tee "$R/tp$COUNT-env.txt"
  gpus=$COUNT
  if command -v nvidia-smi > /dev/null; then
    [ "$DEVICE" = cpu ] || gpus=$(nvidia-smi --list-gpus | wc -l)
    FIT_GPU=${FIT_GPU:-this=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1 | tr -d ' ')MiB}
  fi
  # With fewer GPUs than COUNT (the one-GPU machine), only what it can show: the predictions and the refusal below.
  [ "$gpus" -ge "$COUNT" ] || echo "TP $COUNT needs $COUNT GPUs; this machine has $gpus: recording the predictions and how TP $COUNT is refused on $gpus"
  step "predicted before launch: preflight and fit at TP $COUNT"
  for m in "${tpm[@]}"; do
    $CLI preflight "$W/$m" --engine sglang-jax --tp $COUNT --json > "$R/tp$COUNT-$m.preflight.json" 2>&1; echo "exit=$?" > "$R/tp$COUNT-$m.preflight.exit"
    $CLI fit "$W/$m" --gpu "${FIT_GPU:-h100}" --engine sglang-jax --count $COUNT --tp $COUNT --memory-fraction ${FRACTION:-0.2} --json > "$R/tp$COUNT-$m.fit.json" 2>&1
    echo "$m: preflight $(cat "$R/tp$COUNT-$m.preflight.exit"), fit: $($PY -c "import json,sys; r=json.load(open(sys.argv[1])); print('fits' if r['fits'] else 'does not fit: ' + r['problems'][0])" "$R/tp$COUNT-$m.fit.json" 2>&1)"
  done
  gpu_csv "tp$COUNT-gpus-before.csv"
  smi > "$R/nvidia-smi-before.txt" 2>&1
  # TP N with a device fewer than N: how the engine refuses a TP size the machine cannot give.
  few=$(( gpus < COUNT ? gpus : COUNT - 1 ))
  (
    if [ "$DEVICE" = cpu ]; then export XLA_FLAGS=--xla_force_host_platform_device_count=$few; else export CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((few - 1))); fi
    serve tp$COUNT-on$few export128 --tp $COUNT --arg --disable-precompile && stop tp$COUNT-on$few
  )
  # Memory per GPU (a GPU run only): a billion-parameter model, so its weights are a real share of the
  # pool, at TP min(GPUs, N), with XLA's preallocation off so nvidia-smi shows what the engine holds
  # (context, weights, KV pool) rather than XLA's 75 % reservation. XLA's limit stays 75 % (JAX's GPU
  # memory docs), so the pool the engine sizes is the same as with preallocation.
  if [ "$DEVICE" != cpu ]; then
    t=$(( gpus < COUNT ? gpus : COUNT ))
    $PY python/fixtures/sized_llama.py write "$W/fit128" --hidden 2048 --heads 16 --kv-heads 8 --head-dim 128 --layers 16 --ffn 8192 --tokenizer-from "$W/export128" > "$R/fit128-manifest.json" || exit 1
    $CLI fit "$W/fit128" --gpu "${FIT_GPU:-h100}" --engine sglang-jax --count $t --tp $t --memory-fraction ${FRACTION:-0.2} --json > "$R/mem-tp$t.fit.json" 2>&1
    gpu_csv "mem-tp$t-gpus-before.csv"
    # What a JAX process holds on each GPU before any array of its own (CUDA context, XLA's runtime).
    XLA_PYTHON_CLIENT_PREALLOCATE=false $PY -c "import jax, time; [jax.device_put(1, d).block_until_ready() for d in jax.local_devices()]; print('up', flush=True); time.sleep(60)" > "$W/context.out" 2>&1 &
    cp=$!
    for _ in $(seq 60); do grep -q '^up' "$W/context.out" && break; sleep 1; done
    gpu_csv "mem-context-gpus.csv"
    kill $cp 2>/dev/null; wait $cp 2>/dev/null
    echo "XLA_PYTHON_CLIENT_PREALLOCATE=false" > "$R/mem-tp$t-env.txt"
    if XLA_PYTHON_CLIENT_PREALLOCATE=false serve mem-tp$t fit128 --tp $t --arg --disable-precompile; then
      gpu_csv "mem-tp$t-gpus-serving.csv"
      gpu_apps "mem-tp$t-gpu-apps-serving.csv"
      cat "$R/mem-tp$t-gpus-serving.csv"
      stop mem-tp$t
    fi
  fi
  if [ "$gpus" -lt "$COUNT" ]; then
    gpu_apps "tp$COUNT-gpu-apps-at-end.csv"
    left_at_end
    step done
    save
    exit 0
  fi
  if serve tp$COUNT export128 --tp $COUNT --arg --disable-precompile; then
    gpu_csv "tp$COUNT-gpus-serving.csv"
    smi > "$R/tp$COUNT-nvidia-smi-serving.txt" 2>&1
    gpu_apps "tp$COUNT-gpu-apps-serving.csv"
    get /get_model_info get-model-info.json; get /get_server_info get-server-info.json
    answers good "$W/export128" v1-models.json
    post /generate t-generate.sse '{"text":"hello","sampling_params":{"max_new_tokens":16,"temperature":0},"stream":true,"return_logprob":true}'
    post /v1/completions t-completions.sse "{\"model\":\"$MODEL\",\"prompt\":\"hello\",\"max_tokens\":16,\"temperature\":0,\"stream\":true,\"logprobs\":1}"
    post /v1/chat/completions t-chat.sse "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"max_tokens\":16,\"temperature\":0,\"stream\":true}"
    stop tp$COUNT
    gpu_csv "tp$COUNT-gpus-after.csv"
  fi
  if [ -d "$W/exportkv3" ] && serve tp$COUNT-kv3 exportkv3 --tp $COUNT --arg --disable-precompile; then
    answers kv3 "$W/exportkv3"
    stop tp$COUNT-kv3
  fi
  [ -d "$W/exporth3" ] && serve tp$COUNT-heads3 exporth3 --tp $COUNT --arg --disable-precompile && stop tp$COUNT-heads3
  smi > "$R/nvidia-smi-after.txt" 2>&1
  gpu_apps "tp$COUNT-gpu-apps-at-end.csv"
  left_at_end
  step done
  save
  exit 0
fi

# ONLY=fit: SGLang-JAX's KV pool (cell size, tokens) at two shapes and two memory fractions, beside
# what `jax-serve fit` predicts on this device: a head_dim-128 model of about a billion parameters
# (its weights take a real share of the pool) and a head_dim-64 one (padded to 128 in the pool).
if [ "${ONLY:-all}" = fit ]; then
  step "fit models"
  # The tokenizer from our export: its tokenizer_config is the form transformers 4.x (the engine's) reads.
  $PY python/fixtures/sized_llama.py write "$W/fit128" --hidden 2048 --heads 16 --kv-heads 8 --head-dim 128 --layers 16 --ffn 8192 --tokenizer-from "$W/export128" > "$R/fit128-manifest.json" || exit 1
  $PY python/fixtures/sized_llama.py write "$W/fit64" --hidden 1024 --heads 16 --kv-heads 4 --head-dim 64 --layers 8 --ffn 4096 --tokenizer-from "$W/export128" > "$R/fit64-manifest.json" || exit 1
  mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1 | tr -d ' ')
  for m in fit128 fit64; do
    for f in 0.2 0.5; do
      name=$m-f${f#0.}
      $CLI fit "$W/$m" --gpu "this=${mib}MiB" --engine sglang-jax --memory-fraction $f --json > "$R/$name.fit.json" 2>&1
      if serve $name $m --memory-fraction $f --arg --disable-precompile; then stop $name; fi
      grep -h 'cell_size\|max_total_num_tokens\|Fused KV size' "$R/$name.engine.log" | head -4
    done
  done
  smi > "$R/nvidia-smi-after.txt" 2>&1
  step done
  save
  exit 0
fi

# ONLY=offline: the models and the offline script alone (a short call that re-records only it).
if [ "${ONLY:-all}" = all ]; then
if serve good export128 --arg --disable-precompile; then
  get /v1/models v1-models.json; get /get_model_info get-model-info.json; get /get_server_info get-server-info.json
  get /health health.txt; get /metrics metrics-without-flag.txt
  MODEL=$($PY -c "import json; print(json.load(open('$R/v1-models.json'))['data'][0]['id'])")
  step "jax-serve generate, without --model"
  $CLI generate --url $URL --sglang --max-tokens 16 --temperature 0 hello > "$R/gen-generate.txt" 2>&1; echo "exit=$?" >> "$R/gen-generate.txt"
  $CLI generate --url $URL --max-tokens 16 --temperature 0 hello > "$R/gen-completions.txt" 2>&1; echo "exit=$?" >> "$R/gen-completions.txt"
  $CLI generate --url $URL --chat --max-tokens 16 --temperature 0 hello > "$R/gen-chat.txt" 2>&1; echo "exit=$?" >> "$R/gen-chat.txt"
  cat "$R"/gen-*.txt
  step "raw streams and replies"
  post /generate t-generate.sse '{"text":"hello","sampling_params":{"max_new_tokens":16,"temperature":0},"stream":true,"return_logprob":true}'
  post /v1/completions t-completions.sse "{\"model\":\"$MODEL\",\"prompt\":\"hello\",\"max_tokens\":16,\"temperature\":0,\"stream\":true,\"logprobs\":1}"
  post /v1/chat/completions t-chat.sse "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"max_tokens\":16,\"temperature\":0,\"stream\":true}"
  post /generate n-generate.json '{"text":"hello","sampling_params":{"max_new_tokens":16,"temperature":0},"return_logprob":true}'
  post /v1/completions n-completions.json "{\"model\":\"$MODEL\",\"prompt\":\"hello\",\"max_tokens\":16,\"temperature\":0,\"logprobs\":1}"
  post /v1/chat/completions n-chat.json "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"max_tokens\":16,\"temperature\":0,\"logprobs\":true}"
  post /v1/completions e-completions-no-model.json '{"prompt":"hello","max_tokens":4,"temperature":0}'
  replies good
  step check-served
  $CLI check-served --url $URL --source "$W/export128" --prompts scripts/gpu/prompts.json --max-tokens 16 --python $PY --json > "$R/check-good.json" 2> "$R/check-good.stderr"
  echo "exit=$?" | tee -a "$R/check-good.stderr"; head -c 3000 "$R/check-good.json"; echo
  for api in generate completions chat; do
    $CLI check-served --url $URL --source "$W/export128" --prompts scripts/gpu/prompts.json --max-tokens 16 --python $PY --api $api > "$R/check-good-$api.txt" 2>&1
    echo "exit=$?" >> "$R/check-good-$api.txt"; cat "$R/check-good-$api.txt"
  done
  stop good
fi

serve headdim16 export16 --arg --disable-precompile && stop headdim16

if serve broken export128-broken-rope --arg --disable-precompile; then
  # Against the good export as its source: the broken RoPE must be caught.
  answers broken "$W/export128"
  $CLI check-served --url $URL --source "$W/export128" --prompts scripts/gpu/prompts.json --max-tokens 16 --python $PY > "$R/check-broken.txt" 2>&1; cat "$R/check-broken.txt"
  stop broken
fi
fi

step "offline script"
if $CLI script "$W/export128" --engine sglang-jax --device $DEVICE --memory-fraction 0.2 --arg --random-seed --arg 0 --max-tokens 16 --temperature 0 hello > "$R/offline.py" 2> "$R/offline.stderr"; then
  (cd "$W" && PYTHONPATH=$ENGINE_PATH timeout 150 $ENGINE_PY "$R/offline.py" > "$R/offline.stdout" 2> "$R/offline.engine.log"; echo "exit=$?" >> "$R/offline.stdout")
  cat "$R/offline.stdout"
else
  cat "$R/offline.stderr"
fi
# What the in-process engine left behind (its scheduler and detokenizer processes), then gone.
{ ps -eo pid,pgid,stat,etime,cmd | grep -E 'offline.py|multiprocessing.spawn|sgl_jax' | grep -v grep || echo none; } > "$R/offline.ps-after.txt"
pkill -KILL -f 'multiprocessing.spawn|offline.py' 2>/dev/null; sleep 1
save

if [ "${ONLY:-all}" = all ] && [ "${PRECOMPILE:-1}" = 1 ] && [ $SECONDS -lt 400 ]; then
  # The precompile phase and /metrics, with small padding lists so it takes seconds.
  if WAIT=120 serve precompile export128 --arg --enable-metrics --arg --precompile-token-paddings --arg 64 --arg 128 --arg --precompile-bs-paddings --arg 1 --arg 2 --arg --max-running-requests --arg 2; then
    post /generate n-generate-precompiled.json '{"text":"hello","sampling_params":{"max_new_tokens":16,"temperature":0},"return_logprob":true}'
    get /metrics metrics.prom
    stop precompile
  fi
fi

smi > "$R/nvidia-smi-after.txt" 2>&1
left_at_end
step done
save
ls -la "$OUT"
