#!/usr/bin/env bash
# A local cluster to rehearse multi-node jobs on one Linux host: N nodes, each a network + UTS namespace with its own
# hostname and address, joined by veth pairs to a bridge in a switch namespace; mpirun reaches them through an rsh agent.
#
#   launch/cluster.sh up N [--slots S]    make N nodes (<name>-node0 ...), write the hostfile; S slots each (default: cores)
#   launch/cluster.sh hostfile            print the hostfile's path (lines "<name>-node<i> slots=S")
#   launch/cluster.sh nodes               print the node names, one per line
#   launch/cluster.sh exec NODE CMD ...   run CMD on NODE (inside its namespaces)
#   launch/cluster.sh mpirun ARGS ...     mpirun on the first node over every node (hostfile, agent, TCP between nodes)
#   launch/cluster.sh shape RATE|off      limit every node's link to RATE in each direction (tc tbf: 1gbit, 10gbit, ...)
#   launch/cluster.sh link NODE up|down   take one node's link down or bring it back
#   launch/cluster.sh bytes NODE          bytes NODE's link has sent and received: "TX RX"
#   launch/cluster.sh status              the nodes, their addresses, links and processes
#   launch/cluster.sh check               every node answers the first over the bridge (else exit 2 naming it)
#   launch/cluster.sh down                remove everything: processes, namespaces, links, files
#   launch/cluster.sh agent HOST CMD      the rsh agent Open MPI calls (plm_rsh_agent) to start its daemon on HOST
#
# The cluster is named by RINGTRAIN_CLUSTER (default rtc), so tests can run their own beside a user's. Needs root.
set -euo pipefail

name="${RINGTRAIN_CLUSTER:-rtc}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
self="$here/cluster.sh"
state="/run/ringtrain-cluster/$name"
switch="$name-switch"
subnet="10.213.0"  # nodes are $subnet.1, .2, ...; the subnet exists only inside this cluster's namespaces

die() {  # one sentence, exit 2 (the user's mistake or a missing requirement)
  echo "cluster.sh: error: $*" >&2
  exit 2
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "the local cluster needs root (network namespaces, veth links, tc); run it as root or with sudo"
  command -v ip > /dev/null || die "'ip' is missing; install Debian's iproute2"
  command -v nsenter > /dev/null || die "'nsenter' is missing; install Debian's util-linux"
}

is_up() { [ -f "$state/nodes" ]; }

nodes() {
  is_up || die "cluster '$name' is not up; start it with: launch/cluster.sh up N"
  cat "$state/nodes"
}

node_index() {  # node name -> its index, or a sentence naming the valid nodes
  local i=0 n
  while read -r n; do
    if [ "$n" = "$1" ]; then
      echo "$i"
      return
    fi
    i=$((i + 1))
  done < <(nodes)
  die "'$1' is not a node of cluster '$name'; its nodes are: $(nodes | tr '\n' ' ')"
}

# Runs a command inside NODE's network and UTS namespaces (ip netns exec also mounts /etc/netns/NODE/hosts on /etc/hosts).
in_node() {
  local node="$1"
  shift
  ip netns exec "$node" nsenter --uts="$state/$node.uts" -- "$@"
}

reachable() {  # NODE ADDRESS: a TCP connection from NODE to a closed port of ADDRESS is refused, not timed out (5 s)
  local until=$((SECONDS + 5))
  while [ $SECONDS -lt $until ]; do
    [[ "$(in_node "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1)" == *"Connection refused"* ]] && return 0
    sleep 0.2
  done
  return 1
}

cmd_up() {
  local count="${1:-}" slots
  slots="$(nproc)"
  shift || true
  while [ $# -gt 0 ]; do
    case "$1" in
      --slots) slots="${2:-}"; shift 2 || die "--slots needs a number" ;;
      --slots=*) slots="${1#--slots=}"; shift ;;
      *) die "unknown option '$1' for up; valid: up N [--slots S]" ;;
    esac
  done
  [[ "$count" =~ ^[0-9]+$ ]] && [ "$count" -ge 1 ] && [ "$count" -le 64 ] ||
    die "up needs a node count from 1 to 64, not '$count'"
  [[ "$slots" =~ ^[0-9]+$ ]] && [ "$slots" -ge 1 ] || die "--slots must be a positive number, not '$slots'"
  need_root
  is_up && die "cluster '$name' is already up with $(wc -l < "$state/nodes") nodes; run launch/cluster.sh down first"
  cmd_down > /dev/null 2>&1 || true  # leftovers of an interrupted up
  mkdir -p "$state"
  [ -n "${RT_CLUSTER_DEBUG:-}" ] || trap 'cmd_down > /dev/null 2>&1' EXIT  # an up that fails midway leaves nothing

  ip netns add "$switch"
  ip -n "$switch" link add br0 type bridge
  ip -n "$switch" link set br0 up
  ip -n "$switch" link set lo up
  local hosts="127.0.0.1 localhost"$'\n'
  for ((i = 0; i < count; i++)); do hosts+="$subnet.$((i + 1)) $name-node$i"$'\n'; done
  : > "$state/hostfile.tmp"
  for ((i = 0; i < count; i++)); do
    local node="$name-node$i"
    ip netns add "$node"
    touch "$state/$node.uts"
    unshare --uts="$state/$node.uts" hostname "$node"
    mkdir -p "/etc/netns/$node"
    printf '%s' "$hosts" > "/etc/netns/$node/hosts"
    ip -n "$node" link add eth0 type veth peer name "n$i" netns "$switch"
    ip -n "$switch" link set "n$i" master br0 up
    ip -n "$node" addr add "$subnet.$((i + 1))/24" dev eth0
    ip -n "$node" link set eth0 up
    ip -n "$node" link set lo up
    echo "$node slots=$slots" >> "$state/hostfile.tmp"
  done
  for ((i = 0; i < count; i++)); do echo "$name-node$i"; done > "$state/nodes.tmp"
  mv "$state/hostfile.tmp" "$state/hostfile"
  mv "$state/nodes.tmp" "$state/nodes"
  # Every node answers every other before we say the cluster is up.
  for ((i = 1; i < count; i++)); do
    reachable "$name-node0" "$subnet.$((i + 1))" || die "node $name-node$i does not answer node0 on the bridge"
  done
  trap - EXIT
  echo "cluster '$name' is up: $count nodes ($name-node0 .. $name-node$((count - 1))), $slots slots each; hostfile $state/hostfile"
}

cmd_down() {
  need_root
  local ns
  # Every namespace of this cluster, also those of an up that failed midway (no nodes file yet).
  for ns in $(ip netns list 2> /dev/null | awk '{print $1}' | grep -E "^$name-(node[0-9]+|switch)$" || true); do
    local pids
    pids="$(ip netns pids "$ns" 2> /dev/null || true)"
    [ -n "$pids" ] && kill -9 $pids 2> /dev/null || true
  done
  for ns in $(ip netns list 2> /dev/null | awk '{print $1}' | grep -E "^$name-(node[0-9]+|switch)$" || true); do
    for _ in 1 2 3 4 5 6 7 8 9 10; do  # killed processes may take a moment to leave the namespace
      [ -z "$(ip netns pids "$ns" 2> /dev/null)" ] && break
      sleep 0.2
    done
    ip netns del "$ns" 2> /dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  if [ -d "$state" ]; then
    for f in "$state"/*.uts; do
      [ -e "$f" ] || continue
      umount "$f" 2> /dev/null || true
    done
    rm -rf "$state"
  fi
  rmdir /etc/netns /run/ringtrain-cluster 2> /dev/null || true
  echo "cluster '$name' is down"
}

cmd_exec() {
  local node="${1:-}"
  [ -n "$node" ] || die "exec needs a node and a command: exec NODE CMD ..."
  shift
  [ $# -gt 0 ] || die "exec needs a command after the node: exec $node CMD ..."
  need_root
  node_index "$node" > /dev/null
  in_node "$node" "$@"
}

# The rsh agent: Open MPI runs "<agent> [options] HOST COMMAND..." to start orted on HOST. We enter HOST's namespaces
# and run the command with sh, as rsh would.
cmd_agent() {
  while [ $# -gt 0 ] && [[ "$1" == -* ]]; do shift; done  # options Open MPI passes to ssh-like agents
  local host="${1:-}"
  shift || die "the agent needs a host and a command"
  need_root
  local node="$host"
  if ! grep -qx -- "$host" "$state/nodes" 2> /dev/null; then  # an address: the node it belongs to
    local i=0 n
    node=""
    while read -r n; do
      [ "$host" = "$subnet.$((i + 1))" ] && node="$n"
      i=$((i + 1))
    done < <(nodes)
    [ -n "$node" ] || die "host '$host' is not a node of cluster '$name'; its nodes are: $(nodes | tr '\n' ' ')"
  fi
  in_node "$node" sh -c "$*"
}

# mpirun flags that make a job use the cluster: the agent, TCP between nodes over eth0 (sends only: the TCP BTL's
# emulated RDMA put reaches half the rate of a shaped link, docs/multinode.md), shared memory inside a node, and
# yielding while waiting (all the nodes share this host's cores). The cluster's hostfile unless ARGS name one.
mpirun_flags() {
  local flags=(--mca plm_rsh_agent "$self agent" --mca btl self,vader,tcp --mca btl_tcp_if_include eth0
               --mca btl_tcp_flags send,inplace,need-ack,need-csum
               --mca oob_tcp_if_include eth0 --mca mpi_yield_when_idle 1 -x RINGTRAIN_CLUSTER="$name")
  [[ " $* " == *" --hostfile "* ]] || flags+=(--hostfile "$state/hostfile")
  [ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
  printf '%s\n' "${flags[@]}"
}

cmd_mpirun() {
  need_root
  command -v mpirun > /dev/null || die "'mpirun' is missing; install Debian's openmpi-bin (launch/setup.sh does)"
  local first flags
  first="$(nodes | head -n 1)"
  mapfile -t flags < <(mpirun_flags "$@")
  in_node "$first" mpirun "${flags[@]}" "$@"
}

# tc tbf on both ends of every node's link: the node's eth0 shapes what it sends, the switch port what it receives.
cmd_shape() {
  local rate="${1:-}"
  need_root
  case "$rate" in
    "") die "shape needs a rate (e.g. 1gbit, 10gbit, 25gbit) or 'off'" ;;
    --delay* | --latency* | --loss* | delay* | latency* | loss*)
      die "this kernel has no netem, so latency and packet loss cannot be emulated; shape can only limit the rate (tc tbf)" ;;
  esac
  local i=0 node
  while read -r node; do
    for dev in "$node eth0" "$switch n$i"; do
      set -- $dev
      ip netns exec "$1" tc qdisc del dev "$2" root 2> /dev/null || true
      [ "$rate" = off ] && continue
      # burst: a quarter millisecond of traffic (tbf's timers are high-resolution: 10gbit holds 9.6 Gbit/s with it),
      # at least two 64 KiB GSO packets; a larger bucket lets the first megabytes of a transfer pass unshaped.
      local bps
      bps="$(rate_bits "$rate")" || die "rate '$rate' is not a tc rate; valid: a number with kbit, mbit or gbit (e.g. 10gbit), or off"
      local burst=$((bps / 8 / 4000))
      [ "$burst" -lt 131072 ] && burst=131072
      ip netns exec "$1" tc qdisc add dev "$2" root tbf rate "$rate" burst "$burst" latency 100ms
    done
    i=$((i + 1))
  done < <(nodes)
  [ "$rate" = off ] && echo "links of cluster '$name' unshaped" || echo "links of cluster '$name' shaped to $rate each way"
}

rate_bits() {  # 10gbit -> 10000000000
  local r="$1" n unit
  [[ "$r" =~ ^([0-9]+)(kbit|mbit|gbit)$ ]] || return 1
  n="${BASH_REMATCH[1]}"
  unit="${BASH_REMATCH[2]}"
  case "$unit" in kbit) echo $((n * 1000)) ;; mbit) echo $((n * 1000000)) ;; gbit) echo $((n * 1000000000)) ;; esac
}

cmd_link() {
  local node="${1:-}" updown="${2:-}"
  need_root
  [ "$updown" = up ] || [ "$updown" = down ] || die "link needs a node and up or down: link NODE up|down"
  local i
  i="$(node_index "$node")"
  ip -n "$switch" link set "n$i" "$updown"
}

cmd_bytes() {
  local node="${1:-}"
  need_root
  node_index "$node" > /dev/null
  ip netns exec "$node" sh -c 'echo "$(cat /sys/class/net/eth0/statistics/tx_bytes) $(cat /sys/class/net/eth0/statistics/rx_bytes)"'
}

cmd_check() {
  need_root
  local first i=0 node
  first="$(nodes | head -n 1)"
  while read -r node; do
    [ $i -gt 0 ] && { reachable "$first" "$subnet.$((i + 1))" ||
      die "node $node ($subnet.$((i + 1))) does not answer $first over the bridge; is its link down? (launch/cluster.sh link $node up)"; }
    i=$((i + 1))
  done < <(nodes)
}

cmd_status() {
  need_root
  is_up || {
    echo "cluster '$name' is not up"
    return 0
  }
  local i=0 node
  while read -r node; do
    local qdisc link procs
    qdisc="$(ip netns exec "$node" tc qdisc show dev eth0 | grep -o 'tbf.*rate [^ ]*' | awk '{print $NF}' || true)"
    link="$(ip -n "$switch" -o link show "n$i" | grep -q 'state UP' && echo up || echo down)"
    procs="$(ip netns pids "$node" | wc -l)"
    echo "$node $subnet.$((i + 1)) link $link rate ${qdisc:-unshaped} processes $procs bytes $(cmd_bytes "$node")"
    i=$((i + 1))
  done < <(nodes)
}

cmd="${1:-}"
shift || true
case "$cmd" in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  hostfile) nodes > /dev/null && echo "$state/hostfile" ;;
  nodes) nodes ;;
  exec) cmd_exec "$@" ;;
  mpirun) cmd_mpirun "$@" ;;
  agent) cmd_agent "$@" ;;
  shape) cmd_shape "$@" ;;
  link) cmd_link "$@" ;;
  bytes) cmd_bytes "$@" ;;
  status) cmd_status ;;
  check) cmd_check ;;
  "" | -h | --help | help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$self" ;;
  *) die "unknown command '$cmd'; valid: up, down, hostfile, nodes, exec, mpirun, shape, link, bytes, status, check, agent" ;;
esac
