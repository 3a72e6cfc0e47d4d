#!/usr/bin/env bash
# Builds the production bundles and packs jax-serve-<version>.vsix. vsce wants Node >= 22, so it runs
# under the Node 24 the test host installs (test/setup/vscode-host.sh), or the system node if newer.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run typecheck
rm -rf dist   # no stale dev files (source maps) in the package
node esbuild.mjs --production
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 22 ]; then
  host=$(bash test/setup/vscode-host.sh)
  export PATH="$host/node24/package/bin:$PATH"
fi
out=${1:-jax-serve-$(node -p 'require("./package.json").version').vsix}
# The README's images and links are relative and shipped in the package: with no repository to
# rewrite them against, vsce would refuse them, so they stay as written.
npx vsce package --no-dependencies --allow-missing-repository --no-rewrite-relative-links --out "$out"
echo "$out"
