#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests of `pid_ssl_reproduce --launcher slurm` (tests/test_launch_slurm.py).
#
#   scripts/slurm_local.sh start    install SLURM and munge if missing (apt-get, root), start munged, slurmctld, slurmd
#   scripts/slurm_local.sh status   the cluster's state (sinfo); exit 0 when the node takes jobs
#   scripts/slurm_local.sh stop     stop the daemons this script started
#
# The cluster has its own configuration, state and logs under $PID_SSL_SLURM_DIR (default /tmp/pid_ssl_slurm) and its
# own ports, so it never touches /etc/slurm or a real cluster's daemons: SLURM's commands reach it when
# SLURM_CONF=$PID_SSL_SLURM_DIR/slurm.conf (`start` prints that line last). `start` is idempotent (a running cluster
# is left as it is) and safe to call from several processes at once. Where it cannot install or start the cluster it
# exits non-zero with the reason as the last line on stderr, which the tests show as their reason to skip.
set -uo pipefail
DIR=${PID_SSL_SLURM_DIR:-/tmp/pid_ssl_slurm}
CONF=$DIR/slurm.conf
CTLD_PORT=${PID_SSL_SLURM_PORT:-6917}  # slurmd listens on the next port; the defaults (6817/6818) stay free for a real cluster
export SLURM_CONF=$CONF

fail() { echo "slurm_local.sh: $*" >&2; exit 3; }

node_ready() {  # the node answers and takes jobs (idle, mixed or allocated)
  local state
  state=$(timeout 10 sinfo -h -N -o "%t" 2>/dev/null | head -1)
  [[ "$state" =~ ^(idle|mix|alloc) ]]
}

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null && return 0
  [ "$(id -u)" = 0 ] || fail "SLURM is not installed and installing it needs root (apt-get install slurm-wlm munge)"
  command -v apt-get >/dev/null || fail "SLURM is not installed and there is no apt-get to install it with"
  echo "installing slurm-wlm and munge (about a minute) ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge; } >"$DIR/install.log" 2>&1 \
    || fail "apt-get install slurm-wlm munge failed; see $DIR/install.log"
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none || fail "cannot write /etc/munge/munge.key"
  fi
  id munge >/dev/null 2>&1 || fail "no 'munge' user: the munge package did not install cleanly"
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if command -v runuser >/dev/null; then runuser -u munge -- munged 9>&-; else su -s /bin/sh munge -c munged 9>&-; fi \
    || fail "munged did not start"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "munged started but does not answer"
}

write_conf() {  # one node (this host, all its CPUs and most of its memory), one default partition
  local host cpus mem
  host=$(hostname -s); cpus=$(nproc --all)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  mkdir -p "$DIR/state" "$DIR/spool"
  cat >"$CONF" <<EOF
# written by pid_ssl's scripts/slurm_local.sh: a one-node test cluster
ClusterName=pidssl
SlurmctldHost=$host
SlurmctldPort=$CTLD_PORT
SlurmdPort=$((CTLD_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=600
SchedulerParameters=sched_interval=1
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  mkdir -p "$DIR"
  exec 9>"$DIR/.start.lock"; flock 9  # one start at a time (tests in parallel workers all call it); daemons get 9>&-
  if [ -f "$CONF" ] && alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && node_ready; then
    echo "SLURM_CONF=$CONF"; return 0
  fi
  install
  start_munge
  write_conf
  alive "$DIR/slurmctld.pid" || slurmctld -i -f "$CONF" >>"$DIR/daemons.log" 2>&1 9>&- || fail "slurmctld did not start; see $DIR/slurmctld.log"
  alive "$DIR/slurmd.pid" || slurmd -f "$CONF" >>"$DIR/daemons.log" 2>&1 9>&- || fail "slurmd did not start; see $DIR/slurmd.log"
  for _ in $(seq 100); do
    node_ready && { echo "SLURM_CONF=$CONF"; return 0; }
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    sleep 0.3
  done
  fail "the node did not become idle in 30 s ($(sinfo -h -N -o '%t %E' 2>&1 | head -1)); see $DIR/slurmctld.log and $DIR/slurmd.log"
}

stop() {
  local f
  for f in slurmd slurmctld; do
    if alive "$DIR/$f.pid"; then kill "$(cat "$DIR/$f.pid")"; fi
  done
  for _ in $(seq 50); do alive "$DIR/slurmd.pid" || alive "$DIR/slurmctld.pid" || break; sleep 0.1; done
  echo "stopped (munged is left running; its state is the system's)"
}

status() {
  if [ -f "$CONF" ] && node_ready; then sinfo; echo "SLURM_CONF=$CONF"; return 0; fi
  echo "no local SLURM cluster is running (scripts/slurm_local.sh start)" >&2; return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
