#!/usr/bin/env bash
# `npm run bench [-- --smoke] [--only NAME]`: sets up what the peers need the way `npm test` does
# (the Python venv, code-server; installs cached outside the clone), builds, and runs every
# benchmark beside its peer. Setup goes to stderr, the benchmark lines to stdout.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. test/setup/common.sh
step() { echo "=== $*" >&2; }
. test/setup/env.sh >&2
node esbuild.mjs >&2 || die "the build failed (see above)."
exec node out/bench.js "$@"
