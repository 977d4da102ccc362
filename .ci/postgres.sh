#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1, for the tests and for trying many workers locally.
#   bash .ci/postgres.sh start DIR [PORT]   prints the URL to pass as --storage (DIR's parent must
#                                           be readable by the postgres user, e.g. under /tmp)
#   bash .ci/postgres.sh stop DIR
# Installs Debian's postgresql package when it is missing (needs root). Password authentication
# (scram-sha-256) is on, so a wrong password is refused as it would be on a real server.
set -euo pipefail
command=$1 data=$2 port=${3:-54329} password=lr-study

if ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_postgres=()
[ "$(id -u)" = 0 ] && as_postgres=(runuser -u postgres --)  # the server refuses to run as root

case $command in
  start)
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    pwfile=$(mktemp)
    echo "$password" >"$pwfile"
    chmod 644 "$pwfile"
    "${as_postgres[@]}" "$bin/initdb" -D "$data" -U postgres --auth=scram-sha-256 --pwfile="$pwfile" >/dev/null
    rm -f "$pwfile"
    "${as_postgres[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$data" start >/dev/null
    echo "postgresql://postgres:$password@127.0.0.1:$port/postgres"
    ;;
  stop)
    "${as_postgres[@]}" "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: $0 start DIR [PORT] | stop DIR" >&2
    exit 2
    ;;
esac
