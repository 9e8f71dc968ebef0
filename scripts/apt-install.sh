# Sourced by scripts/ensure-system-packages.sh: install Debian packages when we can, say so when we cannot.
#   apt_install WHY PACKAGE...   as root with apt-get: print "setup: WHY", install the packages without
#                                recommends and return 0 (retrying while another apt holds the lock);
#                                otherwise return 1, so the caller prints how to install them by hand.
apt_install() {
  local why="$1"
  shift
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    return 1
  fi
  echo "setup: $why"
  export DEBIAN_FRONTEND=noninteractive
  local attempt
  for attempt in 1 2 3 4 5; do
    if apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
      return 0
    fi
    apt-get update -qq >/dev/null 2>&1 || true  # a stale package list, or another apt holding the lock
    sleep $((attempt * 3))
  done
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
