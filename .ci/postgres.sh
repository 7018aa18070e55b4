#!/usr/bin/env bash
# A throwaway PostgreSQL server from Debian's packages, for CI, the PostgreSQL tests and the store bench.
#
#   .ci/postgres.sh start DIR [--install] [--owner-pid PID] [-c name=value ...]
#                                                               initdb in DIR, start on a free loopback port,
#                                                               print the connection URL on stdout
#   .ci/postgres.sh stop DIR                                    stop it (immediate) and remove DIR
#
# --install: apt-get install postgresql when no initdb is found (CI; a clean Debian image has none).
# --owner-pid PID: stop the server and remove DIR once process PID is gone, however it ended (a test run that is
#   killed leaves no server behind; `bun test` runs no exit handlers).
# As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root). Authentication is
# `trust` on loopback only: the server listens on 127.0.0.1 and on a socket inside DIR, nowhere else.
# Exit status is non-zero, with the server's log on stderr, when it cannot start.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [--install] [-c name=value ...]" >&2; exit 2; }
shift 2

bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  # Debian keeps the server binaries out of PATH, one folder per major version: take the newest.
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

# Runs a server binary as the user that owns DIR (postgres when we are root).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    install=0
    owner=""
    opts=()
    while [ $# -gt 0 ]; do
      case "$1" in
        --install) install=1 ;;
        --owner-pid) owner=$2; shift ;;
        -c) opts+=(-c "$2"); shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
      esac
      shift
    done
    bin=$(bindir || true)
    if [ -z "$bin" ] && [ "$install" -eq 1 ]; then
      echo "== installing Debian postgresql" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      apt-get install -y -qq --no-install-recommends postgresql >/dev/null
      bin=$(bindir || true)
    fi
    [ -n "$bin" ] || { echo "no PostgreSQL server binaries (initdb) found; apt-get install postgresql" >&2; exit 1; }
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      id postgres >/dev/null 2>&1 || { echo "running as root and there is no postgres user to run the server as" >&2; exit 1; }
      chown postgres "$dir"
    fi
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # A free port from the kernel; another process may take it before the server binds, so try a few.
    for attempt in 1 2 3; do
      port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
      if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
          -o "-p $port -k $dir -c listen_addresses=127.0.0.1 ${opts[*]}" start >/dev/null 2>&1; then
        if [ -n "$owner" ]; then
          # Detached, with no inherited stdout: whoever reads this script's output sees EOF at once.
          setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop "$3"' _ "$owner" "$0" "$dir" \
            </dev/null >/dev/null 2>&1 &
        fi
        echo "postgres://postgres@127.0.0.1:$port/postgres"
        exit 0
      fi
    done
    echo "PostgreSQL did not start:" >&2
    cat "$dir/server.log" >&2 || true
    exit 1
    ;;
  stop)
    bin=$(bindir || true)
    if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop DIR [--install] [-c name=value ...]" >&2
    exit 2
    ;;
esac
