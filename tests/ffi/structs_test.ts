/**
 * Compares every struct size/offset and ABI constant in ffi/structs.ts and ffi/netlink.ts with the
 * system C headers, by compiling a small C program with gcc. Skipped (with a message) without gcc.
 */
import assert from "node:assert/strict";
import * as S from "../../ffi/structs.ts";
import * as N from "../../ffi/netlink.ts";
import * as T from "../../src/wire/tso.ts";

/**
 * Newer uapi macros that older distribution headers lack (USO arrived in Linux 6.2); compared only
 * when the headers define them.
 */
const OPTIONAL_MACROS = new Set(["VIRTIO_NET_HDR_GSO_UDP_L4", "TUN_F_USO4", "TUN_F_USO6"]);
const MISSING = -999_999;

/** [TS value, C expression]. */
const CHECKS: Array<[number, string]> = [
  // sockaddr_in / sockaddr_in6 / sockaddr_nl / storage
  [S.SOCKADDR_IN.SIZE, "sizeof(struct sockaddr_in)"],
  [S.SOCKADDR_IN.FAMILY, "offsetof(struct sockaddr_in, sin_family)"],
  [S.SOCKADDR_IN.PORT, "offsetof(struct sockaddr_in, sin_port)"],
  [S.SOCKADDR_IN.ADDR, "offsetof(struct sockaddr_in, sin_addr)"],
  [S.SOCKADDR_IN6.SIZE, "sizeof(struct sockaddr_in6)"],
  [S.SOCKADDR_IN6.FAMILY, "offsetof(struct sockaddr_in6, sin6_family)"],
  [S.SOCKADDR_IN6.PORT, "offsetof(struct sockaddr_in6, sin6_port)"],
  [S.SOCKADDR_IN6.FLOWINFO, "offsetof(struct sockaddr_in6, sin6_flowinfo)"],
  [S.SOCKADDR_IN6.ADDR, "offsetof(struct sockaddr_in6, sin6_addr)"],
  [S.SOCKADDR_IN6.SCOPE_ID, "offsetof(struct sockaddr_in6, sin6_scope_id)"],
  [S.SOCKADDR_NL.SIZE, "sizeof(struct sockaddr_nl)"],
  [S.SOCKADDR_NL.FAMILY, "offsetof(struct sockaddr_nl, nl_family)"],
  [S.SOCKADDR_NL.PID, "offsetof(struct sockaddr_nl, nl_pid)"],
  [S.SOCKADDR_NL.GROUPS, "offsetof(struct sockaddr_nl, nl_groups)"],
  [S.SOCKADDR_STORAGE_SIZE, "sizeof(struct sockaddr_storage)"],
  // iovec, msghdr, mmsghdr, cmsghdr
  [S.IOVEC.SIZE, "sizeof(struct iovec)"],
  [S.IOVEC.BASE, "offsetof(struct iovec, iov_base)"],
  [S.IOVEC.LEN, "offsetof(struct iovec, iov_len)"],
  [S.MSGHDR.SIZE, "sizeof(struct msghdr)"],
  [S.MSGHDR.NAME, "offsetof(struct msghdr, msg_name)"],
  [S.MSGHDR.NAMELEN, "offsetof(struct msghdr, msg_namelen)"],
  [S.MSGHDR.IOV, "offsetof(struct msghdr, msg_iov)"],
  [S.MSGHDR.IOVLEN, "offsetof(struct msghdr, msg_iovlen)"],
  [S.MSGHDR.CONTROL, "offsetof(struct msghdr, msg_control)"],
  [S.MSGHDR.CONTROLLEN, "offsetof(struct msghdr, msg_controllen)"],
  [S.MSGHDR.FLAGS, "offsetof(struct msghdr, msg_flags)"],
  [S.MMSGHDR.SIZE, "sizeof(struct mmsghdr)"],
  [S.MMSGHDR.HDR, "offsetof(struct mmsghdr, msg_hdr)"],
  [S.MMSGHDR.LEN, "offsetof(struct mmsghdr, msg_len)"],
  [S.CMSGHDR.SIZE, "sizeof(struct cmsghdr)"],
  [S.CMSGHDR.LEN, "offsetof(struct cmsghdr, cmsg_len)"],
  [S.CMSGHDR.LEVEL, "offsetof(struct cmsghdr, cmsg_level)"],
  [S.CMSGHDR.TYPE, "offsetof(struct cmsghdr, cmsg_type)"],
  [S.CMSGHDR.DATA, "CMSG_LEN(0)"],
  [S.cmsgSpace(2), "CMSG_SPACE(2)"],
  [S.cmsgSpace(4), "CMSG_SPACE(4)"],
  [S.cmsgSpace(12), "CMSG_SPACE(sizeof(struct in_pktinfo))"],
  [S.cmsgSpace(20), "CMSG_SPACE(sizeof(struct in6_pktinfo))"],
  [S.cmsgLen(2), "CMSG_LEN(2)"],
  [S.cmsgLen(20), "CMSG_LEN(20)"],
  [S.cmsgAlign(13), "CMSG_ALIGN(13)"],
  // pktinfo
  [S.IN_PKTINFO.SIZE, "sizeof(struct in_pktinfo)"],
  [S.IN_PKTINFO.IFINDEX, "offsetof(struct in_pktinfo, ipi_ifindex)"],
  [S.IN_PKTINFO.SPEC_DST, "offsetof(struct in_pktinfo, ipi_spec_dst)"],
  [S.IN_PKTINFO.ADDR, "offsetof(struct in_pktinfo, ipi_addr)"],
  [S.IN6_PKTINFO.SIZE, "sizeof(struct in6_pktinfo)"],
  [S.IN6_PKTINFO.ADDR, "offsetof(struct in6_pktinfo, ipi6_addr)"],
  [S.IN6_PKTINFO.IFINDEX, "offsetof(struct in6_pktinfo, ipi6_ifindex)"],
  // ifreq, pollfd, timespec, virtio_net_hdr
  [S.IFREQ.SIZE, "sizeof(struct ifreq)"],
  [S.IFREQ.NAME, "offsetof(struct ifreq, ifr_name)"],
  [S.IFREQ.FLAGS, "offsetof(struct ifreq, ifr_flags)"],
  [S.IFREQ.MTU, "offsetof(struct ifreq, ifr_mtu)"],
  [S.IFREQ.QLEN, "offsetof(struct ifreq, ifr_qlen)"],
  [S.IFREQ.IFINDEX, "offsetof(struct ifreq, ifr_ifindex)"],
  [S.POLLFD.SIZE, "sizeof(struct pollfd)"],
  [S.POLLFD.FD, "offsetof(struct pollfd, fd)"],
  [S.POLLFD.EVENTS, "offsetof(struct pollfd, events)"],
  [S.POLLFD.REVENTS, "offsetof(struct pollfd, revents)"],
  [S.TIMESPEC.SIZE, "sizeof(struct timespec)"],
  [S.TIMESPEC.NSEC, "offsetof(struct timespec, tv_nsec)"],
  [S.VIRTIO_NET_HDR.SIZE, "sizeof(struct virtio_net_hdr)"],
  [S.VIRTIO_NET_HDR.FLAGS, "offsetof(struct virtio_net_hdr, flags)"],
  [S.VIRTIO_NET_HDR.GSO_TYPE, "offsetof(struct virtio_net_hdr, gso_type)"],
  [S.VIRTIO_NET_HDR.HDR_LEN, "offsetof(struct virtio_net_hdr, hdr_len)"],
  [S.VIRTIO_NET_HDR.GSO_SIZE, "offsetof(struct virtio_net_hdr, gso_size)"],
  [S.VIRTIO_NET_HDR.CSUM_START, "offsetof(struct virtio_net_hdr, csum_start)"],
  [S.VIRTIO_NET_HDR.CSUM_OFFSET, "offsetof(struct virtio_net_hdr, csum_offset)"],
  [T.VIRTIO_NET_HDR_LEN, "sizeof(struct virtio_net_hdr)"],
  [T.VIRTIO_NET_HDR_F_NEEDS_CSUM, "VIRTIO_NET_HDR_F_NEEDS_CSUM"],
  [T.VIRTIO_NET_HDR_F_DATA_VALID, "VIRTIO_NET_HDR_F_DATA_VALID"],
  [T.GsoType.None, "VIRTIO_NET_HDR_GSO_NONE"],
  [T.GsoType.TcpV4, "VIRTIO_NET_HDR_GSO_TCPV4"],
  [T.GsoType.Udp, "VIRTIO_NET_HDR_GSO_UDP"],
  [T.GsoType.TcpV6, "VIRTIO_NET_HDR_GSO_TCPV6"],
  [T.GsoType.UdpL4, "VIRTIO_NET_HDR_GSO_UDP_L4"],
  [T.GsoType.Ecn, "VIRTIO_NET_HDR_GSO_ECN"],
  // netlink structs
  [N.NLMSGHDR.SIZE, "sizeof(struct nlmsghdr)"],
  [N.NLMSGHDR.LEN, "offsetof(struct nlmsghdr, nlmsg_len)"],
  [N.NLMSGHDR.TYPE, "offsetof(struct nlmsghdr, nlmsg_type)"],
  [N.NLMSGHDR.FLAGS, "offsetof(struct nlmsghdr, nlmsg_flags)"],
  [N.NLMSGHDR.SEQ, "offsetof(struct nlmsghdr, nlmsg_seq)"],
  [N.NLMSGHDR.PID, "offsetof(struct nlmsghdr, nlmsg_pid)"],
  [N.IFINFOMSG.SIZE, "sizeof(struct ifinfomsg)"],
  [N.IFINFOMSG.FAMILY, "offsetof(struct ifinfomsg, ifi_family)"],
  [N.IFINFOMSG.TYPE, "offsetof(struct ifinfomsg, ifi_type)"],
  [N.IFINFOMSG.INDEX, "offsetof(struct ifinfomsg, ifi_index)"],
  [N.IFINFOMSG.FLAGS, "offsetof(struct ifinfomsg, ifi_flags)"],
  [N.IFINFOMSG.CHANGE, "offsetof(struct ifinfomsg, ifi_change)"],
  [N.IFADDRMSG.SIZE, "sizeof(struct ifaddrmsg)"],
  [N.IFADDRMSG.PREFIXLEN, "offsetof(struct ifaddrmsg, ifa_prefixlen)"],
  [N.IFADDRMSG.FLAGS, "offsetof(struct ifaddrmsg, ifa_flags)"],
  [N.IFADDRMSG.SCOPE, "offsetof(struct ifaddrmsg, ifa_scope)"],
  [N.IFADDRMSG.INDEX, "offsetof(struct ifaddrmsg, ifa_index)"],
  [N.RTMSG.SIZE, "sizeof(struct rtmsg)"],
  [N.RTMSG.DST_LEN, "offsetof(struct rtmsg, rtm_dst_len)"],
  [N.RTMSG.SRC_LEN, "offsetof(struct rtmsg, rtm_src_len)"],
  [N.RTMSG.TOS, "offsetof(struct rtmsg, rtm_tos)"],
  [N.RTMSG.TABLE, "offsetof(struct rtmsg, rtm_table)"],
  [N.RTMSG.PROTOCOL, "offsetof(struct rtmsg, rtm_protocol)"],
  [N.RTMSG.SCOPE, "offsetof(struct rtmsg, rtm_scope)"],
  [N.RTMSG.TYPE, "offsetof(struct rtmsg, rtm_type)"],
  [N.RTMSG.FLAGS, "offsetof(struct rtmsg, rtm_flags)"],
  [N.FIB_RULE_HDR.SIZE, "sizeof(struct fib_rule_hdr)"],
  [N.FIB_RULE_HDR.DST_LEN, "offsetof(struct fib_rule_hdr, dst_len)"],
  [N.FIB_RULE_HDR.SRC_LEN, "offsetof(struct fib_rule_hdr, src_len)"],
  [N.FIB_RULE_HDR.TOS, "offsetof(struct fib_rule_hdr, tos)"],
  [N.FIB_RULE_HDR.TABLE, "offsetof(struct fib_rule_hdr, table)"],
  [N.FIB_RULE_HDR.ACTION, "offsetof(struct fib_rule_hdr, action)"],
  [N.FIB_RULE_HDR.FLAGS, "offsetof(struct fib_rule_hdr, flags)"],
  [N.RTATTR.SIZE, "sizeof(struct rtattr)"],
  [N.RTATTR.LEN, "offsetof(struct rtattr, rta_len)"],
  [N.RTATTR.TYPE, "offsetof(struct rtattr, rta_type)"],
  [N.NLMSGERR.SIZE, "sizeof(struct nlmsgerr)"],
  [N.NLMSGERR.ERROR, "offsetof(struct nlmsgerr, error)"],
  [N.NLMSGERR.MSG, "offsetof(struct nlmsgerr, msg)"],
  // socket constants
  [S.AF_UNSPEC, "AF_UNSPEC"],
  [S.AF_INET, "AF_INET"],
  [S.AF_INET6, "AF_INET6"],
  [S.AF_NETLINK, "AF_NETLINK"],
  [S.SOCK_STREAM, "SOCK_STREAM"],
  [S.SOCK_DGRAM, "SOCK_DGRAM"],
  [S.SOCK_RAW, "SOCK_RAW"],
  [S.SOCK_NONBLOCK, "SOCK_NONBLOCK"],
  [S.SOCK_CLOEXEC, "SOCK_CLOEXEC"],
  [S.IPPROTO_IP, "IPPROTO_IP"],
  [S.IPPROTO_ICMP, "IPPROTO_ICMP"],
  [S.IPPROTO_TCP, "IPPROTO_TCP"],
  [S.IPPROTO_UDP, "IPPROTO_UDP"],
  [S.IPPROTO_IPV6, "IPPROTO_IPV6"],
  [S.IPPROTO_ICMPV6, "IPPROTO_ICMPV6"],
  [S.SOL_SOCKET, "SOL_SOCKET"],
  [S.SOL_IP, "SOL_IP"],
  [S.SOL_IPV6, "SOL_IPV6"],
  [S.SOL_UDP, "SOL_UDP"],
  [S.SOL_NETLINK, "SOL_NETLINK"],
  [S.SO_REUSEADDR, "SO_REUSEADDR"],
  [S.SO_TYPE, "SO_TYPE"],
  [S.SO_ERROR, "SO_ERROR"],
  [S.SO_SNDBUF, "SO_SNDBUF"],
  [S.SO_RCVBUF, "SO_RCVBUF"],
  [S.SO_SNDBUFFORCE, "SO_SNDBUFFORCE"],
  [S.SO_RCVBUFFORCE, "SO_RCVBUFFORCE"],
  [S.SO_MARK, "SO_MARK"],
  [S.IP_TOS, "IP_TOS"],
  [S.IP_PKTINFO, "IP_PKTINFO"],
  [S.IP_MTU_DISCOVER, "IP_MTU_DISCOVER"],
  [S.IP_RECVTOS, "IP_RECVTOS"],
  [S.IPV6_V6ONLY, "IPV6_V6ONLY"],
  [S.IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO"],
  [S.IPV6_PKTINFO, "IPV6_PKTINFO"],
  [S.IPV6_RECVTCLASS, "IPV6_RECVTCLASS"],
  [S.IPV6_TCLASS, "IPV6_TCLASS"],
  [S.UDP_SEGMENT, "UDP_SEGMENT"],
  [S.UDP_GRO, "UDP_GRO"],
  [S.MSG_CTRUNC, "MSG_CTRUNC"],
  [S.MSG_TRUNC, "MSG_TRUNC"],
  [S.MSG_DONTWAIT, "MSG_DONTWAIT"],
  [S.NETLINK_ROUTE, "NETLINK_ROUTE"],
  [S.NETLINK_EXT_ACK, "NETLINK_EXT_ACK"],
  // files, events, poll
  [S.O_RDONLY, "O_RDONLY"],
  [S.O_RDWR, "O_RDWR"],
  [S.O_NONBLOCK, "O_NONBLOCK"],
  [S.O_CLOEXEC, "O_CLOEXEC"],
  [S.F_GETFL, "F_GETFL"],
  [S.F_SETFL, "F_SETFL"],
  [S.S_IFCHR, "S_IFCHR"],
  [S.EFD_SEMAPHORE, "EFD_SEMAPHORE"],
  [S.EFD_NONBLOCK, "EFD_NONBLOCK"],
  [S.EFD_CLOEXEC, "EFD_CLOEXEC"],
  [S.POLLIN, "POLLIN"],
  [S.POLLPRI, "POLLPRI"],
  [S.POLLOUT, "POLLOUT"],
  [S.POLLERR, "POLLERR"],
  [S.POLLHUP, "POLLHUP"],
  [S.POLLNVAL, "POLLNVAL"],
  [Number(S.makedev(10, 200)), "makedev(10, 200)"],
  [Number(S.makedev(4095, 1000)), "makedev(4095, 1000)"],
  // interfaces and TUN
  [S.IFNAMSIZ, "IFNAMSIZ"],
  [S.IFF_UP, "IFF_UP"],
  [S.IFF_RUNNING, "IFF_RUNNING"],
  [S.IFF_NOARP, "IFF_NOARP"],
  [S.IFF_POINTOPOINT, "IFF_POINTOPOINT"],
  [S.IFF_MULTICAST, "IFF_MULTICAST"],
  [S.IFF_TUN, "IFF_TUN"],
  [S.IFF_NO_PI, "IFF_NO_PI"],
  [S.IFF_MULTI_QUEUE, "IFF_MULTI_QUEUE"],
  [S.IFF_VNET_HDR, "IFF_VNET_HDR"],
  [S.TUNSETIFF, "TUNSETIFF"],
  [S.TUNGETFEATURES, "TUNGETFEATURES"],
  [S.TUNSETOFFLOAD, "TUNSETOFFLOAD"],
  [S.TUNGETIFF, "TUNGETIFF"],
  [S.TUNSETVNETHDRSZ, "TUNSETVNETHDRSZ"],
  [S.TUNGETVNETHDRSZ, "TUNGETVNETHDRSZ"],
  [S.TUN_F_CSUM, "TUN_F_CSUM"],
  [S.TUN_F_TSO4, "TUN_F_TSO4"],
  [S.TUN_F_TSO6, "TUN_F_TSO6"],
  [S.TUN_F_TSO_ECN, "TUN_F_TSO_ECN"],
  [S.TUN_F_UFO, "TUN_F_UFO"],
  [S.TUN_F_USO4, "TUN_F_USO4"],
  [S.TUN_F_USO6, "TUN_F_USO6"],
  [S.SIOCGIFFLAGS, "SIOCGIFFLAGS"],
  [S.SIOCSIFFLAGS, "SIOCSIFFLAGS"],
  [S.SIOCGIFMTU, "SIOCGIFMTU"],
  [S.SIOCSIFMTU, "SIOCSIFMTU"],
  [S.SIOCGIFINDEX, "SIOCGIFINDEX"],
  [S.SIOCGIFTXQLEN, "SIOCGIFTXQLEN"],
  [S.SIOCSIFTXQLEN, "SIOCSIFTXQLEN"],
  // netlink constants
  [N.NLMSG_NOOP, "NLMSG_NOOP"],
  [N.NLMSG_ERROR, "NLMSG_ERROR"],
  [N.NLMSG_DONE, "NLMSG_DONE"],
  [N.NLM_F_REQUEST, "NLM_F_REQUEST"],
  [N.NLM_F_MULTI, "NLM_F_MULTI"],
  [N.NLM_F_ACK, "NLM_F_ACK"],
  [N.NLM_F_DUMP, "NLM_F_DUMP"],
  [N.NLM_F_REPLACE, "NLM_F_REPLACE"],
  [N.NLM_F_EXCL, "NLM_F_EXCL"],
  [N.NLM_F_CREATE, "NLM_F_CREATE"],
  [N.NLM_F_CAPPED, "NLM_F_CAPPED"],
  [N.NLM_F_ACK_TLVS, "NLM_F_ACK_TLVS"],
  [N.NLMSGERR_ATTR_MSG, "NLMSGERR_ATTR_MSG"],
  [N.RTM_NEWLINK, "RTM_NEWLINK"],
  [N.RTM_GETLINK, "RTM_GETLINK"],
  [N.RTM_SETLINK, "RTM_SETLINK"],
  [N.RTM_NEWADDR, "RTM_NEWADDR"],
  [N.RTM_DELADDR, "RTM_DELADDR"],
  [N.RTM_GETADDR, "RTM_GETADDR"],
  [N.RTM_NEWROUTE, "RTM_NEWROUTE"],
  [N.RTM_DELROUTE, "RTM_DELROUTE"],
  [N.RTM_GETROUTE, "RTM_GETROUTE"],
  [N.RTM_NEWRULE, "RTM_NEWRULE"],
  [N.RTM_DELRULE, "RTM_DELRULE"],
  [N.RTM_GETRULE, "RTM_GETRULE"],
  [N.IFLA_IFNAME, "IFLA_IFNAME"],
  [N.IFLA_MTU, "IFLA_MTU"],
  [N.IFLA_TXQLEN, "IFLA_TXQLEN"],
  [N.IFA_ADDRESS, "IFA_ADDRESS"],
  [N.IFA_LOCAL, "IFA_LOCAL"],
  [N.RTA_DST, "RTA_DST"],
  [N.RTA_OIF, "RTA_OIF"],
  [N.RTA_PRIORITY, "RTA_PRIORITY"],
  [N.RTA_TABLE, "RTA_TABLE"],
  [N.FRA_PRIORITY, "FRA_PRIORITY"],
  [N.FRA_FWMARK, "FRA_FWMARK"],
  [N.FRA_TABLE, "FRA_TABLE"],
  [N.FRA_FWMASK, "FRA_FWMASK"],
  [N.FRA_PROTOCOL, "FRA_PROTOCOL"],
  [N.RT_TABLE_UNSPEC, "RT_TABLE_UNSPEC"],
  [N.RT_TABLE_MAIN, "RT_TABLE_MAIN"],
  [N.RTPROT_KERNEL, "RTPROT_KERNEL"],
  [N.RTPROT_STATIC, "RTPROT_STATIC"],
  [N.RT_SCOPE_UNIVERSE, "RT_SCOPE_UNIVERSE"],
  [N.RTN_UNICAST, "RTN_UNICAST"],
  [N.FR_ACT_TO_TBL, "FR_ACT_TO_TBL"],
  [N.FIB_RULE_INVERT, "FIB_RULE_INVERT"],
];

const HEADERS = `
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/fib_rules.h>
`;

async function gccAvailable(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("gcc", { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return success;
  } catch {
    return false;
  }
}

const hasGcc = await gccAvailable();
if (!hasGcc) {
  // deno-lint-ignore no-console
  console.warn("structs_test: gcc not found; skipping the C layout comparison");
}

/** Compiles and runs a C program printing one `%lld` line per expression. */
async function evaluateInC(expressions: string[]): Promise<number[]> {
  const dir = await Deno.makeTempDir({ prefix: "fzffi-structs-" });
  try {
    const body = expressions.map((e) => {
      const line = `  printf("%lld\\n", (long long)(${e}));`;
      return OPTIONAL_MACROS.has(e)
        ? `#ifdef ${e}\n${line}\n#else\n  printf("${MISSING}\\n");\n#endif`
        : line;
    }).join("\n");
    await Deno.writeTextFile(`${dir}/layout.c`, `${HEADERS}\nint main(void) {\n${body}\n  return 0;\n}\n`);
    const cc = await new Deno.Command("gcc", { args: ["-O0", "-o", `${dir}/layout`, `${dir}/layout.c`] })
      .output();
    assert.ok(cc.success, `gcc failed:\n${new TextDecoder().decode(cc.stderr)}`);
    const run = await new Deno.Command(`${dir}/layout`).output();
    assert.ok(run.success);
    return new TextDecoder().decode(run.stdout).trim().split("\n").map(Number);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "ffi struct layouts and constants match the C headers",
  ignore: !hasGcc,
  async fn() {
    const values = await evaluateInC(CHECKS.map(([, expr]) => expr));
    assert.equal(values.length, CHECKS.length);
    const missing = CHECKS.filter((_, i) => values[i] === MISSING).map(([, expr]) => expr);
    if (missing.length > 0) {
      // deno-lint-ignore no-console
      console.warn(`structs_test: system headers predate ${missing.join(", ")}; not compared`);
    }
    const mismatches = CHECKS.flatMap(([ts, expr], i) =>
      ts === values[i] || values[i] === MISSING ? [] : [`${expr}: TS ${ts}, C ${values[i]}`]
    );
    assert.deepEqual(mismatches, []);
  },
});

Deno.test("USO constants match Linux 6.2+ uapi (checked by hand when the headers are older)", () => {
  assert.equal(S.TUN_F_USO4, 0x20); // include/uapi/linux/if_tun.h
  assert.equal(S.TUN_F_USO6, 0x40);
  assert.equal(T.GsoType.UdpL4, 5); // include/uapi/linux/virtio_net.h
});

Deno.test("cmsg helpers follow CMSG_ALIGN/SPACE/LEN for 8-byte size_t", () => {
  assert.equal(S.cmsgAlign(0), 0);
  assert.equal(S.cmsgAlign(1), 8);
  assert.equal(S.cmsgAlign(8), 8);
  assert.equal(S.cmsgSpace(2), 24);
  assert.equal(S.cmsgSpace(20), 40);
  assert.equal(S.cmsgLen(12), 28);
});

Deno.test("setU64/getU64 round-trip addresses above 2^32 without BigInt", () => {
  const view = new DataView(new ArrayBuffer(8));
  const value = 0x7ffc_1234_5678;
  S.setU64(view, 0, value);
  assert.equal(view.getBigUint64(0, true), BigInt(value));
  assert.equal(S.getU64(view, 0), value);
});

Deno.test("writeSockaddr encodes sockaddr_in and sockaddr_in6", () => {
  const bytes = new Uint8Array(32).fill(0xee);
  const view = new DataView(bytes.buffer);
  assert.equal(S.writeSockaddr(bytes, view, 0, 4, new Uint8Array([10, 1, 2, 3]), 0, 52625), 16);
  assert.deepEqual([...bytes.subarray(0, 16)], [2, 0, 0xcd, 0x91, 10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
  const v6 = new Uint8Array(16);
  v6[0] = 0xfd;
  v6[15] = 1;
  assert.equal(S.writeSockaddr(bytes, view, 0, 6, v6, 0, 443), 28);
  assert.equal(view.getUint16(0, true), S.AF_INET6);
  assert.equal(S.sockaddrPort(view, 0), 443);
  assert.equal(S.sockaddrFamily(view, 0), 6);
  assert.deepEqual([...bytes.subarray(8, 24)], [...v6]);
  assert.equal(view.getUint32(4), 0);
  assert.equal(view.getUint32(24), 0);
});

Deno.test("writeIfName refuses names longer than 15 bytes", () => {
  const bytes = new Uint8Array(40);
  S.writeIfName(bytes, 0, "tun-firezone");
  assert.equal(S.readCString(bytes, 0, 16), "tun-firezone");
  assert.throws(() => S.writeIfName(bytes, 0, "a-very-long-name"), RangeError);
});
