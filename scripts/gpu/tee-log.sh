#!/usr/bin/env bash
# A launch prefix for `jax-serve serve --command`: runs the engine unchanged, its raw output (the
# carriage-return progress bars included, which the CLI prints as lines) also appended to FILE, and
# its argv written beside it (FILE without .engine.log, plus .argv).
#   tee-log.sh FILE ENGINE ARGS...
out=$1
shift
# The engine's argv as it got it, one word a line (the replay tests compare the command line with it).
printf '%s\n' "$@" > "${out%.engine.log}.argv"
# tee ignores the SIGINT/SIGTERM a stop sends the whole group, so the engine's shutdown is kept too;
# it ends when the engine's output does.
exec "$@" > >(trap '' INT TERM; exec tee -a "$out") 2>&1
