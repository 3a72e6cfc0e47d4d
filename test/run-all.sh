#!/usr/bin/env bash
# The one test command (`npm test`): sets up what the suites need (npm packages, the pinned Python
# venv, code-server + chromium; installs cached outside the clone, keyed on their versions), runs
# every suite, and ends with one line "N passed, N failed" summing them. Exit code: 0 only when
# every suite ran and none failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. test/setup/common.sh
logs=${JAX_SERVE_TEST_LOGS:-$root/test-results/logs}
rm -rf "$logs"; mkdir -p "$logs"
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

. test/setup/env.sh
export JAX_SERVE_REQUIRE_PYTHON=1
export JAX_SERVE_FUZZ_RUNS=${JAX_SERVE_FUZZ_RUNS:-300}

passed=0; failed=0; skipped=0; broken=0; failures=""

# run_suite NAME COMMAND... : runs a mocha-reported suite, adds its counts; a suite that exits
# non-zero without reporting a failure counts as one failure, so a crash is never green.
run_suite() {
  local name=$1; shift
  step "suite: $name"
  "$@" 2>&1 | tee "$logs/$name.log"
  local rc=${PIPESTATUS[0]}
  local clean; clean=$(sed 's/\x1b\[[0-9;]*m//g' "$logs/$name.log")
  local p f s
  p=$(grep -Eo '^ +[0-9]+ passing' <<<"$clean" | tail -1 | grep -Eo '[0-9]+' || true)
  f=$(grep -Eo '^ +[0-9]+ failing' <<<"$clean" | tail -1 | grep -Eo '[0-9]+' || true)
  s=$(grep -Eo '^ +[0-9]+ pending' <<<"$clean" | tail -1 | grep -Eo '[0-9]+' || true)
  p=${p:-0}; f=${f:-0}; s=${s:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "[$name] exited $rc without reporting a failing test: counted as 1 failure"; f=1
  fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
    echo "[$name] ran no test: counted as 1 failure"; f=1
  fi
  echo "[$name] $p passed, $f failed, $s skipped (exit $rc)"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  # Mocha lists failures after "N failing"; keep their titles and first error lines so the end of a
  # long run (all a CI page may show) says what failed, not only how many.
  if [ "$f" -gt 0 ]; then
    failures+="[$name]"$'\n'"$(awk '/^ +[0-9]+ failing/{on=1; next} on' <<<"$clean" | grep -v '^ *at ' | grep -v '^ *$' | head -40)"$'\n'
  fi
}

step "static checks: typecheck, lint, build"
if npm run --silent typecheck && npm run --silent lint && node esbuild.mjs --tests; then
  passed=$((passed + 1)); echo "[static] passed"
else
  failed=$((failed + 1)); broken=1; echo "[static] FAILED"
fi

if [ "$broken" -eq 0 ]; then
  run_suite unit npx mocha --config test/.mocharc.json --color=false
  run_suite extension-host node out/test/integration/runExtensionTests.js
  run_suite ui npx mocha --color=false --timeout 240000 'out/test/integration/ui/*.ui.test.js'
  # Benchmarks at smoke size: their ratio lines go to the log; a crash counts as a failure.
  step "benchmarks (smoke sizes; npm run bench for full sizes)"
  if node out/bench.js --smoke 2>&1 | tee "$logs/bench.log"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
    passed=$((passed + 1)); echo "[bench] ran"
  else
    failed=$((failed + 1)); echo "[bench] FAILED"
  fi
fi

echo
echo "suites took $(( $(date +%s) - start ))s; logs in $logs; screenshots in test-results/screenshots"
if [ -n "$failures" ]; then echo; echo "failures:"; printf '%s' "$failures"; fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
