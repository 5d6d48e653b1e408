#!/usr/bin/env bash
# Host set-up for fz-gateway (spec §4.10 and §1.1): what upstream's installers do outside the binary.
#
#   * sysctls: net.ipv4.ip_forward=1, net.ipv4.conf.all.src_valid_mark=1,
#     net.ipv6.conf.all.disable_ipv6=0, net.ipv6.conf.all.forwarding=1,
#     net.ipv6.conf.default.forwarding=1
#   * one nftables table (default `inet fz_gateway`) equivalent to upstream's iptables rules:
#       FORWARD -i tun-firezone -j ACCEPT;  FORWARD -o tun-firezone -j ACCEPT
#       nat POSTROUTING -s 100.64.0.0/11 -o e+ / -o w+ -j MASQUERADE
#       nat POSTROUTING -s fd00:2021:1111::/107 -o e+ / -o w+ -j MASQUERADE   (ip6tables)
#
# Idempotent: the table is replaced atomically on every run, so running twice leaves one copy.
# `--remove` deletes the table and puts back the sysctl values found before the first run (saved in a
# state file per network namespace), unless something else changed them since.
# Nothing here survives a reboot: run it before the gateway starts (e.g. systemd ExecStartPre=).
set -euo pipefail

readonly PROG="${0##*/}"
readonly ORIG_ARGS="$*"
readonly V4_RANGE="100.64.0.0/11"
readonly V6_RANGE="fd00:2021:1111::/107"
readonly SYSCTLS=(
  "net.ipv4.ip_forward=1"
  "net.ipv4.conf.all.src_valid_mark=1"
  "net.ipv6.conf.all.disable_ipv6=0"
  "net.ipv6.conf.all.forwarding=1"
  "net.ipv6.conf.default.forwarding=1"
)

usage() {
  cat <<EOF
Usage: $PROG [options]

Prepares this host (or the current network namespace) for fz-gateway: enables IPv4/IPv6
forwarding and installs an nftables table that accepts forwarded traffic to and from the TUN
device and masquerades the tunnel ranges ($V4_RANGE, $V6_RANGE) out of the egress interfaces.
Needs root (except --dry-run and --help) and the nft command (package "nftables").

Options:
  --tun NAME          TUN device name (env FZ_TUN_NAME; default tun-firezone)
  --egress PATTERN    Egress interface pattern, nft syntax ("eth0", "e*"); repeat for several.
                      (env FZ_EGRESS_IFACES, space-separated; default "e* w*", like iptables -o e+ -o w+)
  --table NAME        nftables table name in family inet (env FZ_NFT_TABLE; default fz_gateway)
  --state-file PATH   Where the previous sysctl values are kept for --remove
                      (env FZ_STATE_FILE; default /run/fz-gateway/setup-host.<netns id>.state)
  --no-sysctl         Leave sysctls alone (e.g. a container runtime sets them)
  --remove            Delete the table and restore the saved sysctl values
  --dry-run           Print what would be done (sysctls and the nft ruleset); change nothing
  -h, --help          Show this help

Note: nftables accepts a packet only if every base chain on the hook accepts it. If another
firewall drops forwarded traffic (for example Docker's iptables FORWARD policy DROP), allow
tun traffic there as well.
EOF
}

die() {
  echo "$PROG: $*" >&2
  exit 1
}

usage_error() {
  echo "$PROG: $*" >&2
  echo "Try '$PROG --help'." >&2
  exit 2
}

tun_name="${FZ_TUN_NAME:-tun-firezone}"
table="${FZ_NFT_TABLE:-fz_gateway}"
state_file="${FZ_STATE_FILE:-}"
read -r -a egress <<<"${FZ_EGRESS_IFACES:-e* w*}"
egress_from_flags=0
mode=apply
dry_run=0
do_sysctl=1

while [ $# -gt 0 ]; do
  case "$1" in
    --tun) [ $# -ge 2 ] || usage_error "--tun needs a value"; tun_name="$2"; shift 2 ;;
    --tun=*) tun_name="${1#*=}"; shift ;;
    --egress | --egress=*)
      if [ "$1" = --egress ]; then
        [ $# -ge 2 ] || usage_error "--egress needs a value"
        value="$2"; shift 2
      else
        value="${1#*=}"; shift
      fi
      if [ "$egress_from_flags" -eq 0 ]; then egress=(); egress_from_flags=1; fi
      egress+=("$value")
      ;;
    --table) [ $# -ge 2 ] || usage_error "--table needs a value"; table="$2"; shift 2 ;;
    --table=*) table="${1#*=}"; shift ;;
    --state-file) [ $# -ge 2 ] || usage_error "--state-file needs a value"; state_file="$2"; shift 2 ;;
    --state-file=*) state_file="${1#*=}"; shift ;;
    --no-sysctl) do_sysctl=0; shift ;;
    --remove) mode=remove; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

# Names end up inside the nft script: allow only interface-name characters (IFNAMSIZ - 1 = 15),
# plus a trailing '*' wildcard for egress patterns.
valid_ifname() { [[ "$1" =~ ^[A-Za-z0-9_.:@-]{1,15}$ ]]; }
valid_pattern() { [[ "$1" =~ ^[A-Za-z0-9_.:@-]{0,15}\*?$ && -n "$1" ]]; }

valid_ifname "$tun_name" || usage_error "invalid TUN name '$tun_name' (1-15 of A-Z a-z 0-9 _ . : @ -)"
[ "${#egress[@]}" -gt 0 ] || usage_error "no egress interface pattern given"
for p in "${egress[@]}"; do
  valid_pattern "$p" || usage_error "invalid egress pattern '$p' (an interface name, optionally ending in '*')"
done
[[ "$table" =~ ^[A-Za-z_][A-Za-z0-9_]{0,31}$ ]] || usage_error "invalid table name '$table'"

ruleset() {
  local p
  echo "table inet $table {"
  echo "	chain forward {"
  echo "		type filter hook forward priority filter; policy accept;"
  echo "		iifname \"$tun_name\" accept"
  echo "		oifname \"$tun_name\" accept"
  echo "	}"
  echo ""
  echo "	chain postrouting {"
  echo "		type nat hook postrouting priority srcnat; policy accept;"
  for p in "${egress[@]}"; do
    echo "		ip saddr $V4_RANGE oifname \"$p\" masquerade"
  done
  for p in "${egress[@]}"; do
    echo "		ip6 saddr $V6_RANGE oifname \"$p\" masquerade"
  done
  echo "	}"
  echo "}"
}

sysctl_path() { echo "/proc/sys/${1//.//}"; }

if [ "$dry_run" -eq 1 ]; then
  if [ "$mode" = remove ]; then
    echo "# would delete: table inet $table"
    [ "$do_sysctl" -eq 1 ] && echo "# would restore the sysctl values saved in the state file"
  else
    if [ "$do_sysctl" -eq 1 ]; then
      for kv in "${SYSCTLS[@]}"; do echo "# sysctl $kv"; done
    fi
    ruleset
  fi
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root: it writes /proc/sys/net and loads nftables rules (try: sudo $0 $ORIG_ARGS)"
command -v nft >/dev/null 2>&1 || die "the 'nft' command was not found: install nftables (e.g. apt-get install nftables)"

if [ -z "$state_file" ]; then
  netns_id="$(readlink /proc/self/ns/net 2>/dev/null | tr -cd '0-9')"
  state_file="/run/fz-gateway/setup-host.${netns_id:-default}.state"
fi

table_exists() { nft list table inet "$table" >/dev/null 2>&1; }

# Writing net.ipv6.conf.all.forwarding also sets every interface's and the default value, so both
# functions read every value first and only then write, in a fixed order.
apply_sysctls() {
  local kv key path i
  local -a keys=() values=() previous=()
  for kv in "${SYSCTLS[@]}"; do
    key="${kv%%=*}"
    path="$(sysctl_path "$key")"
    if [ ! -e "$path" ]; then
      echo "$PROG: warning: $key not available (IPv6 disabled in the kernel?); skipped" >&2
      continue
    fi
    keys+=("$key")
    values+=("${kv#*=}")
    previous+=("$(cat "$path")")
  done
  if [ ! -e "$state_file" ]; then
    # Saved as "key previous ours", so --remove restores only what still is ours.
    mkdir -p "$(dirname "$state_file")"
    for i in "${!keys[@]}"; do
      echo "${keys[$i]} ${previous[$i]} ${values[$i]}"
    done >"$state_file.tmp"
    mv "$state_file.tmp" "$state_file"
  fi
  for i in "${!keys[@]}"; do
    path="$(sysctl_path "${keys[$i]}")"
    if [ "$(cat "$path")" != "${values[$i]}" ]; then
      echo "${values[$i]}" >"$path" || die "failed to set ${keys[$i]}=${values[$i]}"
    fi
  done
}

restore_sysctls() {
  local key prev ours path i
  local -a keys=() restore=()
  if [ ! -e "$state_file" ]; then
    echo "$PROG: no saved sysctl values ($state_file); sysctls left as they are" >&2
    return 0
  fi
  while read -r key prev ours; do
    [ -n "$key" ] || continue
    path="$(sysctl_path "$key")"
    [ -e "$path" ] || continue
    if [ "$(cat "$path")" = "$ours" ]; then
      keys+=("$key")
      restore+=("$prev")
    else
      echo "$PROG: $key was changed to $(cat "$path") since set-up; left as is" >&2
    fi
  done <"$state_file"
  for i in "${!keys[@]}"; do
    path="$(sysctl_path "${keys[$i]}")"
    if [ "$(cat "$path")" != "${restore[$i]}" ]; then
      echo "${restore[$i]}" >"$path" || die "failed to restore ${keys[$i]}=${restore[$i]}"
    fi
  done
  rm -f "$state_file"
}

if [ "$mode" = remove ]; then
  if table_exists; then
    nft delete table inet "$table"
    echo "$PROG: removed table inet $table"
  else
    echo "$PROG: table inet $table not present"
  fi
  [ "$do_sysctl" -eq 1 ] && restore_sysctls
  exit 0
fi

[ "$do_sysctl" -eq 1 ] && apply_sysctls

# Create-then-delete-then-define in one transaction: atomic, and idempotent across runs.
{
  echo "table inet $table"
  echo "delete table inet $table"
  ruleset
} | nft -f - || die "nft failed to load the ruleset (is nf_tables/nft_masq available in this kernel?)"
echo "$PROG: installed table inet $table (tun $tun_name; egress ${egress[*]})"
