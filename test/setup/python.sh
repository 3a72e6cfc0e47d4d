#!/usr/bin/env bash
# Creates (once) a pinned Python venv the tests use, and prints its python path.
#   python.sh          the main venv (python/requirements-test.txt)
#   python.sh hfflax   the HF-Flax venv: transformers 4.x Flax models (python/requirements-hfflax.txt)
#   python.sh sglang-jax-cpu   SGLang-JAX's dependencies on the CPU (JAX_SERVE_BASE_PYTHON: a 3.12)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
. "$here/common.sh"
kind=${1:-test}
req="$root/python/requirements-$kind.txt"; con="$root/python/constraints.txt"
[ -f "$req" ] || die "no $req: the venv kinds are test, hfflax and sglang-jax-cpu."
py=${JAX_SERVE_BASE_PYTHON:-python3}
command -v "$py" >/dev/null || die "no $py on PATH: install Python 3.11 or set JAX_SERVE_BASE_PYTHON."
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
name=venv; [ "$kind" = test ] || name="venv-$kind"
venv="$JAX_SERVE_CACHE/$name-py$pyver-$(hash_of "$req" "$con" "$here/python.sh")"
if [ -f "$venv/.complete" ]; then echo "$venv/bin/python"; exit 0; fi
need_disk 3000 "$JAX_SERVE_CACHE"
say "creating the $kind venv at $venv (one-off, a few minutes)"
# The venv is built in place (venvs hard-code their path); the marker written last says it is whole.
rm -rf "$venv"
"$py" -m venv "$venv" >&2
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --no-input -c "$con")
[ -d /opt/wheels ] && pip+=(--find-links /opt/wheels)
# torch first, from a wheel on disk only: fail fast rather than pull a multi-GB CUDA build.
torch=$(grep '^torch==' "$req" || true)
if [ -n "$torch" ]; then
  "${pip[@]}" --no-index --no-deps "$torch" >&2 \
    || die "the CPU wheel for $torch is not on this machine (looked in /opt/wheels); refusing to download a CUDA build."
fi
"${pip[@]}" -r "$req" >&2 || die "pip could not install $req (see the lines above)."
touch "$venv/.complete"
echo "$venv/bin/python"
