#!/usr/bin/env bash
# Make sure libfaketime exists: the local cloud preloads it into every process it runs for a lab, so that
# Lambda code, the EC2 instance and the database all read the lab clock (labkit/localcloud/clock.py).
set -euo pipefail
for dir in /usr/lib/x86_64-linux-gnu/faketime /usr/lib/aarch64-linux-gnu/faketime /usr/lib/faketime \
           /usr/local/lib/faketime /usr/lib64/faketime; do
  if [ -e "$dir/libfaketimeMT.so.1" ]; then
    exit 0
  fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: libfaketime not found; installing Debian's libfaketime"
  export DEBIAN_FRONTEND=noninteractive
  for attempt in 1 2 3 4 5 6; do  # another apt may hold the lock for a while
    if apt-get install -y -qq --no-install-recommends libfaketime faketime >/dev/null 2>&1; then
      exit 0
    fi
    apt-get update -qq >/dev/null 2>&1 || true
    sleep $((attempt * 5))
  done
  apt-get install -y -qq --no-install-recommends libfaketime faketime
  exit 0
fi
cat >&2 <<'MSG'
setup: libfaketime was not found (looked for libfaketimeMT.so.1 under /usr/lib/*/faketime and /usr/local/lib/faketime).
The local cloud needs it so that the lab's processes live on the lab clock. Install it, then run make again:
  Debian/Ubuntu:  sudo apt-get install libfaketime faketime
  from source:    https://github.com/wolfcw/libfaketime (make && sudo make install)
MSG
exit 1
