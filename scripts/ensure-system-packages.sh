#!/usr/bin/env bash
# The Debian/Ubuntu packages the lab needs from the system, all in one place (apt.txt lists the same for
# repo2docker). As root: installs what is missing through apt. As anyone else: says exactly which apt
# command to run, and stops when the lab cannot work without it.
#   ensure-system-packages.sh          what the lab needs (`make setup`, `make lab`)
#   ensure-system-packages.sh browser  Debian's chromium and chromium-driver, for the browser tests (`make test`)
#   ensure-system-packages.sh hub      node and npm, for the classroom Hub's proxy (`make classroom-setup`)
set -euo pipefail
. "$(dirname "$0")/apt-install.sh"
needed=()    # the lab cannot run without these
optional=()  # the browser tests and the classroom Hub are skipped without these
found() { command -v "$1" >/dev/null 2>&1; }
any_file() { for f in "$@"; do [ -e "$f" ] && return 0; done; return 1; }
what="${1:-lab}"
case "$what" in
  browser)
    { found chromium && found chromedriver; } || optional+=(chromium chromium-driver)
    skipped="the browser tests are skipped without them" ;;
  hub)
    { found node && found npm; } || optional+=(nodejs npm)
    skipped="the classroom Hub needs them" ;;
  lab)
# python3 -m venv (make setup builds .venv and .venv-lambda with it)
"${PYTHON:-python3}" -c 'import ensurepip, venv' >/dev/null 2>&1 || needed+=(python3-venv)
# the MySQL-compatible server behind every local RDS instance
{ found mariadbd || found mysqld || any_file /usr/sbin/mariadbd /usr/sbin/mysqld; } \
  || needed+=(mariadb-server mariadb-client)
# the lab clock (labkit/localcloud/core/clock.py) preloads libfaketime into every process of a lab
any_file /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 /usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1 \
  /usr/lib/faketime/libfaketimeMT.so.1 /usr/local/lib/faketime/libfaketimeMT.so.1 /usr/lib64/faketime/libfaketimeMT.so.1 \
  || needed+=(libfaketime faketime)
# a C compiler for the local cloud's connect() hook and the clock's companion
found cc || needed+=(gcc libc6-dev)
    ;;
  *) echo "usage: $0 [lab|browser|hub]" >&2; exit 2 ;;
esac

missing=(${needed[@]+"${needed[@]}"} ${optional[@]+"${optional[@]}"})
[ ${#missing[@]} -eq 0 ] && exit 0
if apt_install "installing Debian packages: ${missing[*]} (a minute or two)" "${missing[@]}"; then
  # The lab starts its own database servers; the distribution's service is not needed.
  if [[ " ${missing[*]} " == *" mariadb-server "* ]]; then
    (found systemctl && systemctl disable --now mariadb >/dev/null 2>&1) || true
    (found service && service mariadb stop >/dev/null 2>&1) || true
  fi
  exit 0
fi
if [ ${#needed[@]} -gt 0 ]; then
  cat >&2 <<MSG
setup: this machine lacks system packages the lab needs. Run this once (as an administrator):

    sudo apt-get install -y ${missing[*]}

then run make again. (Not Debian/Ubuntu: install the same packages with your system's package manager.)
MSG
  exit 1
fi
cat >&2 <<MSG
setup: optional packages missing ($skipped):
    sudo apt-get install -y ${optional[*]}
MSG
