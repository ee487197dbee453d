#!/usr/bin/env bash
# Launches a ringtrain command under mpirun with parallel.cp x parallel.dp x parallel.ulysses ranks, on this host, on
# the nodes of a hostfile, or on the local cluster (launch/cluster.sh), each cp ring (with Ulysses: each Ulysses group)
# kept inside one node where the slots allow.
#
#   launch/run.sh [--hostfile FILE [--agent CMD] | --local-cluster] [--dry-run] train [ringtrain options ...]
#
#   --hostfile FILE   Open MPI hostfile ("node slots=N" lines); mpirun starts its daemons with --agent (default ssh)
#   --local-cluster   the nodes of the running local cluster (launch/cluster.sh up N; RINGTRAIN_CLUSTER names it)
#   --dry-run         print the mpirun command instead of running it
#
# The rank count, the cp ring size and the deadline come from `ringtrain config` with the same options, so a config
# file, --set and a checkpoint's saved config (--resume) all count. Slots are used node by node in hostfile order,
# with each node's count rounded down to a multiple of cp (ulysses), so that consecutive ranks (one ring, or one
# Ulysses group) share a node; when
# the rings cannot all fit inside nodes, the hostfile is used as it is and ringtrain's start line says which ring
# spans nodes. Across nodes, mpirun's daemon connections get TCP keepalive that gives up on a node whose link stays
# down a little after parallel.comm_timeout_s (so that mpirun ends the job instead of waiting ~15 min for TCP).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${RINGTRAIN_BIN:-$root/build/trainer/ringtrain}"
# Outside the source tree (a bundle's share/ringtrain/launch/run.sh, launch/bundle.sh): the ringtrain on PATH.
[ -n "${RINGTRAIN_BIN:-}" ] || [ -x "$bin" ] || bin="$(command -v ringtrain || echo "$bin")"

die() {
  echo "run.sh: error: $*" >&2
  exit 2
}

hostfile="" agent="" local_cluster=0 dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --hostfile) hostfile="${2:-}"; [ -n "$hostfile" ] || die "--hostfile needs a file"; shift 2 ;;
    --hostfile=*) hostfile="${1#--hostfile=}"; shift ;;
    --agent) agent="${2:-}"; [ -n "$agent" ] || die "--agent needs a command"; shift 2 ;;
    --agent=*) agent="${1#--agent=}"; shift ;;
    --local-cluster) local_cluster=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -*) die "unknown option '$1'; valid before the command: --hostfile FILE, --agent CMD, --local-cluster, --dry-run" ;;
    *) break ;;
  esac
done
command="${1:-}"
[ "$command" = train ] || die "the command must be 'train' (then ringtrain's options), not '${command}'"
shift
[ -n "$hostfile" ] && [ "$local_cluster" = 1 ] && die "--hostfile and --local-cluster name the nodes twice; give one"
[ -n "$agent" ] && [ -z "$hostfile" ] && die "--agent starts daemons on a hostfile's nodes; give --hostfile too"
[ -x "$bin" ] || die "$bin is not built; run launch/setup.sh first"
command -v mpirun > /dev/null || die "mpirun is missing; install Debian's openmpi-bin (launch/setup.sh does)"

# The options `ringtrain config` understands (the ones that decide the config): --config F, --set k=v ..., --resume [P].
config_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --config | --resume) config_args+=("${args[i]}")
      if [ $((i + 1)) -lt ${#args[@]} ] && [[ "${args[i + 1]}" != --* ]]; then config_args+=("${args[i + 1]}"); i=$((i + 1)); fi ;;
    --config=* | --resume=*) config_args+=("${args[i]}") ;;
    --set) config_args+=(--set)
      while [ $((i + 1)) -lt ${#args[@]} ] && [[ "${args[i + 1]}" != --* ]]; do config_args+=("${args[i + 1]}"); i=$((i + 1)); done ;;
  esac
done
mapfile -t values < <("$bin" config "${config_args[@]}" --get parallel.cp --get parallel.dp --get parallel.ulysses \
  --get parallel.comm_timeout_s) || exit 2  # ringtrain said what is wrong with the config
[ ${#values[@]} -eq 4 ] || exit 2
cp="${values[0]}" dp="${values[1]}" ulysses="${values[2]}" timeout_s="${values[3]}"
ranks=$((cp * dp * ulysses))
# What must not span nodes: a whole ring, or with Ulysses a whole Ulysses group (whose all-to-all is the heavy part;
# the ring then crosses nodes by design).
unit=$cp
[ "$ulysses" -gt 1 ] && unit=$ulysses

flags=(-np "$ranks" --bind-to none)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)

if [ -z "$hostfile" ] && [ "$local_cluster" = 0 ]; then
  # One host: shared memory only; more ranks than cores is allowed (each rank then takes fewer threads).
  flags+=(--oversubscribe --mca btl self,vader)
  launcher=(mpirun)
else
  if [ "$local_cluster" = 1 ]; then
    cluster="$root/launch/cluster.sh"
    hostfile="$("$cluster" hostfile)" || exit 2
    "$cluster" check || exit 2
    agent="$cluster agent"
  fi
  [ -r "$hostfile" ] || die "hostfile '$hostfile' does not exist or cannot be read"
  agent="${agent:-ssh}"
  read -r -a agent_words <<< "$agent"
  command -v "${agent_words[0]}" > /dev/null ||
    die "mpirun starts its daemons on the hostfile's nodes with '${agent_words[0]}', which is not installed; install it (openssh-client for ssh) or give --agent CMD"
  # "node slots=N" (slots defaults to 1 as in Open MPI; "#" starts a comment).
  nodes=() slots=()
  while read -r line; do
    line="${line%%#*}"
    read -r -a words <<< "$line"
    [ ${#words[@]} -gt 0 ] || continue
    n=1
    for w in "${words[@]:1}"; do
      case "$w" in
        slots=*) n="${w#slots=}" ;;
        max_slots=*) ;;
        *) die "hostfile '$hostfile': '$w' after node ${words[0]} is not slots=N" ;;
      esac
    done
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "hostfile '$hostfile': node ${words[0]} has slots=$n; slots must be a positive number"
    nodes+=("${words[0]}")
    slots+=("$n")
  done < "$hostfile"
  [ ${#nodes[@]} -gt 0 ] || die "hostfile '$hostfile' names no node; write one 'node slots=N' line per node"
  total=0
  for n in "${slots[@]}"; do total=$((total + n)); done
  [ "$total" -ge "$ranks" ] ||
    die "hostfile '$hostfile' has $total slots on ${#nodes[@]} nodes but the job needs parallel.cp x parallel.dp x parallel.ulysses = $cp x $dp x $ulysses = $ranks ranks; add nodes or slots, or lower parallel.cp, parallel.dp or parallel.ulysses"
  # Every node must answer through the agent before mpirun starts (it would otherwise hang or print pages).
  for node in "${nodes[@]}"; do
    out="$(timeout 15 "${agent_words[@]}" "$node" true 2>&1)" ||
      die "node '$node' of hostfile '$hostfile' cannot be reached through '$agent': ${out:-no answer in 15 s}"
  done
  # Slots rounded down to whole rings (Ulysses groups) per node, so that none spans nodes, where that leaves enough.
  ring_slots=0
  for n in "${slots[@]}"; do ring_slots=$((ring_slots + n / unit * unit)); done
  if [ "$ring_slots" -ge "$ranks" ]; then
    mapped="$(mktemp /tmp/ringtrain-hosts.XXXXXX)"
    [ "$dry_run" = 1 ] || trap 'rm -f "$mapped"' EXIT  # a dry run leaves it for the command it prints
    for ((i = 0; i < ${#nodes[@]}; i++)); do
      [ $((slots[i] / unit)) -gt 0 ] && echo "${nodes[i]} slots=$((slots[i] / unit * unit))"
    done > "$mapped"
    hostfile="$mapped"
  fi
  # TCP keepalive on the daemons' connections: a probe a second after 1 s idle; given up after about
  # comm_timeout_s + 2 s of silence (at most 127 probes, so the interval grows for long deadlines).
  budget=$(awk -v t="$timeout_s" 'BEGIN { x = t + 2; print (x == int(x)) ? x : int(x) + 1 }')
  interval=$(((budget + 126) / 127))
  probes=$(((budget + interval - 1) / interval))
  flags+=(--hostfile "$hostfile" --map-by slot --mca oob_tcp_keepalive_time 1 --mca oob_tcp_keepalive_intvl "$interval" --mca oob_tcp_keepalive_probes "$probes")
  if [ "$local_cluster" = 1 ]; then
    launcher=("$cluster" mpirun)  # inside the first node, with the cluster's agent and TCP settings
  else
    launcher=(mpirun)
    # Where the nodes talk TCP, sends only: the TCP BTL's emulated RDMA put halves a link's rate (docs/multinode.md).
    flags+=(--mca plm_rsh_agent "$agent" --mca btl_tcp_flags send,inplace,need-ack,need-csum)
  fi
fi

cmd=("${launcher[@]}" "${flags[@]}" "$bin" "$command" "$@")
if [ "$dry_run" = 1 ]; then
  printf '%q ' "${cmd[@]}"
  echo
  exit 0
fi
# Not exec: the mapped hostfile is removed when mpirun ends.
status=0
"${cmd[@]}" || status=$?
exit "$status"
