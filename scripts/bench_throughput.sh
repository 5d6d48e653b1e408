#!/usr/bin/env bash
# Throughput benchmark of fz-gateway standalone against wireguard-go, in network namespaces (root).
#
#   fzbcli: iperf3 -c + tunnel client ─ fzbmid: bridge or delay line ─ fzbgw: tunnel gateway, forwards +
#   masquerades ─ fzbsrv: iperf3 -s                         (addresses: scripts/bench/netns.sh)
#
# One TCP stream, upload (fwd) and download (iperf3 -R), through:
#   fz     (a) fz-gateway standalone at both tunnel ends
#   wg     (b) wireguard-go at both ends (the reference)
#   mixed  (c) wireguard-go as the client, fz-gateway as the gateway
#   direct (d) no tunnel: the client routes the server LAN via the gateway host, which forwards in the kernel
# at 0 ms (kernel bridge) and +20 ms RTT (our user-space delay line, scripts/bench/delay_line.c: the kernel
# has no netem). Runs are interleaved round by round (round -> RTT -> config -> direction), so the ratios
# to (b) and (d) are taken back to back under the same background load.
#
# Per run it prints Gbit/s, retransmits, the CPU of every process in the gateway namespace (utime+stime
# from /proc, % of one core) and more (see scripts/bench/nsstat.py); at the end a summary table
# (scripts/bench/summary.py). When fz-gateway is the gateway and supports --health-check-addr, it also
# records, while the tunnel runs at full rate, the /healthz latency seen by a prober (a new connection
# every 20 ms from the server namespace) and the p99 lateness of the 10 ms timer in the gateway's main
# thread (GET /metrics/loop-lag).
#
# usage (as root): scripts/bench_throughput.sh [options]
#   --rounds N            rounds (default 3)
#   --time S              iperf3 -t seconds (default 10)
#   --configs LIST        comma-separated subset of fz,wg,mixed,direct (default all four)
#   --rtts LIST           comma-separated added RTTs in ms (default 0,20); 0 uses the kernel bridge
#   --delay-dirs ack|both ack (default): only the ACK direction goes through the delay line, with the
#                         whole RTT, and the data direction is redirected in the kernel; both: half the
#                         RTT in each direction (the delay line then carries the data and costs CPU)
#   --dirs LIST           fwd,rev (default both)
#   --out DIR             results directory (default /tmp/fzb-results/<date-time>)
#   --idle-wait S         before each run, wait up to S s for machine load <= --idle-max % (default 30)
#   --idle-max PCT        (default 15)
#   --ready-timeout S     tunnel readiness timeout (default 60)
#   --keep-logs           keep the tunnel logs of every run in the results directory (default: last only)
# env:
#   FZ_GW_CMD   how to run fz-gateway standalone; the config file is appended
#               (default: ./scripts/deno run --allow-all main.ts standalone --config, from the repo root)
#   FZ_GW_HEALTH auto (default: if `--help` lists --health-check-addr) | on | off
#   FZ_LOG      log filter for fz-gateway (default info)
#   PY          python3 interpreter (default python3)
# Settings are the kernel defaults (printed at start): TUN MTU 1280, tcp_wmem/tcp_rmem untouched.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/scripts/bench"
# shellcheck source=bench/netns.sh
source "$BENCH/netns.sh"

ROUNDS=3
TIME=10
CONFIGS="fz wg mixed direct"
RTTS="0 20"
DELAY_DIRS=ack
DIRS="fwd rev"
OUT=""
IDLE_WAIT=30
IDLE_MAX=15
READY_TIMEOUT=60
KEEP_LOGS=0
TUN_MTU=1280
HEALTH_PORT=18080
PY=${PY:-python3}
FZ_GW_CMD=${FZ_GW_CMD:-./scripts/deno run --allow-all --v8-flags=--max-inlined-bytecode-size-cumulative=20000 main.ts standalone --config}
FZ_GW_HEALTH=${FZ_GW_HEALTH:-auto}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --time) TIME=$2; shift 2 ;;
    --configs) CONFIGS=${2//,/ }; shift 2 ;;
    --rtts) RTTS=${2//,/ }; shift 2 ;;
    --delay-dirs) DELAY_DIRS=$2; shift 2 ;;
    --dirs) DIRS=${2//,/ }; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --idle-wait) IDLE_WAIT=$2; shift 2 ;;
    --idle-max) IDLE_MAX=$2; shift 2 ;;
    --ready-timeout) READY_TIMEOUT=$2; shift 2 ;;
    --keep-logs) KEEP_LOGS=1; shift ;;
    -h | --help) usage 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || fzb_die "--rounds must be a positive whole number"
[[ $TIME =~ ^[1-9][0-9]*$ ]] || fzb_die "--time must be a positive whole number of seconds"
case $DELAY_DIRS in ack | both) ;; *) fzb_die "--delay-dirs must be ack or both" ;; esac
for c in $CONFIGS; do
  case $c in fz | wg | mixed | direct) ;; *) fzb_die "unknown config $c: expected fz, wg, mixed or direct" ;; esac
done
for d in $DIRS; do case $d in fwd | rev) ;; *) fzb_die "unknown direction $d: expected fwd or rev" ;; esac; done
for t in $RTTS; do [[ $t =~ ^[0-9]+(\.[0-9]+)?$ ]] || fzb_die "bad RTT $t"; done

[ "$(id -u)" = 0 ] || fzb_die "must run as root (network namespaces)"
need=(ip nft tc iperf3 ping gcc "$PY")
case " $CONFIGS " in *" wg "* | *" mixed "*) need+=(wireguard-go) ;; esac
case " $CONFIGS " in *" fz "* | *" mixed "* | *" wg "*) need+=(wg) ;; esac
for c in "${need[@]}"; do command -v "$c" >/dev/null 2>&1 || fzb_die "missing command: $c"; done

cd "$REPO"
read -r -a GW_CMD <<<"$FZ_GW_CMD"
OUT=${OUT:-/tmp/fzb-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" "$FZB_RUN"
RUNS="$OUT/runs.tsv"

HEALTH=0
if [[ " $CONFIGS " == *" fz "* || " $CONFIGS " == *" mixed "* ]]; then
  case $FZ_GW_HEALTH in
    on) HEALTH=1 ;;
    off) HEALTH=0 ;;
    auto)
      help_cmd=("${GW_CMD[@]}")
      [ "${help_cmd[-1]}" = --config ] && unset 'help_cmd[-1]'
      help_text=$("${help_cmd[@]}" --help 2>&1 || true)
      if grep -q -- --health-check-addr <<<"$help_text"; then HEALTH=1; else
        fzb_log "fz-gateway standalone --help lists no --health-check-addr: no /healthz or loop-lag figures"
      fi
      ;;
    *) fzb_die "FZ_GW_HEALTH must be auto, on or off" ;;
  esac
fi

cleanup() {
  set +e
  stop_tunnel
  fzb_kill_pidfile "$FZB_RUN/iperf3-srv.pid"
  fzb_topology_down
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- keys and tunnel ends

new_keys() {
  (
    umask 077
    mkdir -p "$FZB_RUN/keys"
    for who in cli gw; do
      wg genkey >"$FZB_RUN/keys/$who.key"
      wg pubkey <"$FZB_RUN/keys/$who.key" >"$FZB_RUN/keys/$who.pub"
    done
  )
}

# start_wg ROLE: wireguard-go at one tunnel end (ROLE cli or gw)
start_wg() {
  local role=$1 ns ifname
  if [ "$role" = cli ]; then ns=$FZB_NS_CLI ifname=$FZB_WG_IF_CLI; else ns=$FZB_NS_GW ifname=$FZB_WG_IF_GW; fi
  rm -f "/var/run/wireguard/$ifname.sock"
  LOG_LEVEL=${WG_LOG_LEVEL:-error} setsid ip netns exec "$ns" wireguard-go -f "$ifname" \
    >"$FZB_RUN/$role.log" 2>&1 </dev/null &
  echo $! >"$FZB_RUN/$role.pid"
  fzb_wait_for 5 test -S "/var/run/wireguard/$ifname.sock" || fzb_die "wireguard-go did not start ($role)"
  if [ "$role" = cli ]; then
    fzb_ns "$ns" wg set "$ifname" private-key "$FZB_RUN/keys/cli.key" \
      peer "$(cat "$FZB_RUN/keys/gw.pub")" endpoint "$FZB_IP_GW_WAN:$FZB_GW_PORT" \
      allowed-ips "$FZB_SRV_NET,$FZB_TUN_NET"
    ip -n "$ns" addr add "$FZB_TUN_CLI_IP/32" dev "$ifname"
    ip -n "$ns" link set "$ifname" mtu "$TUN_MTU" up
    ip -n "$ns" route replace "$FZB_SRV_NET" dev "$ifname"
    ip -n "$ns" route replace "$FZB_TUN_NET" dev "$ifname"
  else
    fzb_ns "$ns" wg set "$ifname" private-key "$FZB_RUN/keys/gw.key" listen-port "$FZB_GW_PORT" \
      peer "$(cat "$FZB_RUN/keys/cli.pub")" allowed-ips "$FZB_TUN_CLI_IP/32"
    ip -n "$ns" addr add "$FZB_TUN_GW_IP/24" dev "$ifname"
    ip -n "$ns" link set "$ifname" mtu "$TUN_MTU" up
  fi
}

# start_fz ROLE: fz-gateway standalone at one tunnel end, configured by a wg-quick style file
start_fz() {
  local role=$1 ns cfg="$FZB_RUN/$1.conf" extra=()
  if [ "$role" = cli ]; then
    ns=$FZB_NS_CLI
    cat >"$cfg" <<EOF
[Interface]
PrivateKey = $(cat "$FZB_RUN/keys/cli.key")
Address = $FZB_TUN_CLI_IP/32
MTU = $TUN_MTU
Name = $FZB_FZ_IF_CLI

[Peer]
PublicKey = $(cat "$FZB_RUN/keys/gw.pub")
AllowedIPs = $FZB_SRV_NET, $FZB_TUN_NET
Endpoint = $FZB_IP_GW_WAN:$FZB_GW_PORT
EOF
  else
    ns=$FZB_NS_GW
    cat >"$cfg" <<EOF
[Interface]
PrivateKey = $(cat "$FZB_RUN/keys/gw.key")
ListenPort = $FZB_GW_PORT
Address = $FZB_TUN_GW_IP/24
MTU = $TUN_MTU
Name = $FZB_FZ_IF_GW

[Peer]
PublicKey = $(cat "$FZB_RUN/keys/cli.pub")
AllowedIPs = $FZB_TUN_CLI_IP/32
EOF
    [ "$HEALTH" = 1 ] && extra=(--health-check-addr "$FZB_IP_GW_LAN:$HEALTH_PORT")
  fi
  chmod 600 "$cfg"
  FZ_LOG=${FZ_LOG:-info} setsid ip netns exec "$ns" "${GW_CMD[@]}" "$cfg" "${extra[@]}" \
    >"$FZB_RUN/$role.log" 2>&1 </dev/null &
  echo $! >"$FZB_RUN/$role.pid"
}

TUNNEL=""
start_tunnel() {  # config
  TUNNEL=$1
  new_keys
  case $1 in
    fz) start_fz gw; start_fz cli ;;
    wg) start_wg gw; start_wg cli ;;
    mixed) start_fz gw; start_wg cli ;;
    direct) ip -n "$FZB_NS_CLI" route replace "$FZB_SRV_NET" via "$FZB_IP_GW_WAN" ;;
  esac
}

# stop_role ROLE: SIGTERM to one tunnel end; notes in the log how it ended (fz-gateway must exit 0)
stop_role() {
  local role=$1 f="$FZB_RUN/$1.pid" pid code i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  rm -f "$f"
  if ! kill -TERM "$pid" 2>/dev/null; then
    code=0
    wait "$pid" 2>/dev/null || code=$?
    fzb_log "$TUNNEL $role had already exited (code $code) before it was stopped"
    return 0
  fi
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    fzb_log "$TUNNEL $role did not exit within 5 s of SIGTERM: killed"
  fi
  code=0
  wait "$pid" 2>/dev/null || code=$?
  [ "$code" = 0 ] || fzb_log "$TUNNEL $role exited with code $code after SIGTERM"
}

stop_tunnel() {
  [ -n "$TUNNEL" ] || return 0
  stop_role cli
  stop_role gw
  ip -n "$FZB_NS_CLI" route del "$FZB_SRV_NET" 2>/dev/null || true
  rm -f "/var/run/wireguard/$FZB_WG_IF_CLI.sock" "/var/run/wireguard/$FZB_WG_IF_GW.sock"
  TUNNEL=""
}

# True while every tunnel end we started is still running.
ends_alive() {
  local role
  for role in gw cli; do
    if [ -f "$FZB_RUN/$role.pid" ] && ! kill -0 "$(cat "$FZB_RUN/$role.pid")" 2>/dev/null; then return 1; fi
  done
}

# Readiness: the client can ping the server through the tunnel. Fails at once if a tunnel end died.
tunnel_ready() {
  local end=$((SECONDS + READY_TIMEOUT))
  until fzb_ns "$FZB_NS_CLI" ping -c1 -W1 "$FZB_IP_SRV" >/dev/null 2>&1; do
    if ! ends_alive; then
      fzb_log "tunnel $TUNNEL: a tunnel end exited before the tunnel was ready"
      tail -n 20 "$FZB_RUN/gw.log" "$FZB_RUN/cli.log" >&2 2>/dev/null || true
      return 1
    fi
    if [ "$SECONDS" -ge "$end" ]; then
      fzb_log "tunnel $TUNNEL not ready after ${READY_TIMEOUT}s: the client cannot ping $FZB_IP_SRV"
      tail -n 30 "$FZB_RUN/gw.log" "$FZB_RUN/cli.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- measurement

iperf_server_start() {
  fzb_kill_pidfile "$FZB_RUN/iperf3-srv.pid"
  setsid ip netns exec "$FZB_NS_SRV" iperf3 -s -p 5201 >"$FZB_RUN/iperf3-srv.log" 2>&1 </dev/null &
  echo $! >"$FZB_RUN/iperf3-srv.pid"
  sleep 0.3
}

# mid_for RTT DIR: configure the middle namespace for this RTT and direction
mid_for() {
  local rtt=$1 dir=$2 oneway key
  if awk -v r="$rtt" 'BEGIN{exit !(r==0)}'; then
    fzb_mid_set bridge 0 both
  elif [ "$DELAY_DIRS" = both ]; then
    oneway=$(awk -v r="$rtt" 'BEGIN{print r/2}')
    fzb_mid_set delay "$oneway" both
  elif [ "$dir" = fwd ]; then
    fzb_mid_set delay "$(awk -v r="$rtt" 'BEGIN{print r/2}')" g2c # upload: ACKs flow gateway -> client
  else
    fzb_mid_set delay "$(awk -v r="$rtt" 'BEGIN{print r/2}')" c2g # download: ACKs flow client -> gateway
  fi
  key=$FZB_MID_MODE
  if ! grep -qxF "$key" "$OUT/.rtt_seen" 2>/dev/null; then
    echo "$key" >>"$OUT/.rtt_seen"
    local measured
    measured=$(fzb_rtt_ms)
    fzb_log "middle namespace $key: measured client->gateway RTT ${measured} ms"
    printf '%s\t%s\n' "$key" "$measured" >>"$OUT/rtt_measured.tsv"
  fi
}

measure() {  # round rtt config dir
  local rnd=$1 rtt=$2 cfg=$3 dir=$4 tag="$1.$2ms.$3.$4" bg waited=0 probe_pid="" rflag=()
  [ "$dir" = rev ] && rflag=(-R)
  while :; do
    bg=$("$PY" "$BENCH/nsstat.py" busy 1)
    awk -v b="$bg" -v m="$IDLE_MAX" 'BEGIN{exit !(b<=m)}' && break
    [ "$waited" -ge "$IDLE_WAIT" ] && break
    waited=$((waited + 1))
  done
  local dl0 dl1
  dl0=$(fzb_delay_counters)
  "$PY" "$BENCH/nsstat.py" snap $FZB_NAMESPACES >"$FZB_RUN/snap0.json"
  rm -f "$OUT/$tag.probe.json"
  if [ "$HEALTH" = 1 ] && { [ "$cfg" = fz ] || [ "$cfg" = mixed ]; }; then
    setsid ip netns exec "$FZB_NS_SRV" "$PY" "$BENCH/health_probe.py" "$FZB_IP_GW_LAN:$HEALTH_PORT" "$TIME" \
      >"$OUT/$tag.probe.json" 2>"$FZB_RUN/probe.err" </dev/null &
    probe_pid=$!
  fi
  local end_pids=() role ipid rc=0
  for role in gw cli; do [ -f "$FZB_RUN/$role.pid" ] && end_pids+=("$(<"$FZB_RUN/$role.pid")"); done
  timeout $((TIME + 30)) ip netns exec "$FZB_NS_CLI" iperf3 -c "$FZB_IP_SRV" -p 5201 -t "$TIME" \
    "${rflag[@]}" -J >"$OUT/$tag.iperf.json" 2>"$FZB_RUN/iperf3.err" &
  ipid=$!
  # A tunnel end that dies mid-run would leave iperf3 hanging until its timeout: stop it early.
  while kill -0 "$ipid" 2>/dev/null; do
    for pid in "${end_pids[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        sleep 1
        kill -TERM "$ipid" 2>/dev/null || true
        break 2
      fi
    done
    sleep 0.5
  done
  wait "$ipid" || rc=$?
  if [ "$rc" != 0 ]; then
    fzb_log "iperf3 failed ($tag, exit $rc): $(head -c 300 "$FZB_RUN/iperf3.err")"
    iperf_server_start
  fi
  "$PY" "$BENCH/nsstat.py" snap $FZB_NAMESPACES >"$FZB_RUN/snap1.json"
  if [ -n "$probe_pid" ]; then wait "$probe_pid" || true; fi
  dl1=$(fzb_delay_counters)
  local note=""
  for role in gw cli; do
    if [ -f "$FZB_RUN/$role.pid" ] && ! kill -0 "$(cat "$FZB_RUN/$role.pid")" 2>/dev/null; then
      note+="the $role tunnel end is gone (see its log); "
    fi
  done
  "$PY" "$BENCH/nsstat.py" row "$RUNS" "$rnd" "$rtt" "$cfg" "$dir" "$OUT/$tag.iperf.json" \
    "$FZB_RUN/snap0.json" "$FZB_RUN/snap1.json" "$bg" "$OUT/$tag.probe.json" "$dl0" "$dl1" "${note%; }" |
    sed 's/^/[fzb] /' >&2
}

print_settings() {
  {
    echo "date: $(date -Is)"
    echo "kernel: $(uname -r), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "fz-gateway command: $FZ_GW_CMD (health/loop-lag probe: $([ "$HEALTH" = 1 ] && echo on || echo off))"
    echo "wireguard-go: $(wireguard-go --version 2>/dev/null | head -1 || echo missing)"
    echo "iperf3: $(iperf3 --version | head -1)"
    echo "rounds=$ROUNDS time=${TIME}s configs=$CONFIGS rtts=$RTTS delay-dirs=$DELAY_DIRS dirs=$DIRS tun-mtu=$TUN_MTU"
    echo "client namespace sysctls (defaults, untouched):"
    for k in net.ipv4.tcp_wmem net.ipv4.tcp_rmem net.ipv4.tcp_congestion_control net.core.rmem_max \
      net.core.rmem_default net.core.wmem_max net.core.wmem_default; do
      echo "  $k = $(fzb_ns "$FZB_NS_CLI" sysctl -n "$k" 2>/dev/null | tr '\t' ' ')"
    done
  } | tee "$OUT/settings.txt" >&2
}

# ---------------------------------------------------------------- main

fzb_topology_up
print_settings
iperf_server_start
for rnd in $(seq 1 "$ROUNDS"); do
  for rtt in $RTTS; do
    for cfg in $CONFIGS; do
      mid_for "$rtt" "$(echo "$DIRS" | awk '{print $1}')"
      start_tunnel "$cfg"
      for dir in $DIRS; do
        mid_for "$rtt" "$dir"
        ready=0
        for attempt in 1 2; do
          # A tunnel end that died (crash, or a signal from outside) gets one fresh start.
          if ! ends_alive; then
            fzb_log "tunnel $cfg: a tunnel end is gone, restarting the tunnel (attempt $attempt)"
            stop_tunnel
            start_tunnel "$cfg"
          fi
          if tunnel_ready; then
            ready=1
            break
          fi
        done
        if [ "$ready" = 1 ]; then
          measure "$rnd" "$rtt" "$cfg" "$dir"
        else
          "$PY" "$BENCH/nsstat.py" fail "$RUNS" "$rnd" "$rtt" "$cfg" "$dir" "tunnel not ready" |
            sed 's/^/[fzb] /' >&2
        fi
      done
      stop_tunnel
      if [ "$KEEP_LOGS" = 1 ]; then
        for role in cli gw; do
          [ -f "$FZB_RUN/$role.log" ] && cp "$FZB_RUN/$role.log" "$OUT/$rnd.${rtt}ms.$cfg.$role.log"
        done
      fi
    done
  done
  fzb_log "round $rnd/$ROUNDS done"
done
"$PY" "$BENCH/summary.py" "$RUNS" | tee "$OUT/summary.md"
echo "results: $OUT" >&2
