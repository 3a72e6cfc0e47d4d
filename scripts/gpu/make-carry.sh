#!/usr/bin/env bash
# Here, before a device call: builds dist/ and fills .gpu-kit/ (an ignored folder) with what the
# GPU machine lacks: wheels for the engine, the SGLang-JAX source tarball, and Node (node.xz), from
# ../shared/gpu-kit/make-kit.sh. The call then carries [".gpu-kit", "dist"] and runs
# `bash scripts/gpu/sglang-jax-run.sh`. Everything must stay under the 64 MiB a call may carry.
set -euo pipefail
cd "$(dirname "$0")/../.."
kit_src=${GPU_KIT:-$(cd .. && pwd)/shared/gpu-kit}
[ -x "$kit_src/make-kit.sh" ] || { echo "make-carry: no $kit_src/make-kit.sh (set GPU_KIT to the kit folder)" >&2; exit 2; }
grep -qx '/.gpu-kit/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info && echo '/.gpu-kit/' >> .git/info/exclude; }
node esbuild.mjs > /dev/null
bash "$kit_src/make-kit.sh" .gpu-kit > /dev/null
# The tarball travels instead of its 8 MB unpacked tree; the run unpacks it.
rm -rf .gpu-kit/src
cp "$kit_src"/sglang-jax-*.tar.gz .gpu-kit/
total=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
kit=$(du -sb .gpu-kit dist | awk '{s+=$1} END {print s}')
echo "carry: .gpu-kit + dist $((kit >> 20)) MiB, working tree $((total >> 20)) MiB (limit 64 MiB)"
