#!/usr/bin/env bash
# Slurm on the local cluster (launch/cluster.sh), to rehearse batch jobs on one host: munged, slurmctld on the first node
# and one slurmd per node, each inside its node's namespaces (so it has the node's hostname and address).
#
#   launch/slurm_local.sh up [--nodes N] [--cpus C]   Slurm on the running cluster's first N nodes (default all), each
#                                                     offering C CPUs (default this host's cores); waits until all idle
#   launch/slurm_local.sh down                        cancel every job, stop the daemons, remove their files
#   launch/slurm_local.sh status                      the daemons and sinfo
#   launch/slurm_local.sh conf                        print the slurm.conf path (SLURM_CONF for Slurm's commands)
#   launch/slurm_local.sh exec CMD ...                run CMD on the first node with SLURM_CONF set
#   launch/slurm_local.sh sbatch|srun|salloc|squeue|sinfo|scontrol|scancel ARGS ...   the same as exec
#
# The cluster is the one RINGTRAIN_CLUSTER names (default rtc); start it first: launch/cluster.sh up 2. Slurm's addresses
# exist only inside the cluster's namespaces, so its commands run on a node (exec, or the shortcuts above):
#   launch/cluster.sh up 2 && launch/slurm_local.sh up
#   RINGTRAIN_CONFIG=configs/tiny.yaml RINGTRAIN_SET= \
#     launch/slurm_local.sh sbatch --nodes=2 --ntasks-per-node=2 --cpus-per-task=1 launch/slurm.sbatch   (repo root)
#   launch/slurm_local.sh down && launch/cluster.sh down
# Needs root and Debian's slurm-wlm and munge (launch/setup.sh --with-slurm installs them). The configuration is a
# rehearsal's, not a production one: no cgroups (proctrack/linuxproc, task/none), no accounting, PMIx as the MPI
# plugin, a requeued job may start again after 10 s (cred_expire) instead of Slurm's 120. Files: /run/ringtrain-slurm/.
set -euo pipefail

name="${RINGTRAIN_CLUSTER:-rtc}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/slurm_local.sh"
cluster="$here/cluster.sh"
state="/run/ringtrain-slurm/$name"
conf="$state/slurm.conf"

die() {  # one sentence, exit 2 (the user's mistake or a missing requirement)
  echo "slurm_local.sh: error: $*" >&2
  exit 2
}

fail() {  # a daemon that did not start: what, and the end of its log; exit 1
  echo "slurm_local.sh: error: $1" >&2
  [ -n "${2:-}" ] && [ -f "$2" ] && tail -n 15 "$2" | sed 's/^/  | /' >&2
  exit 1
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "Slurm on the local cluster needs root (namespaces, daemons); run it as root or with sudo"
}

need_slurm() {
  local missing=() c
  for c in munged munge unmunge slurmctld slurmd slurmstepd sbatch srun scontrol sinfo squeue scancel; do
    command -v "$c" > /dev/null || missing+=("$c")
  done
  [ ${#missing[@]} -eq 0 ] ||
    die "Slurm is not installed (missing: ${missing[*]}); install Debian's slurm-wlm and munge: launch/setup.sh --with-slurm"
}

cluster_nodes() {  # the cluster's nodes, or the sentence that it is not up
  "$cluster" nodes 2> /dev/null ||
    die "cluster '$name' is not up; start it first: RINGTRAIN_CLUSTER=$name launch/cluster.sh up 2"
}

is_up() { [ -f "$state/nodes" ]; }
slurm_nodes() { cat "$state/nodes"; }
first_node() { head -n 1 "$state/nodes"; }

# The pid in FILE when that process is alive and is COMM (a stale pid file names nothing).
live_pid() {
  local file="$1" comm="$2" pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file" 2> /dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2> /dev/null)" = "$comm" ] || return 1
  echo "$pid"
}

# Starts a daemon in the foreground of its own session inside NODE's namespaces, output to LOG; the daemon writes its
# pid file itself.
start_on() {
  local node="$1" log="$2"
  shift 2
  setsid "$cluster" exec "$node" "$@" > "$log" 2>&1 < /dev/null &
}

on_first() { SLURM_CONF="$conf" "$cluster" exec "$(first_node)" "$@"; }

wait_for() {  # SECONDS COMMAND...: true once COMMAND succeeds
  local until=$((SECONDS + $1))
  shift
  while [ $SECONDS -lt $until ]; do
    "$@" > /dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

write_conf() {  # CPUS: slurm.conf for the nodes in $state/nodes, addresses from the cluster's hosts file
  local cpus="$1" first node addr
  first="$(first_node)"
  addr_of() { awk -v n="$1" '$2 == n { print $1 }' "/etc/netns/$1/hosts"; }
  {
    echo "# Written by launch/slurm_local.sh for the local cluster '$name'; removed by its down."
    echo "ClusterName=$name"
    echo "SlurmctldHost=$first($(addr_of "$first"))"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "CredType=cred/munge"
    # One munged for every node: its socket is a file, and the nodes share the file system.
    # cred_expire: how long a step credential lives, and how long a requeued job waits before it may start again.
    echo "AuthInfo=socket=$state/munge/munge.socket,cred_expire=10"
    echo "StateSaveLocation=$state/ctld"
    echo "SlurmctldPidFile=$state/ctld/slurmctld.pid"
    echo "SlurmctldLogFile=$state/ctld/slurmctld.log"
    # Per node (%n): the nodes share the file system, so spool, log, pid file and the PMIx client directories (TmpFS;
    # Slurm's default /tmp would be one directory for every node) must differ.
    echo "SlurmdSpoolDir=$state/%n/spool"
    echo "SlurmdLogFile=$state/%n/slurmd.log"
    echo "SlurmdPidFile=$state/%n/slurmd.pid"
    echo "TmpFS=$state/%n/tmp"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobCompType=jobcomp/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_CPU"
    echo "SchedulerType=sched/backfill"
    echo "SchedulerParameters=sched_interval=2,bf_interval=2"
    echo "MpiDefault=pmix"
    echo "ReturnToService=2"
    echo "SlurmdParameters=config_overrides"  # the CPUs below, whatever the host has
    echo "KillWait=30"
    echo "MinJobAge=600"
    echo "SlurmctldDebug=info"
    echo "SlurmdDebug=info"
    while read -r node; do
      echo "NodeName=$node NodeAddr=$(addr_of "$node") CPUs=$cpus State=UNKNOWN"
    done < "$state/nodes"
    echo "PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
  } > "$conf"
  # slurmd loads its cgroup plugin even when nothing uses it; inside `ip netns exec` /sys is a fresh sysfs with no
  # cgroup file system mounted, where only cgroup/v1 initialises (autodetect fails). Nothing here uses cgroups.
  echo "CgroupPlugin=cgroup/v1" > "$state/cgroup.conf"
}

cmd_up() {
  local count="" cpus
  cpus="$(nproc)"
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) count="${2:-}"; shift 2 || die "--nodes needs a number" ;;
      --nodes=*) count="${1#--nodes=}"; shift ;;
      --cpus) cpus="${2:-}"; shift 2 || die "--cpus needs a number" ;;
      --cpus=*) cpus="${1#--cpus=}"; shift ;;
      *) die "unknown option '$1' for up; valid: up [--nodes N] [--cpus C]" ;;
    esac
  done
  [ -z "$count" ] || [[ "$count" =~ ^[0-9]+$ && "$count" -ge 1 ]] || die "--nodes must be a positive number, not '$count'"
  [[ "$cpus" =~ ^[0-9]+$ ]] && [ "$cpus" -ge 1 ] || die "--cpus must be a positive number, not '$cpus'"
  need_root
  need_slurm
  local all=()
  mapfile -t all < <(cluster_nodes)
  [ ${#all[@]} -gt 0 ] || exit 2
  count="${count:-${#all[@]}}"
  [ "$count" -le ${#all[@]} ] ||
    die "cluster '$name' has ${#all[@]} nodes, so --nodes must be 1 to ${#all[@]}, not $count (or bring up a larger cluster)"
  if is_up; then
    if live_pid "$state/ctld/slurmctld.pid" slurmctld > /dev/null; then
      die "Slurm is already up on cluster '$name' ($(slurm_nodes | wc -l) nodes); run launch/slurm_local.sh down first"
    fi
    cmd_down > /dev/null 2>&1 || true  # daemons gone (e.g. cluster.sh down ran first): only files are left
  fi
  rm -rf "$state"
  mkdir -p "$state/munge" "$state/ctld"
  chmod 755 /run/ringtrain-slurm "$state" "$state/munge"  # munged wants its socket's directories open to all
  [ -n "${RT_SLURM_DEBUG:-}" ] || trap 'cmd_down > /dev/null 2>&1' EXIT  # an up that fails midway leaves nothing
  printf '%s\n' "${all[@]:0:$count}" > "$state/nodes.tmp"
  mv "$state/nodes.tmp" "$state/nodes"
  local node first
  first="$(first_node)"
  while read -r node; do mkdir -p "$state/$node/spool" "$state/$node/tmp"; done < "$state/nodes"
  write_conf "$cpus"

  # munged with a key of its own, on the first node (so that cluster.sh down ends it too).
  head -c 1024 /dev/urandom > "$state/munge/munge.key"
  chmod 400 "$state/munge/munge.key"
  start_on "$first" "$state/munge/munged.log" munged --foreground --key-file="$state/munge/munge.key" \
    --socket="$state/munge/munge.socket" --pid-file="$state/munge/munged.pid" --seed-file="$state/munge/munged.seed"
  wait_for 10 sh -c "munge -S '$state/munge/munge.socket' -n | unmunge -S '$state/munge/munge.socket'" ||
    fail "munged did not start within 10 s" "$state/munge/munged.log"

  start_on "$first" "$state/ctld/slurmctld.out" slurmctld -D -c -f "$conf"
  wait_for 20 on_first scontrol ping ||
    fail "slurmctld on $first did not answer within 20 s" "$state/ctld/slurmctld.log"
  while read -r node; do
    start_on "$node" "$state/$node/slurmd.out" slurmd -D -N "$node" -f "$conf"
  done < "$state/nodes"
  local n
  n="$(wc -l < "$state/nodes")"
  idle_count() { on_first sinfo -h -N -t idle -o %N 2> /dev/null | sort -u | wc -l; }
  all_idle() { [ "$(idle_count)" -eq "$n" ]; }
  if ! wait_for 30 all_idle; then
    local bad
    bad="$(on_first sinfo -h -N -o '%N %T' 2> /dev/null | grep -v ' idle$' | head -n 1 | awk '{print $1}')"
    fail "not every node became idle within 30 s: $(on_first sinfo -h -N -o '%N %T' 2> /dev/null | tr '\n' ' ')" \
      "$state/${bad:-$first}/slurmd.out"
  fi
  touch "$state/up"
  trap - EXIT
  echo "slurm is up on cluster '$name': slurmctld on $first, $n nodes idle ($(slurm_nodes | tr '\n' ' ' | sed 's/ $//'))," \
       "$cpus CPUs each; SLURM_CONF=$conf"
}

# Ends PID and every process below it: SIGTERM, then SIGKILL for whatever is left after a few seconds.
stop_tree() {
  local sig pid
  for sig in TERM KILL; do
    local pids=()
    for pid in "$@"; do
      [ -d "/proc/$pid" ] && pids+=("$pid" $(descendants "$pid"))
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    kill -s "$sig" "${pids[@]}" 2> /dev/null || true
    for _ in $(seq 25); do
      local alive=0
      for pid in "${pids[@]}"; do
        case "$(ps -o stat= -p "$pid" 2> /dev/null)" in "" | Z*) ;; *) alive=1 ;; esac  # gone, or a zombie
      done
      [ "$alive" = 0 ] && return 0
      sleep 0.2
    done
  done
}

descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2> /dev/null); do
    echo "$child"
    descendants "$child"
  done
}

cmd_down() {
  need_root
  if [ ! -d "$state" ]; then
    echo "slurm on cluster '$name' is down"
    return 0
  fi
  local ctld node pid
  # Jobs first, while slurmctld can still tell the nodes: their tasks get SIGKILL, not a grace period.
  if ctld="$(live_pid "$state/ctld/slurmctld.pid" slurmctld)" && [ -f "$state/nodes" ]; then
    local jobs
    jobs="$(on_first squeue -h -o %A 2> /dev/null | tr '\n' ' ' || true)"
    if [ -n "${jobs// /}" ]; then
      # shellcheck disable=SC2086
      on_first scancel --full --signal=KILL $jobs > /dev/null 2>&1 || true
      # shellcheck disable=SC2086
      on_first scancel $jobs > /dev/null 2>&1 || true
    fi
  fi
  # slurmd and the step daemons it started (with the tasks below them), node by node.
  local daemons=()
  if [ -f "$state/nodes" ]; then
    while read -r node; do
      pid="$(live_pid "$state/$node/slurmd.pid" slurmd)" && daemons+=("$pid")
      # slurmstepd outlives slurmd; in this node's namespace it is one of ours.
      for pid in $(ip netns pids "$node" 2> /dev/null || true); do
        [ "$(cat "/proc/$pid/comm" 2> /dev/null)" = slurmstepd ] && daemons+=("$pid")
      done
    done < "$state/nodes"
  fi
  [ ${#daemons[@]} -gt 0 ] && stop_tree "${daemons[@]}"
  pid="$(live_pid "$state/ctld/slurmctld.pid" slurmctld)" && stop_tree "$pid"
  pid="$(live_pid "$state/munge/munged.pid" munged)" && stop_tree "$pid"
  rm -rf "$state"
  rmdir /run/ringtrain-slurm 2> /dev/null || true
  echo "slurm on cluster '$name' is down"
}

cmd_status() {
  need_root
  if ! is_up; then
    echo "slurm on cluster '$name' is not up"
    return 0
  fi
  local node pid
  pid="$(live_pid "$state/munge/munged.pid" munged)" && echo "munged     pid $pid" || echo "munged     not running"
  pid="$(live_pid "$state/ctld/slurmctld.pid" slurmctld)" && echo "slurmctld  pid $pid on $(first_node)" ||
    echo "slurmctld  not running"
  while read -r node; do
    pid="$(live_pid "$state/$node/slurmd.pid" slurmd)" && echo "slurmd     pid $pid on $node" || echo "slurmd     not running on $node"
  done < "$state/nodes"
  echo "SLURM_CONF=$conf"
  on_first sinfo -N -o '%N %T %c' 2> /dev/null || true
  on_first squeue 2> /dev/null || true
}

cmd_exec() {
  [ $# -gt 0 ] || die "exec needs a command: exec CMD ... (e.g. exec sbatch launch/slurm.sbatch)"
  need_root
  is_up || die "slurm is not up on cluster '$name'; start it with: launch/slurm_local.sh up"
  on_first "$@"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  conf) is_up || die "slurm is not up on cluster '$name'; start it with: launch/slurm_local.sh up"; echo "$conf" ;;
  exec) cmd_exec "$@" ;;
  sbatch | srun | salloc | squeue | sinfo | scontrol | scancel) cmd_exec "$cmd" "$@" ;;
  "" | -h | --help | help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$self" ;;
  *) die "unknown command '$cmd'; valid: up, down, status, conf, exec, sbatch, srun, salloc, squeue, sinfo, scontrol, scancel" ;;
esac
