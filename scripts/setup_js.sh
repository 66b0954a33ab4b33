#!/usr/bin/env bash
# Install what the JavaScript examples and their tests need; safe to run again (does nothing twice).
#
#   scripts/setup_js.sh
#
# 1. Node packages from the committed lock files (`npm ci`):
#      examples/node  onnxruntime-node, pngjs, jpeg-js
#      examples/web   onnxruntime-web (+ playwright-core, dev, for tests/test_js_runtimes.py)
#    A folder is reinstalled only when its package-lock.json changed since the last install.
# 2. Chromium for the browser test: `apt-get install chromium` when /usr/bin/chromium is missing
#    (needs root, Debian/Ubuntu). Skipped with LABCOLOR_SKIP_CHROMIUM=1.
# 3. The onnxruntime-web files the page loads, copied from examples/web/node_modules into
#    runtime/web/vendor/ (git-ignored; the page itself lives in the package, which `colorize serve` serves):
#    no CDN, any static file server then serves runtime/web/ as a browser-only colorizer.
#
# Needs Node.js >= 18 and npm on PATH. onnxruntime-node's postinstall step, which would download
# CUDA provider libraries from NuGet on Linux x64, is skipped (ONNXRUNTIME_NODE_INSTALL=skip):
# the examples run on the CPU, and the CPU runtime ships inside the npm package.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'setup_js: %s\n' "$*"; }

# One run at a time (parallel test workers each start one): the others wait, then find everything done.
if command -v flock >/dev/null && [[ -z "${LABCOLOR_SETUP_JS_LOCKED:-}" ]]; then
  export LABCOLOR_SETUP_JS_LOCKED=1
  exec flock "${TMPDIR:-/tmp}/labcolor-setup-js-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1).lock" bash "${BASH_SOURCE[0]}" "$@"
fi

command -v node >/dev/null || { say "node not found: install Node.js >= 18 (with npm) first" >&2; exit 1; }
command -v npm >/dev/null || { say "npm not found: install npm first" >&2; exit 1; }
say "node $(node --version), npm $(npm --version)"

export ONNXRUNTIME_NODE_INSTALL=skip   # no CUDA download from NuGet (see above)
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

# --- 1. npm ci where the lock file changed ------------------------------------------------------
npm_ci() {
  local dir="$ROOT/$1"
  local stamp="$dir/node_modules/.labcolor-lock.sha256"
  local want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "$1: node_modules up to date with package-lock.json"
    return
  fi
  say "$1: npm ci (from package-lock.json)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
}
npm_ci examples/node
npm_ci examples/web

# --- 2. Chromium ---------------------------------------------------------------------------------
CHROMIUM="${LABCOLOR_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$CHROMIUM" ]]; then
  say "chromium present: $CHROMIUM"
elif [[ "${LABCOLOR_SKIP_CHROMIUM:-0}" == 1 ]]; then
  say "chromium missing, not installed (LABCOLOR_SKIP_CHROMIUM=1): the browser test will skip"
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  say "chromium missing: apt-get install chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  say "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
else
  say "chromium missing and not installable here (needs root and apt-get): install it, or set LABCOLOR_CHROMIUM" >&2
fi

# --- 3. onnxruntime-web files for the page -------------------------------------------------------
# ort.wasm.min.mjs       WASM only (+ ort-wasm-simd-threaded.{mjs,wasm}): what the page loads without WebGPU
# ort.webgpu.min.mjs     WebGPU and WASM (+ ort-wasm-simd-threaded.asyncify.{mjs,wasm}): loaded when the
#                        browser offers a WebGPU adapter
DIST="$ROOT/examples/web/node_modules/onnxruntime-web/dist"
VENDOR="$ROOT/runtime/web/vendor"
FILES=(ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm
       ort.webgpu.min.mjs ort-wasm-simd-threaded.asyncify.mjs ort-wasm-simd-threaded.asyncify.wasm)
ORT_WEB_VERSION="$(node -p "require('$ROOT/examples/web/node_modules/onnxruntime-web/package.json').version")"
mkdir -p "$VENDOR"
copied=0
for f in "${FILES[@]}"; do
  if ! cmp -s "$DIST/$f" "$VENDOR/$f"; then
    cp "$DIST/$f" "$VENDOR/$f"
    copied=$((copied + 1))
  fi
done
echo "$ORT_WEB_VERSION" > "$VENDOR/ONNXRUNTIME_WEB_VERSION"
say "runtime/web/vendor: onnxruntime-web $ORT_WEB_VERSION, ${#FILES[@]} files ($copied copied, $((${#FILES[@]} - copied)) already there)"
say "done"
