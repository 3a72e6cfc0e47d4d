#!/usr/bin/env bash
# SGLang-JAX's tensor parallelism run here, on the CPU (outside .ci/run: about 5 minutes on two cores).
# The engine is the GPU kit's source tarball in a Python 3.12 venv (its source uses 3.12 syntax;
# python/requirements-sglang-jax-cpu.txt, made once in the cache by test/setup/python.sh); then
# scripts/gpu/sglang-jax-run.sh with COUNT=2 DEVICE=cpu: TP 2 over two XLA host devices, the same
# sharding, mesh and checks a two-GPU run goes through, without GPU memory. Leaves records.tgz and
# run.log in test-results/sglang-jax-cpu-tp/; scripts/gpu/import-records.sh makes the fixture folder.
#   scripts/try-sglang-jax-cpu-tp.sh [COUNT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kit=${GPU_KIT:-$(cd .. && pwd)/shared/gpu-kit}
tgz=$(ls "$kit"/sglang-jax-*.tar.gz 2>/dev/null | head -1 || true)
[ -n "$tgz" ] || { echo "try-sglang-jax-cpu-tp: no SGLang-JAX source tarball in $kit (set GPU_KIT to the kit folder)" >&2; exit 2; }
# The first of these that runs as a 3.12 (a pyenv shim may exist and refuse).
py312=
for c in ${JAX_SERVE_PY312:-} python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python; do
  if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then py312=$c; break; fi
done
[ -n "$py312" ] || { echo "try-sglang-jax-cpu-tp: needs a Python 3.12 (set JAX_SERVE_PY312)" >&2; exit 2; }
engine_py=$(JAX_SERVE_BASE_PYTHON=$py312 bash test/setup/python.sh sglang-jax-cpu)
py=$(bash test/setup/python.sh)
node esbuild.mjs > /dev/null
out=$root/test-results/sglang-jax-cpu-tp
rm -rf "$out" && mkdir -p "$out"
# The pool: SGLang-JAX on the CPU sizes it from the host's free memory (psutil) × the fraction, and
# its native attention reads the whole pool at every step: capped at 16,384 tokens, a step takes
# milliseconds instead of seconds. Requests still wait for XLA to compile each new batch shape.
OUT=$out COUNT=${1:-2} DEVICE=cpu FRACTION=0.1 WAIT=900 REQ_TIMEOUT=900 PY=$py ENGINE_PY=$engine_py ENGINE_TGZ=$tgz \
  SERVE_ARGS="--arg --max-total-tokens --arg 16384" \
  bash scripts/gpu/sglang-jax-run.sh
echo "records: $out/records.tgz (import: scripts/gpu/import-records.sh $out/records.tgz $out/run.log)"
