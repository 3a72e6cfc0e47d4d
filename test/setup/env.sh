# Sourced by `npm test` (test/run-all.sh) and `npm run bench` (scripts/bench.sh): sets up what both
# need — the npm packages, the pinned Python venvs, code-server with chromium; installs cached
# outside the clone, keyed on their versions — and exports the JAX_SERVE_* variables that point at
# them. Expects `root` (the clone) and `step` (prints a heading) from its caller, after common.sh.
need_disk 2500 "$root"
need_disk 4000 "$JAX_SERVE_CACHE"

step "npm packages"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund || die "npm ci failed (see above)."
fi

step "Python venv (numpy, safetensors, torch CPU)"
JAX_SERVE_PYTHON=$(bash test/setup/python.sh) || exit 3
step "Python venv for HF-Flax (transformers 4.x Flax, jax 0.4)"
JAX_SERVE_HFFLAX_PYTHON=$(bash test/setup/python.sh hfflax) || exit 3
step "VS Code host (code-server, Node 24, chromium)"
JAX_SERVE_VSCODE_HOST=$(bash test/setup/vscode-host.sh) || exit 3
export JAX_SERVE_PYTHON JAX_SERVE_HFFLAX_PYTHON JAX_SERVE_VSCODE_HOST
