#!/usr/bin/env bash
# Installs everything the build, the demo and the tests need, idempotently:
# the wasm target, clang (SQLite's C for wasm32), Debian's chromium and postgresql
# (the relay's tests), wasm-bindgen-cli pinned to the crate version in Cargo.lock, and
# the npm packages in package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
for c in clippy rustfmt; do rustup component list --installed | grep -q "^$c" || rustup component add "$c"; done

need_apt=()
command -v clang >/dev/null || need_apt+=(clang)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# The relay's PostgreSQL test starts its own server from Debian's binaries.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (about 5 minutes, once)"
  cargo install wasm-bindgen-cli --version "$want"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# The embedding model's files (scripts/model.mjs): pip-downloaded once, not committed.
node scripts/model.mjs
