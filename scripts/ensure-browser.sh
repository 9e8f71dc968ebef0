#!/usr/bin/env bash
# Headless Chromium and its driver for the browser tests (Debian packages chromium, chromium-driver).
set -euo pipefail
. "$(dirname "$0")/apt-install.sh"
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if apt_install "installing Debian's chromium and chromium-driver for the browser tests" chromium chromium-driver; then
  exit 0
fi
echo "setup: chromium and chromedriver not found; browser tests will be skipped (sudo apt-get install chromium chromium-driver)" >&2
