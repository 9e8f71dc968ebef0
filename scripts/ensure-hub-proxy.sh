#!/usr/bin/env bash
# JupyterHub's proxy for the classroom: configurable-http-proxy from npm, pinned, under .cache/node.
# Needs node and npm (Debian's nodejs and npm, from scripts/ensure-system-packages.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=5.3.0
BIN=.cache/node/node_modules/.bin/configurable-http-proxy
if [ -x "$BIN" ] && [ "$("$BIN" --version 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  # scripts/ensure-system-packages.sh installs them as root, or says which apt command to run.
  echo "setup: node and npm not found; the classroom Hub needs them: sudo apt-get install -y nodejs npm" >&2
  exit 0
fi
mkdir -p .cache/node
echo "setup: installing configurable-http-proxy $VERSION (npm) for the classroom Hub"
# node trusts its own built-in certificate authorities only; --use-openssl-ca makes npm trust the system's, as
# pip and apt do (a machine whose network inspects TLS has its authority there, and a user's shell may not set
# NODE_EXTRA_CA_CERTS). The Hub is optional: a failure says how to retry and does not stop the set-up.
if ! NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--use-openssl-ca" \
    npm install --silent --no-audit --no-fund --prefix .cache/node "configurable-http-proxy@$VERSION" >/dev/null; then
  echo "setup: could not install configurable-http-proxy (npm's error above); the classroom Hub needs it:" \
    "fix what npm says, then run make setup again" >&2
fi
