#!/usr/bin/env bash
# A launch prefix for `jax-serve serve --command`: runs the engine unchanged, its raw output (the
# carriage-return progress bars included, which the CLI prints as lines) also appended to FILE.
#   tee-log.sh FILE ENGINE ARGS...
out=$1
shift
# tee ignores the SIGINT/SIGTERM a stop sends the whole group, so the engine's shutdown is kept too;
# it ends when the engine's output does.
exec "$@" > >(trap '' INT TERM; exec tee -a "$out") 2>&1
