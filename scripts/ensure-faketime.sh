#!/usr/bin/env bash
# Make sure libfaketime exists: the local cloud preloads it into every process it runs for a lab, so that
# Lambda code, the EC2 instance and the database all read the lab clock (labkit/localcloud/clock.py).
set -euo pipefail
. "$(dirname "$0")/apt-install.sh"
for dir in /usr/lib/x86_64-linux-gnu/faketime /usr/lib/aarch64-linux-gnu/faketime /usr/lib/faketime \
           /usr/local/lib/faketime /usr/lib64/faketime; do
  if [ -e "$dir/libfaketimeMT.so.1" ]; then
    exit 0
  fi
done
if apt_install "libfaketime not found; installing Debian's libfaketime" libfaketime faketime; then
  exit 0
fi
cat >&2 <<'MSG'
setup: libfaketime was not found (looked for libfaketimeMT.so.1 under /usr/lib/*/faketime and /usr/local/lib/faketime).
The local cloud needs it so that the lab's processes live on the lab clock. Install it, then run make again:
  Debian/Ubuntu:  sudo apt-get install libfaketime faketime
  from source:    https://github.com/wolfcw/libfaketime (make && sudo make install)
MSG
exit 1
