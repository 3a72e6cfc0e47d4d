#!/usr/bin/env bash
# Here, after a device call of scripts/gpu/sglang-jax-run.sh: turns its records.tgz into a versioned
# fixture folder, test/fixtures/sglang-jax-<engine commit>-jax<version>-<date>[-tp<N>[-cpu|-on<G>gpu]]/,
# that CI replays.
#   import-records.sh RECORDS.tgz [RUN.log]      (ADD=1: add to the folder, as after ONLY=offline)
# The engine's raw logs keep their bytes (carriage returns included); the two the replay tests
# read get the names every recording folder uses.
set -euo pipefail
tgz=${1:?usage: import-records.sh RECORDS.tgz [RUN.log]}
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar xzf "$tgz" -C "$tmp"
rec=$tmp/rec
val() { sed -n "s/^$1=//p" "$rec/versions.txt" | head -1; }
commit=$(val engine_commit) jax=$(val jax) day=$(val date)
[ -n "$commit" ] && [ -n "$jax" ] && [ -n "$day" ] || { echo "import-records: $tgz has no versions.txt with engine_commit, jax and date" >&2; exit 2; }
# A run over several devices (COUNT) is named for it, and a CPU run (host devices) says so.
# With fewer GPUs than the count, the run could only record the predictions and the refusal: -on<N>gpu.
count=$(val count) device=$(val device) gpus=$(grep -c '^gpu=' "$rec/versions.txt" || true)
suffix=
[ "${count:-1}" -gt 1 ] && suffix=-tp$count
[ "$device" = cpu ] && suffix=$suffix-cpu
[ "$device" != cpu ] && [ "${count:-1}" -gt 1 ] && [ "$gpus" -lt "$count" ] && suffix=$suffix-on${gpus}gpu
dest=test/fixtures/sglang-jax-$commit-jax$jax-$day$suffix
if [ "${ADD:-0}" = 1 ]; then mkdir -p "$dest"; else rm -rf "$dest" && mkdir -p "$dest"; fi
cp -p "$rec"/* "$dest"/
[ -f "$dest/good.engine.log" ] && mv "$dest/good.engine.log" "$dest/sglang-jax-startup-ready.log"
[ -f "$dest/headdim16.engine.log" ] && mv "$dest/headdim16.engine.log" "$dest/sglang-jax-headdim16-fail.log"
log=run.log
[ "${ADD:-0}" = 1 ] && log=run-added.log
[ -n "${2:-}" ] && cp "$2" "$dest/$log"
echo "$dest: $(ls "$dest" | wc -l) files, $(du -sh "$dest" | cut -f1)"
