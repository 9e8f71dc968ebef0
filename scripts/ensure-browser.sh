#!/usr/bin/env bash
# Headless Chromium and its driver for the browser tests (Debian packages chromium, chromium-driver).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium and chromium-driver for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  exit 0
fi
echo "setup: chromium and chromedriver not found; browser tests will be skipped (sudo apt-get install chromium chromium-driver)" >&2
