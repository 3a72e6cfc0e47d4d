# Shared by the test setup scripts: where installs are cached (outside the clone), and how to fail.
# Each install lives in a folder keyed on its versions, written atomically (tmp + rename), so a warm
# run only checks a marker and an interrupted install is never taken for a finished one.
JAX_SERVE_CACHE=${JAX_SERVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jax-serve}
mkdir -p "$JAX_SERVE_CACHE"

die() { echo "jax-serve setup: $*" >&2; exit 3; }
say() { echo "[setup] $*" >&2; }

# hash_of FILE... : a short key for cache folders
hash_of() { cat "$@" | sha256sum | cut -c1-12; }

# need_disk MB PATH : fail fast with a clear message when the disk is too full for an install
need_disk() {
  local need=$1 path=$2 have
  have=$(df -Pm "$path" | awk 'NR==2 {print $4}')
  [ "${have:-0}" -ge "$need" ] || die "needs ${need} MB free at $path for installs, only ${have} MB free. Free some space or set JAX_SERVE_CACHE to another disk."
}
