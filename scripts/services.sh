#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) answer: start them when they are
# installed but stopped, install them from Debian's packages when missing; likewise chromium and its
# driver for the browser tests.
set -euo pipefail

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

pg_up()    { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

install_pkgs() {
  echo "installing $* from Debian's packages…"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! pg_up; then
  command -v pg_ctlcluster >/dev/null 2>&1 || install_pkgs postgresql postgresql-contrib
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL did not start" >&2; exit 1; }
  # trust auth for local TCP connections and a role for the current user, as on the dev machines
  if ! psql -h 127.0.0.1 -U "$(whoami)" -d postgres -c 'select 1' >/dev/null 2>&1; then
    hba=$(ls /etc/postgresql/"$version"/main/pg_hba.conf)
    $SUDO sed -i -E 's/^(host\s+all\s+all\s+127\.0\.0\.1\/32\s+)\S+/\1trust/; s/^(local\s+all\s+all\s+)\S+/\1trust/' "$hba"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    $SUDO -u postgres psql -qc "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$(whoami)') THEN CREATE ROLE \"$(whoami)\" SUPERUSER LOGIN; END IF; END\$\$;" || true
  fi
fi

if ! redis_up; then
  command -v redis-server >/dev/null 2>&1 || install_pkgs redis-server
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  redis_up || { echo "Redis did not start" >&2; exit 1; }
fi
echo "PostgreSQL and Redis are up"

# The browser tests (tests/browser) drive Debian's chromium through its chromedriver.
if ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }; then
  install_pkgs chromium chromium-driver
fi
