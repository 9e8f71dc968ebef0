#!/usr/bin/env bash
# Make sure a C compiler exists (the local cloud's connect() hook is built with it); install gcc when not.
set -euo pipefail
. "$(dirname "$0")/apt-install.sh"
if command -v cc >/dev/null 2>&1; then
  exit 0
fi
if apt_install "no C compiler found; installing Debian's gcc and libc6-dev" gcc libc6-dev; then
  exit 0
fi
cat >&2 <<'MSG'
setup: no C compiler was found. Install one, then run make again:
  Debian/Ubuntu:  sudo apt-get install gcc libc6-dev
  conda:          conda install -c conda-forge c-compiler
MSG
exit 1
