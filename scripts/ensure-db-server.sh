#!/usr/bin/env bash
# Make sure a MySQL-compatible server binary exists; install Debian's mariadb-server when it does not.
set -euo pipefail
. "$(dirname "$0")/apt-install.sh"
for bin in mariadbd mysqld; do
  if command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ]; then
    exit 0
  fi
done
if apt_install "no MySQL/MariaDB server found; installing Debian's mariadb-server" mariadb-server mariadb-client; then
  # The lab starts its own servers; the distribution's service is not needed.
  (command -v systemctl >/dev/null 2>&1 && systemctl disable --now mariadb >/dev/null 2>&1) || true
  (command -v service >/dev/null 2>&1 && service mariadb stop >/dev/null 2>&1) || true
  exit 0
fi
cat >&2 <<'MSG'
setup: no MySQL-compatible server was found (looked for mariadbd and mysqld on PATH and in /usr/sbin).
Install one, then run make again:
  Debian/Ubuntu:  sudo apt-get install mariadb-server
  conda:          conda env create -f environment.yml   (brings mysql-server)
  macOS:          brew install mariadb
MSG
exit 1
