# shellcheck shell=bash
# Network-namespace topology for scripts/bench_throughput.sh (sourced, needs root).
#
#   fzbcli [fzbc0 198.18.0.1] ─veth─ [fzbmc] fzbmid [fzbmg] ─veth─ [fzbg0 198.18.0.2] fzbgw
#          fzbgw [fzbg1 198.19.0.1] ─veth─ [fzbs0 198.19.0.2] fzbsrv
#
# fzbmid joins its two veth ends at layer 2: a kernel bridge (no delay) or our user-space delay line
# (scripts/bench/delay_line.c; this kernel has no netem). fzbgw has ip_forward=1 and an nftables
# masquerade out of fzbg1, as a gateway host would. Every name created here starts with "fzb".
# Tunnel: client 100.64.0.1/32, gateway 100.64.0.2/24, UDP port 51820.

FZB_NS_CLI=fzbcli
FZB_NS_MID=fzbmid
FZB_NS_GW=fzbgw
FZB_NS_SRV=fzbsrv
FZB_NAMESPACES="$FZB_NS_CLI $FZB_NS_MID $FZB_NS_GW $FZB_NS_SRV"
FZB_IF_CLI=fzbc0
FZB_IF_MID_C=fzbmc
FZB_IF_MID_G=fzbmg
FZB_IF_MID_BR=fzbbr
FZB_IF_GW_WAN=fzbg0
FZB_IF_GW_LAN=fzbg1
FZB_IF_SRV=fzbs0
FZB_IP_CLI=198.18.0.1
FZB_IP_GW_WAN=198.18.0.2
FZB_IP_GW_LAN=198.19.0.1
FZB_IP_SRV=198.19.0.2
FZB_SRV_NET=198.19.0.0/24
FZB_TUN_CLI_IP=100.64.0.1
FZB_TUN_GW_IP=100.64.0.2
FZB_TUN_NET=100.64.0.0/24
FZB_GW_PORT=51820
# wireguard-go keeps its UAPI socket in the host-wide /var/run/wireguard: unique names matter.
FZB_WG_IF_CLI=fzbwgc
FZB_WG_IF_GW=fzbwgg
# TUN names of fz-gateway standalone (per namespace, so they could be equal; distinct reads better)
FZB_FZ_IF_CLI=fzbtunc
FZB_FZ_IF_GW=fzbtung

FZB_RUN=${FZB_RUN:-/tmp/fzb-run}
FZB_MID_MODE=none

fzb_log() { echo "[fzb $(date +%T)] $*" >&2; }
fzb_die() {
  echo "[fzb] ERROR: $*" >&2
  exit 1
}
fzb_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

# Waits until a command succeeds: fzb_wait_for TIMEOUT_S CMD...
fzb_wait_for() {
  local timeout=$1 end
  shift
  end=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.2
  done
}

# Stops the process in a pid file (that pid only): TERM, then KILL after 5 s.
fzb_kill_pidfile() {
  local f=$1 pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    # reap it if it is our child, so that its exit code is not left as a zombie
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# Builds the delay line if it is missing or older than its source. Sets FZB_DELAY_BIN.
fzb_build_delay_line() {
  local src build
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/delay_line.c"
  build=${FZB_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/bench}
  mkdir -p "$build"
  FZB_DELAY_BIN="$build/delay_line"
  if [ ! -x "$FZB_DELAY_BIN" ] || [ "$src" -nt "$FZB_DELAY_BIN" ]; then
    gcc -O2 -Wall -pthread -o "$FZB_DELAY_BIN" "$src" || fzb_die "building $src failed"
  fi
}

fzb_topology_down() {
  local ns pid
  fzb_kill_pidfile "$FZB_RUN/delay_line.pid"
  for f in "$FZB_RUN"/*.pid; do [ -e "$f" ] && fzb_kill_pidfile "$f"; done
  # Anything still inside one of our namespaces was started by us: stop it by pid.
  for ns in $FZB_NAMESPACES; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  sleep 0.2
  for ns in $FZB_NAMESPACES; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -f "/var/run/wireguard/$FZB_WG_IF_CLI.sock" "/var/run/wireguard/$FZB_WG_IF_GW.sock"
  FZB_MID_MODE=none
}

fzb_topology_up() {
  local ns
  fzb_topology_down
  mkdir -p "$FZB_RUN"
  for ns in $FZB_NAMESPACES; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip link add "$FZB_IF_CLI" netns "$FZB_NS_CLI" type veth peer name "$FZB_IF_MID_C" netns "$FZB_NS_MID"
  ip link add "$FZB_IF_GW_WAN" netns "$FZB_NS_GW" type veth peer name "$FZB_IF_MID_G" netns "$FZB_NS_MID"
  ip link add "$FZB_IF_GW_LAN" netns "$FZB_NS_GW" type veth peer name "$FZB_IF_SRV" netns "$FZB_NS_SRV"

  ip -n "$FZB_NS_CLI" addr add "$FZB_IP_CLI/24" dev "$FZB_IF_CLI"
  ip -n "$FZB_NS_CLI" link set "$FZB_IF_CLI" up

  ip -n "$FZB_NS_MID" link set "$FZB_IF_MID_C" up
  ip -n "$FZB_NS_MID" link set "$FZB_IF_MID_G" up
  # The middle namespace must never route: it has no addresses and no IP forwarding, and its IPv6
  # is off so it sends nothing of its own (router solicitations, DAD).
  fzb_ns "$FZB_NS_MID" sysctl -qw net.ipv6.conf.all.disable_ipv6=1

  ip -n "$FZB_NS_GW" addr add "$FZB_IP_GW_WAN/24" dev "$FZB_IF_GW_WAN"
  ip -n "$FZB_NS_GW" addr add "$FZB_IP_GW_LAN/24" dev "$FZB_IF_GW_LAN"
  ip -n "$FZB_NS_GW" link set "$FZB_IF_GW_WAN" up
  ip -n "$FZB_NS_GW" link set "$FZB_IF_GW_LAN" up
  fzb_ns "$FZB_NS_GW" sysctl -qw net.ipv4.ip_forward=1
  fzb_ns "$FZB_NS_GW" nft -f - <<NFT
table ip fzbgw {
  chain post { type nat hook postrouting priority srcnat; policy accept; oifname "$FZB_IF_GW_LAN" masquerade; }
}
NFT

  ip -n "$FZB_NS_SRV" addr add "$FZB_IP_SRV/24" dev "$FZB_IF_SRV"
  ip -n "$FZB_NS_SRV" link set "$FZB_IF_SRV" up
  ip -n "$FZB_NS_SRV" route add default via "$FZB_IP_GW_LAN"

  fzb_mid_set bridge 0 both
  fzb_wait_for 10 fzb_ns "$FZB_NS_CLI" ping -c1 -W1 "$FZB_IP_GW_WAN" || fzb_die "client cannot reach the gateway"
  fzb_wait_for 10 fzb_ns "$FZB_NS_GW" ping -c1 -W1 "$FZB_IP_SRV" || fzb_die "gateway cannot reach the server"
}

# Removes whatever joins the two veth ends in fzbmid (bridge, tc redirects, delay line, nft drop).
fzb_mid_clear() {
  local dev
  fzb_kill_pidfile "$FZB_RUN/delay_line.pid"
  ip -n "$FZB_NS_MID" link del "$FZB_IF_MID_BR" 2>/dev/null || true
  for dev in "$FZB_IF_MID_C" "$FZB_IF_MID_G"; do
    fzb_ns "$FZB_NS_MID" tc qdisc del dev "$dev" clsact 2>/dev/null || true
  done
  fzb_ns "$FZB_NS_MID" nft delete table netdev fzbmid 2>/dev/null || true
  FZB_MID_MODE=none
}

# Kernel-only forwarding of every frame arriving on $1 out of $2 (tc ingress mirred redirect).
fzb_mid_redirect() {
  fzb_ns "$FZB_NS_MID" tc qdisc add dev "$1" clsact
  # u32 "match u32 0 0" matches every frame (this kernel has no matchall classifier)
  fzb_ns "$FZB_NS_MID" tc filter add dev "$1" ingress protocol all prio 1 u32 match u32 0 0 \
    action mirred egress redirect dev "$2"
}

# fzb_mid_set MODE ONEWAY_MS DIRS
#   MODE bridge: kernel bridge, no delay (ONEWAY_MS must be 0)
#   MODE delay:  DIRS both = ONEWAY_MS added in each direction by the delay line;
#                DIRS c2g / g2c = only that direction goes through the delay line, with 2*ONEWAY_MS,
#                and the other is redirected in the kernel (same RTT, like netem on one interface).
fzb_mid_set() {
  local mode=$1 oneway=$2 dirs=$3 twice args
  local want="$mode:$oneway:$dirs"
  [ "$FZB_MID_MODE" = "$want" ] && return 0
  fzb_mid_clear
  if [ "$mode" = bridge ]; then
    ip -n "$FZB_NS_MID" link add "$FZB_IF_MID_BR" type bridge
    ip -n "$FZB_NS_MID" link set "$FZB_IF_MID_C" master "$FZB_IF_MID_BR"
    ip -n "$FZB_NS_MID" link set "$FZB_IF_MID_G" master "$FZB_IF_MID_BR"
    ip -n "$FZB_NS_MID" link set "$FZB_IF_MID_BR" up
  else
    fzb_build_delay_line
    # The delay line's packet sockets see each frame before this netdev ingress hook, which keeps
    # the middle namespace's own stack from handling (and possibly answering) the frames.
    fzb_ns "$FZB_NS_MID" nft -f - <<NFT
table netdev fzbmid {
  chain in_c { type filter hook ingress device "$FZB_IF_MID_C" priority 0; policy drop; }
  chain in_g { type filter hook ingress device "$FZB_IF_MID_G" priority 0; policy drop; }
}
NFT
    twice=$(awk -v d="$oneway" 'BEGIN{print 2*d}')
    case $dirs in
      both) args=(-A "$oneway" -B "$oneway") ;;
      c2g)
        args=(-A "$twice")
        fzb_mid_redirect "$FZB_IF_MID_G" "$FZB_IF_MID_C"
        ;;
      g2c)
        args=(-B "$twice")
        fzb_mid_redirect "$FZB_IF_MID_C" "$FZB_IF_MID_G"
        ;;
      *) fzb_die "delay directions must be both, c2g or g2c, not $dirs" ;;
    esac
    setsid ip netns exec "$FZB_NS_MID" "$FZB_DELAY_BIN" -a "$FZB_IF_MID_C" -b "$FZB_IF_MID_G" "${args[@]}" \
      >"$FZB_RUN/delay_line.log" 2>&1 </dev/null &
    echo $! >"$FZB_RUN/delay_line.pid"
  fi
  FZB_MID_MODE=$want
  fzb_wait_for 10 fzb_ns "$FZB_NS_CLI" ping -c1 -W2 "$FZB_IP_GW_WAN" ||
    fzb_die "client cannot reach the gateway through the middle namespace ($want)"
}

# Last counters line of the delay line (asks it for a fresh one); empty without a delay line.
fzb_delay_counters() {
  local f="$FZB_RUN/delay_line.pid"
  [ -f "$f" ] || return 0
  kill -USR1 "$(cat "$f")" 2>/dev/null || return 0
  sleep 0.1
  grep '^{"delay_line"' "$FZB_RUN/delay_line.log" | tail -1
}

# Average client -> gateway RTT in ms over 5 pings.
fzb_rtt_ms() {
  fzb_ns "$FZB_NS_CLI" ping -c5 -i0.2 -q "$FZB_IP_GW_WAN" | awk -F/ '/^rtt/{print $5}'
}
