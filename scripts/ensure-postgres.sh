#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests, and prints the
# admin URL the tests use (export it as TAPKIT_TEST_PG_URL). Uses the running one when
# present; otherwise starts the installed cluster, or installs Debian's postgresql first.
set -euo pipefail
url=${TAPKIT_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
say() { echo "ensure-postgres: $*" >&2; }

works() { psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1; }
as_postgres() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

if ! command -v psql >/dev/null || ! command -v pg_ctlcluster >/dev/null; then
  say "installing postgresql (apt-get)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  say "starting PostgreSQL $version"
  $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start || $sudo pg_ctlcluster "$version" main start
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
if ! works "$url"; then
  # A fresh Debian cluster wants a password over TCP: give the tests their own.
  say "creating a password and the test database for the tests"
  as_postgres psql -qc "ALTER USER postgres PASSWORD 'tapkit-tests'" >/dev/null
  as_postgres psql -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 \
    || as_postgres createdb test
  url=postgres://postgres:tapkit-tests@127.0.0.1:5432/test
fi
works "$url" || { say "PostgreSQL on 127.0.0.1:5432 does not accept $url"; exit 1; }
say "ready: $(psql "$url" -Atqc 'SHOW server_version') on 127.0.0.1:5432"
echo "$url"
