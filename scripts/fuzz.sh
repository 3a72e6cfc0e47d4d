#!/usr/bin/env bash
# `npm run fuzz`: the hostile-input suites and the format fuzzers at a long size (CI runs them at a
# small one). JAX_SERVE_FUZZ_SCALE multiplies the hostile suites' run counts (default 20 here);
# JAX_SERVE_FUZZ_SEED picks another seed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. test/setup/common.sh
JAX_SERVE_PYTHON=$(bash test/setup/python.sh) || exit 3
export JAX_SERVE_PYTHON JAX_SERVE_REQUIRE_PYTHON=1
export JAX_SERVE_FUZZ_SCALE=${JAX_SERVE_FUZZ_SCALE:-20} JAX_SERVE_FUZZ_RUNS=${JAX_SERVE_FUZZ_RUNS:-5000}
node esbuild.mjs --tests
npx mocha --timeout 0 'out/test/unit/hostile*.test.js' out/test/unit/safetensorsFuzz.test.js
