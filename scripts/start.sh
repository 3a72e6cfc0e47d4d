#!/usr/bin/env bash
# `npm start`: builds the extension and opens it in a real VS Code (code-server) on 127.0.0.1, on a
# sample workspace of checkpoints written by the real libraries. Prints the URL; Ctrl+C stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. test/setup/common.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
host=$(bash test/setup/vscode-host.sh)
export JAX_SERVE_PYTHON; JAX_SERVE_PYTHON=$(bash test/setup/python.sh)
node esbuild.mjs --tests
ws=${JAX_SERVE_SAMPLE_WORKSPACE:-$JAX_SERVE_CACHE/sample-workspace}
node out/test/integration/sampleWorkspace.js "$ws"
port=${PORT:-8080}
data="$JAX_SERVE_CACHE/start-user-data"
mkdir -p "$data/User"
[ -f "$data/User/settings.json" ] || echo '{ "workbench.startupEditor": "none", "workbench.secondarySideBar.defaultVisibility": "hidden" }' > "$data/User/settings.json"
url=$(node -e '
  const [port, ws, ext] = process.argv.slice(1);
  const payload = JSON.stringify([["extensionDevelopmentPath", `vscode-remote://127.0.0.1:${port}${ext}`]]);
  console.log(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}&payload=${encodeURIComponent(payload)}`);
' "$port" "$ws" "$root")
echo
echo "JAX Serve is running in VS Code at:"
echo "  $url"
echo "Open a *.safetensors or model.safetensors.index.json file in the sample workspace. Ctrl+C stops the server."
echo
: > "$JAX_SERVE_CACHE/start-config.yaml"
# enable-smoke-test-driver lets the built workbench honour the extensionDevelopmentPath in the URL.
exec env PATH="$host/node24/package/bin:$PATH" "$host/cs/bin/code-server" --config "$JAX_SERVE_CACHE/start-config.yaml" \
  --bind-addr "127.0.0.1:$port" --auth none --user-data-dir "$data" --extensions-dir "$JAX_SERVE_CACHE/start-extensions" \
  --disable-telemetry --disable-update-check --disable-getting-started-override \
  --vscode-option enable-smoke-test-driver "$ws"
