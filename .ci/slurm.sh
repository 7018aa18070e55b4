#!/usr/bin/env bash
# A throwaway one-node Slurm cluster from Debian's packages (slurm-wlm, slurmrestd, munge), for CI and the Slurm tests.
#
#   .ci/slurm.sh start DIR [--install] [--owner-pid PID] [--user NAME] [--cpus N]
#                               munged, slurmctld, slurmd and slurmrestd in DIR on loopback and free ports; prints one
#                               line of shell assignments on stdout:
#                               TRAINWATCH_TEST_SLURM=http://127.0.0.1:PORT TRAINWATCH_TEST_SLURM_USER=NAME
#                               TRAINWATCH_TEST_SLURM_TOKEN_FILE=DIR/token TRAINWATCH_TEST_SLURM_CONF=DIR/slurm.conf
#                               TRAINWATCH_TEST_SLURM_WORKDIR=DIR/work
#   .ci/slurm.sh stop DIR       cancel every job (SIGKILL), stop the daemons and remove DIR
#   .ci/slurm.sh stop-rest DIR  stop slurmrestd alone (a REST outage: the cluster and its jobs run on)
#   .ci/slurm.sh start-rest DIR start it again on the same port; returns once it answers
#
# --install: apt-get install slurm-wlm slurm-wlm-jwt-plugin slurmrestd munge when any is missing (CI; a clean Debian image has none).
# --owner-pid PID: stop the cluster and remove DIR once process PID is gone, however it ended (`bun test` runs no exit
#   handlers, and a run may be killed).
# --user NAME: the user that slurmrestd runs as, that the token is for and that jobs run as (default trainwatch-slurm,
#   created as a system user when missing: slurmrestd refuses to run as root or as SlurmUser).
# --cpus N: the node's CPUs (default: the machine's, from `slurmd -C`).
# Must run as root: slurmd starts jobs as another user, and the daemons run as munge, slurm and the user above.
#
# The cluster: SlurmctldHost=<hostname>(127.0.0.1) and NodeName=<hostname> NodeAddr=127.0.0.1, so every daemon talks
# over loopback; munged's socket lives in DIR (AuthInfo=socket=...), so the machine's own munge, if any, is untouched.
# Two partitions: `debug` (the default; jobs share the node per CPU) and `exclusive` (OverSubscribe=EXCLUSIVE: a job
# takes the whole node, so a second one waits with reason Resources: "a node with room for one").
# No cgroups (containers rarely delegate them): proctrack/linuxproc tracks a job's processes by parentage, and memory
# limits are polled by jobacct_gather/linux with OverMemoryKill. The REST API takes JWTs (AuthAltTypes=auth/jwt,
# key in DIR) for `scontrol token`, written to DIR/token. DIR/work is a folder jobs may write to (the job user owns it).
# Exit status is non-zero, with the daemons' logs on stderr, when it cannot start.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|stop-rest|start-rest DIR [--install] [--owner-pid PID] [--user NAME] [--cpus N]" >&2; exit 2; }
shift 2

# A free loopback port from the kernel (another process may take it before the daemon binds: start() retries).
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

logs() {
  local f
  for f in "$dir"/log/* "$dir"/munge/munged.log; do
    [ -f "$f" ] || continue
    echo "--- $f" >&2
    tail -40 "$f" >&2
  done
}

# Waits up to $1 tenths of a second for the command after it to succeed.
wait_for() {
  local n=$1
  shift
  for _ in $(seq "$n"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

stop_pid() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

stop_cluster() {
  export SLURM_CONF=$dir/slurm.conf
  if [ -f "$SLURM_CONF" ] && [ -f "$dir/slurmctld.pid" ]; then
    # Every job gets SIGKILL, and the daemons stay until slurmd has reaped them: nothing the tests ran outlives this.
    local jobs
    jobs=$(timeout 5 squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      timeout 5 scancel --signal=KILL --full $jobs 2>/dev/null || true
      timeout 5 scancel $jobs 2>/dev/null || true
      for _ in $(seq 50); do
        [ -z "$(timeout 2 squeue -h -o %i 2>/dev/null || true)" ] && break
        sleep 0.1
      done
    fi
  fi
  stop_daemons
  stop_pid "$dir/munged.pid"
}

# The three Slurm daemons at once: each takes about 2 s to go after SIGTERM.
stop_daemons() {
  stop_rest &
  stop_pid "$dir/slurmd.pid" &
  stop_pid "$dir/slurmctld.pid" &
  wait
}

# slurmrestd: as the job user (never root, never SlurmUser), on the port in DIR/rest; SLURM_JWT=daemon makes it take
# each request's JWT instead of a munge credential of its own.
start_rest() {
  local user port
  read -r user port <"$dir/rest"
  runuser -u "$user" -- env SLURM_CONF="$dir/slurm.conf" SLURM_JWT=daemon \
    setsid slurmrestd -s openapi/v0.0.38 -a rest_auth/jwt "127.0.0.1:$port" \
    </dev/null >>"$dir/log/slurmrestd.log" 2>&1 &
  echo $! >"$dir/slurmrestd.pid"
}

# Stops this cluster's slurmrestd: the one listening on its port, found by its command line, since the pid file holds
# runuser's pid, and runuser does not always outlive the daemon it started (setsid forks it away when it is a process
# group leader): a stop by that pid alone could leave slurmrestd answering.
stop_rest() {
  local user port pid
  [ -f "$dir/rest" ] || return 0
  read -r user port <"$dir/rest"
  stop_pid "$dir/slurmrestd.pid"
  for pid in $(pgrep -f "^slurmrestd .* 127\.0\.0\.1:$port\$" || true); do
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

# Up once it answers ping with the token (10 s at most).
rest_up() {
  local user port
  read -r user port <"$dir/rest"
  wait_for 100 curl -sf --max-time 2 -o /dev/null -H "X-SLURM-USER-NAME: $user" -H "X-SLURM-USER-TOKEN: $(cat "$dir/token")" \
    "http://127.0.0.1:$port/slurm/v0.0.38/ping"
}

case "$cmd" in
  stop-rest)
    # slurmrestd alone, as an outage of the REST API while the cluster runs on (tests, and trying it by hand).
    stop_rest
    ;;
  start-rest)
    start_rest
    rest_up || { echo "slurmrestd did not start:" >&2; tail -20 "$dir/log/slurmrestd.log" >&2; exit 1; }
    ;;
  start)
    install=0
    owner=""
    user=trainwatch-slurm
    cpus=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --install) install=1 ;;
        --owner-pid) owner=$2; shift ;;
        --user) user=$2; shift ;;
        --cpus) cpus=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
      esac
      shift
    done
    [ "$(id -u)" -eq 0 ] || { echo "$0 start must run as root (slurmd starts jobs as another user)" >&2; exit 1; }
    have() { command -v slurmctld && command -v slurmrestd && command -v munged && ls /usr/lib/*/slurm-wlm/auth_jwt.so; } >/dev/null 2>&1
    if ! have; then
      if [ "$install" -eq 1 ]; then
        echo "== installing Debian slurm-wlm slurmrestd munge" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends slurm-wlm slurm-wlm-jwt-plugin slurmrestd munge >/dev/null
      fi
      have || { echo "no Slurm (slurmctld, slurmrestd, munged, auth_jwt.so) found; apt-get install slurm-wlm slurm-wlm-jwt-plugin slurmrestd munge" >&2; exit 1; }
    fi
    id slurm >/dev/null 2>&1 || { echo "there is no slurm user (Debian's slurmctld package creates it)" >&2; exit 1; }
    id munge >/dev/null 2>&1 || { echo "there is no munge user (Debian's munge package creates it)" >&2; exit 1; }
    id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
    [ "$(id -u "$user")" -ne 0 ] && [ "$user" != slurm ] || { echo "--user must be neither root nor slurm (slurmrestd refuses both)" >&2; exit 1; }

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    host=$(hostname -s)
    # Every daemon's user reads slurm.conf; munge's socket must be reachable by all of them.
    chmod 755 "$dir"
    mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log" "$dir/work"
    chown munge:munge "$dir/munge"
    chmod 755 "$dir/munge"
    chown slurm:slurm "$dir/state"
    chmod 700 "$dir/state"
    chown slurm "$dir/log"
    chmod 755 "$dir/spool" "$dir/log"
    chown "$user" "$dir/work"
    chmod 755 "$dir/work"
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chown munge:munge "$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
    dd if=/dev/urandom of="$dir/jwt.key" bs=32 count=1 status=none
    chown slurm:slurm "$dir/jwt.key"
    chmod 600 "$dir/jwt.key"
    touch "$dir/log/slurmctld.log"
    chown slurm:slurm "$dir/log/slurmctld.log"

    socket=$dir/munge/munge.socket.2
    runuser -u munge -- munged --socket="$socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
      --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
      || { cat "$dir/munge/munged.log" >&2 2>/dev/null; echo "munged did not start" >&2; exit 1; }
    ln -sf munge/munged.pid "$dir/munged.pid"

    node=$(slurmd -C | head -1)
    node_cpus=$(echo "$node" | grep -Eo 'CPUs=[0-9]+' | cut -d= -f2)
    memory=$(echo "$node" | grep -Eo 'RealMemory=[0-9]+' | cut -d= -f2)
    # The node's layout only when it is the machine's own: a smaller CPUs= stands alone.
    layout=$(echo "$node" | grep -Eo '(Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=[0-9]+' | tr '\n' ' ')
    if [ -n "$cpus" ] && [ "$cpus" != "$node_cpus" ]; then layout=""; else cpus=$node_cpus; fi

    for attempt in 1 2 3; do
      ctld_port=$(free_port)
      slurmd_port=$(free_port)
      rest_port=$(free_port)
      cat >"$dir/slurm.conf" <<EOF
# A one-node test cluster written by .ci/slurm.sh: loopback only, everything in $dir.
ClusterName=trainwatch
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=slurm
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$dir/jwt.key
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((memory / cpus))
SchedulerType=sched/backfill
ReturnToService=2
MailProg=/bin/true
KillWait=10
MinJobAge=3600
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus ${layout}RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=exclusive Nodes=$host OverSubscribe=EXCLUSIVE MaxTime=INFINITE State=UP
EOF
      chmod 644 "$dir/slurm.conf"
      export SLURM_CONF=$dir/slurm.conf
      slurmctld -i >>"$dir/log/slurmctld.out" 2>&1 || true
      slurmd -N "$host" >>"$dir/log/slurmd.out" 2>&1 || true
      if wait_for 100 bash -c '[ "$(timeout 2 sinfo -h -n "$1" -o %t 2>/dev/null)" = idle ]' _ "$host"; then
        echo "$user $rest_port" >"$dir/rest"
        start_rest
        timeout 10 scontrol token username="$user" lifespan=86400 | sed -n 's/^SLURM_JWT=//p' >"$dir/token"
        chmod 644 "$dir/token"
        # Up once it answers ping with the token.
        if rest_up; then
          if [ -n "$owner" ]; then
            # Detached, with no inherited stdout: whoever reads this script's output sees EOF at once.
            setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop "$3"' _ "$owner" "$0" "$dir" \
              </dev/null >/dev/null 2>&1 &
          fi
          echo "TRAINWATCH_TEST_SLURM=http://127.0.0.1:$rest_port TRAINWATCH_TEST_SLURM_USER=$user" \
            "TRAINWATCH_TEST_SLURM_TOKEN_FILE=$dir/token TRAINWATCH_TEST_SLURM_CONF=$dir/slurm.conf" \
            "TRAINWATCH_TEST_SLURM_WORKDIR=$dir/work"
          exit 0
        fi
      fi
      # A port taken between the choice and the bind, or worse: stop what started and try again with new ports.
      stop_daemons
    done
    echo "Slurm did not start:" >&2
    logs
    stop_pid "$dir/munged.pid"
    exit 1
    ;;
  stop)
    [ -d "$dir" ] || exit 0
    stop_cluster
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop|stop-rest|start-rest DIR [--install] [--owner-pid PID] [--user NAME] [--cpus N]" >&2
    exit 2
    ;;
esac
