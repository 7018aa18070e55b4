#!/usr/bin/env bash
# A throwaway pgbouncer from Debian's packages in front of a PostgreSQL server, in transaction mode, for CI and the
# tests that run the PostgreSQL store through a pooler (tests/pgbouncer.postgres.test.ts).
#
#   .ci/pgbouncer.sh start DIR PG_URL [--install] [--owner-pid PID]   configure in DIR, start on a free loopback port,
#                                                                     print the pooler's URL (PG_URL's user and
#                                                                     database, the pooler's port) on stdout
#   .ci/pgbouncer.sh stop DIR                                         stop it and remove DIR
#
# Every database name is passed through to PG_URL's server (`* =`), so a test may create a database and reach it
# through the pooler at once. Authentication is `trust` for PG_URL's user, on 127.0.0.1 only, as .ci/postgres.sh's
# server. pool_mode = transaction: a server connection serves one transaction, then any other client. search_path is
# among the ignored startup parameters (pgbouncer before 1.20 cannot pass it on), so a session through it starts in the
# database's default schema: the store checks that at open. --install: apt-get install pgbouncer when it is missing.
# --owner-pid PID: stop it and remove DIR once process PID is gone. Exit status is non-zero, with its log on stderr,
# when it cannot start.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start DIR PG_URL [--install] [--owner-pid PID] | stop DIR" >&2; exit 2; }
shift 2

bin() { command -v pgbouncer 2>/dev/null || { [ -x /usr/sbin/pgbouncer ] && echo /usr/sbin/pgbouncer; } || true; }

# pgbouncer refuses to run as root: as root it runs as the `postgres` user, as the server does.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    url=${1:-}
    [ -n "$url" ] || { echo "usage: $0 start DIR PG_URL [--install] [--owner-pid PID]" >&2; exit 2; }
    shift
    install=0
    owner=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --install) install=1 ;;
        --owner-pid) owner=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
      esac
      shift
    done
    pgb=$(bin)
    if [ -z "$pgb" ] && [ "$install" -eq 1 ]; then
      echo "== installing Debian pgbouncer" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
      pgb=$(bin)
    fi
    [ -n "$pgb" ] || { echo "no pgbouncer found; apt-get install pgbouncer" >&2; exit 1; }
    # postgres://user@host:port/db (no password: the test servers trust loopback).
    [[ "$url" =~ ^postgres(ql)?://([^@/:]+)@([^:/]+):([0-9]+)/([^?]+) ]] || { echo "PG_URL must be postgres://user@host:port/db, got $url" >&2; exit 2; }
    user=${BASH_REMATCH[2]} host=${BASH_REMATCH[3]} pgport=${BASH_REMATCH[4]} db=${BASH_REMATCH[5]}
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      id postgres >/dev/null 2>&1 || { echo "running as root and there is no postgres user to run pgbouncer as" >&2; exit 1; }
      chown postgres "$dir"
    fi
    printf '"%s" ""\n' "$user" >"$dir/userlist.txt"
    for attempt in 1 2 3; do
      port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
      cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$host port=$pgport

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,search_path
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
      [ "$(id -u)" -eq 0 ] && chown postgres "$dir"/*
      if as_owner "$pgb" -d "$dir/pgbouncer.ini" >/dev/null 2>&1; then
        # Up once it answers on its port (a second or so at most).
        for _ in $(seq 1 50); do
          if node -e 'const c=require("net").connect(+process.argv[1],"127.0.0.1",()=>process.exit(0));c.on("error",()=>process.exit(1))' "$port"; then
            if [ -n "$owner" ]; then
              setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop "$3"' _ "$owner" "$0" "$dir" \
                </dev/null >/dev/null 2>&1 &
            fi
            echo "postgres://$user@127.0.0.1:$port/$db"
            exit 0
          fi
          sleep 0.1
        done
      fi
      [ -f "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
    done
    echo "pgbouncer did not start:" >&2
    cat "$dir/pgbouncer.log" >&2 2>/dev/null || true
    exit 1
    ;;
  stop)
    if [ -f "$dir/pgbouncer.pid" ]; then
      pid=$(cat "$dir/pgbouncer.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start DIR PG_URL [--install] [--owner-pid PID] | stop DIR" >&2
    exit 2
    ;;
esac
