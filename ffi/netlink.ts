/**
 * rtnetlink over a NETLINK_ROUTE socket, through FFI (no `ip` command): links (up, MTU, TX queue
 * length), addresses, routes in numbered tables and fwmark policy rules.
 *
 * Every request asks for an acknowledgement; a negative ack becomes an {@link Errno} whose message
 * includes the kernel's extended-ack text when it sent one. Callers decide which errors are
 * harmless (the gateway ignores EEXIST for rules and EEXIST/EOPNOTSUPP for routes).
 *
 * Control path only: messages are built in fresh buffers, and waits are bounded by `poll`.
 *
 * @module
 */
import { EAGAIN, EINTR, Errno, ETIMEDOUT, NEED_NET_ADMIN_HINT } from "./errno.ts";
import { closeFd, lastErrno, libc } from "./libc.ts";
import { POLLIN, PollSet } from "./poll.ts";
import {
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_UNSPEC,
  NETLINK_EXT_ACK,
  NETLINK_ROUTE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_NETLINK,
} from "./structs.ts";

// Message types and flags (linux/netlink.h, linux/rtnetlink.h).
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** In an NLMSG_ERROR: the echoed request was cut to its header. */
export const NLM_F_CAPPED = 0x100;
/** In an NLMSG_ERROR: extended-ack attributes follow. */
export const NLM_F_ACK_TLVS = 0x200;
export const NLMSGERR_ATTR_MSG = 1;

export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWRULE = 32;
export const RTM_DELRULE = 33;
export const RTM_GETRULE = 34;

export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_TXQLEN = 13;
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_PRIORITY = 6;
export const RTA_TABLE = 15;
export const FRA_PRIORITY = 6;
export const FRA_FWMARK = 10;
export const FRA_TABLE = 15;
export const FRA_FWMASK = 16;
export const FRA_PROTOCOL = 21;

export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_MAIN = 254;
export const RTPROT_KERNEL = 2;
export const RTPROT_STATIC = 4;
export const RT_SCOPE_UNIVERSE = 0;
export const RTN_UNICAST = 1;
export const FR_ACT_TO_TBL = 1;
export const FIB_RULE_INVERT = 0x2;

/** `struct nlmsghdr` (16 bytes). */
export const NLMSGHDR = { SIZE: 16, LEN: 0, TYPE: 4, FLAGS: 6, SEQ: 8, PID: 12 } as const;
/** `struct ifinfomsg` (16 bytes). */
export const IFINFOMSG = { SIZE: 16, FAMILY: 0, TYPE: 2, INDEX: 4, FLAGS: 8, CHANGE: 12 } as const;
/** `struct ifaddrmsg` (8 bytes). */
export const IFADDRMSG = { SIZE: 8, FAMILY: 0, PREFIXLEN: 1, FLAGS: 2, SCOPE: 3, INDEX: 4 } as const;
/** `struct rtmsg` (12 bytes). */
export const RTMSG = {
  SIZE: 12,
  FAMILY: 0,
  DST_LEN: 1,
  SRC_LEN: 2,
  TOS: 3,
  TABLE: 4,
  PROTOCOL: 5,
  SCOPE: 6,
  TYPE: 7,
  FLAGS: 8,
} as const;
/** `struct fib_rule_hdr` (12 bytes). */
export const FIB_RULE_HDR = {
  SIZE: 12,
  FAMILY: 0,
  DST_LEN: 1,
  SRC_LEN: 2,
  TOS: 3,
  TABLE: 4,
  ACTION: 7,
  FLAGS: 8,
} as const;
/** `struct rtattr` / `struct nlattr` header (4 bytes). */
export const RTATTR = { SIZE: 4, LEN: 0, TYPE: 2 } as const;
/** `struct nlmsgerr`: the error code, then the echoed request header. */
export const NLMSGERR = { SIZE: 20, ERROR: 0, MSG: 4 } as const;

const RECV_BUFFER_BYTES = 65536;
const RECV_BUFFER_BIG = BigInt(RECV_BUFFER_BYTES);
const REPLY_TIMEOUT_MS = 5000;

function align4(n: number): number {
  return (n + 3) & ~3;
}

function familyCode(family: 4 | 6): number {
  return family === 4 ? AF_INET : AF_INET6;
}

/** A netlink request under construction: header, a fixed struct, then attributes. */
class Request {
  #bytes = new Uint8Array(256);
  #view = new DataView(this.#bytes.buffer);
  #len: number;

  constructor(type: number, flags: number, fixedLen: number) {
    this.#len = NLMSGHDR.SIZE + align4(fixedLen);
    this.#view.setUint16(NLMSGHDR.TYPE, type, true);
    this.#view.setUint16(NLMSGHDR.FLAGS, flags, true);
  }

  /** The fixed struct after the header. */
  get fixed(): DataView {
    return new DataView(this.#bytes.buffer, NLMSGHDR.SIZE);
  }

  #attr(type: number, dataLen: number): number {
    const total = align4(RTATTR.SIZE + dataLen);
    if (this.#len + total > this.#bytes.length) throw new RangeError("netlink request too large");
    this.#view.setUint16(this.#len + RTATTR.LEN, RTATTR.SIZE + dataLen, true);
    this.#view.setUint16(this.#len + RTATTR.TYPE, type, true);
    const data = this.#len + RTATTR.SIZE;
    this.#len += total;
    return data;
  }

  u8(type: number, value: number): this {
    this.#bytes[this.#attr(type, 1)] = value;
    return this;
  }

  u32(type: number, value: number): this {
    this.#view.setUint32(this.#attr(type, 4), value, true);
    return this;
  }

  bytes(type: number, value: Uint8Array): this {
    this.#bytes.set(value, this.#attr(type, value.length));
    return this;
  }

  string(type: number, value: string): this {
    const encoded = new TextEncoder().encode(value);
    const data = this.#attr(type, encoded.length + 1);
    this.#bytes.set(encoded, data);
    this.#bytes[data + encoded.length] = 0;
    return this;
  }

  finish(seq: number): Uint8Array<ArrayBuffer> {
    this.#view.setUint32(NLMSGHDR.LEN, this.#len, true);
    this.#view.setUint32(NLMSGHDR.SEQ, seq, true);
    return this.#bytes.slice(0, this.#len);
  }
}

/** One received netlink message: its type and a view of its payload (after the header). */
export interface NetlinkMessage {
  type: number;
  flags: number;
  payload: DataView;
}

/** Attributes of a message as `type → DataView of the data`. */
export function parseAttributes(view: DataView, offset: number): Map<number, DataView> {
  const attrs = new Map<number, DataView>();
  let p = offset;
  while (p + RTATTR.SIZE <= view.byteLength) {
    const len = view.getUint16(p + RTATTR.LEN, true);
    if (len < RTATTR.SIZE || p + len > view.byteLength) break;
    const type = view.getUint16(p + RTATTR.TYPE, true) & 0x3fff; // strip NLA_F_NESTED/NET_BYTEORDER
    attrs.set(type, new DataView(view.buffer, view.byteOffset + p + RTATTR.SIZE, len - RTATTR.SIZE));
    p += align4(len);
  }
  return attrs;
}

function attrU32(attrs: Map<number, DataView>, type: number): number | undefined {
  const v = attrs.get(type);
  return v && v.byteLength >= 4 ? v.getUint32(0, true) : undefined;
}

function attrBytes(attrs: Map<number, DataView>, type: number): Uint8Array | undefined {
  const v = attrs.get(type);
  return v ? new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)) : undefined;
}

function attrString(attrs: Map<number, DataView>, type: number): string | undefined {
  const v = attrs.get(type);
  if (!v) return undefined;
  let end = 0;
  while (end < v.byteLength && v.getUint8(end) !== 0) end++;
  return new TextDecoder().decode(new Uint8Array(v.buffer, v.byteOffset, end));
}

/** A link as RTM_GETLINK reports it. */
export interface LinkInfo {
  index: number;
  name: string;
  /** IFF_* flags (IFF_UP = 1). */
  flags: number;
  mtu: number;
  txQueueLen: number;
}

/** Changes for {@link RtNetlink.setLink}; unset fields stay as they are. */
export interface LinkChange {
  up?: boolean;
  mtu?: number;
  txQueueLen?: number;
}

/** An interface address. */
export interface AddressInfo {
  family: 4 | 6;
  index: number;
  prefixLen: number;
  /** IFA_LOCAL for IPv4 (IFA_ADDRESS if absent), IFA_ADDRESS for IPv6: 4 or 16 bytes. */
  address: Uint8Array;
  /** IFA_ADDRESS as reported (the peer for point-to-point IPv4), for exact deletion. */
  peer: Uint8Array | undefined;
}

/** A route in a table. */
export interface RouteSpec {
  family: 4 | 6;
  /** Destination network, 4 or 16 bytes. */
  dst: Uint8Array;
  prefixLen: number;
  /** Routing table id (any u32; > 255 goes in RTA_TABLE only). */
  table: number;
  /** Output interface index. */
  oif: number;
  /** Route protocol (default RTPROT_STATIC). */
  protocol?: number;
  /** Route scope (default RT_SCOPE_UNIVERSE). */
  scope?: number;
}

/** A route as listed by {@link RtNetlink.listRoutes}. */
export interface RouteInfo {
  family: 4 | 6;
  dst: Uint8Array;
  prefixLen: number;
  table: number;
  oif: number | undefined;
  protocol: number;
  scope: number;
  type: number;
}

/** A policy rule: `[not] fwmark M lookup T`. */
export interface RuleSpec {
  family: 4 | 6;
  table: number;
  /** Match this fwmark (mask 0xffffffff). */
  fwmark?: number;
  /** FIB_RULE_INVERT: the rule applies to packets that do NOT match. */
  invert?: boolean;
  /** FRA_PROTOCOL (who installed the rule); default RTPROT_KERNEL like the reference gateway. */
  protocol?: number;
  /** FRA_PRIORITY; the kernel picks one when absent. */
  priority?: number;
}

/** A rule as listed by {@link RtNetlink.listRules}. */
export interface RuleInfo {
  family: 4 | 6;
  table: number;
  action: number;
  flags: number;
  fwmark: number | undefined;
  priority: number | undefined;
  protocol: number | undefined;
}

/** A NETLINK_ROUTE socket. Close it when done. */
export class RtNetlink {
  readonly #fd: number;
  readonly #poll: PollSet;
  readonly #recvBuf = new Uint8Array(RECV_BUFFER_BYTES);
  #seq = 1;

  /** Wraps an open netlink socket; use {@link RtNetlink.open}. */
  constructor(fd: number) {
    this.#fd = fd;
    this.#poll = new PollSet(1);
    this.#poll.add(fd, POLLIN);
  }

  /** Opens a NETLINK_ROUTE socket (extended acks on when supported). */
  static open(): RtNetlink {
    const sym = libc();
    const fd = sym.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0) throw new Errno(lastErrno(), "socket", { detail: "(AF_NETLINK, NETLINK_ROUTE)" });
    const one = new Uint8Array([1, 0, 0, 0]);
    sym.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4); // best effort: better error messages
    return new RtNetlink(fd);
  }

  close(): void {
    closeFd(this.#fd);
  }

  /**
   * Sends one request and collects the replies with its sequence number until the ack (or
   * NLMSG_DONE for dumps). Throws {@link Errno} for a negative ack.
   */
  #request(req: Request, what: string): NetlinkMessage[] {
    const seq = this.#seq++;
    const msg = req.finish(seq);
    const sym = libc();
    for (;;) {
      const n = sym.sendto(this.#fd, msg, BigInt(msg.length), 0, null, 0);
      if (n === msg.length) break;
      const errno = n < 0 ? lastErrno() : 0;
      if (errno !== EINTR) throw new Errno(errno, "sendto(netlink)", { detail: what });
    }
    const out: NetlinkMessage[] = [];
    for (;;) {
      const len = this.#recv(what);
      const view = new DataView(this.#recvBuf.buffer, 0, len);
      let p = 0;
      while (p + NLMSGHDR.SIZE <= len) {
        const mlen = view.getUint32(p + NLMSGHDR.LEN, true);
        if (mlen < NLMSGHDR.SIZE || p + mlen > len) break;
        const type = view.getUint16(p + NLMSGHDR.TYPE, true);
        const flags = view.getUint16(p + NLMSGHDR.FLAGS, true);
        const mseq = view.getUint32(p + NLMSGHDR.SEQ, true);
        const payload = new DataView(this.#recvBuf.buffer.slice(p + NLMSGHDR.SIZE, p + mlen));
        p += align4(mlen);
        if (mseq !== seq) continue; // a late answer to an earlier request
        if (type === NLMSG_ERROR) {
          const error = payload.getInt32(NLMSGERR.ERROR, true);
          if (error === 0) return out;
          throw new Errno(-error, "netlink", {
            detail: `${what}${extAckMessage(payload, flags)}`,
            ...(error === -1 ? { hint: NEED_NET_ADMIN_HINT } : {}),
          });
        }
        if (type === NLMSG_DONE) return out;
        if (type === NLMSG_NOOP) continue;
        out.push({ type, flags, payload });
      }
    }
  }

  #recv(what: string): number {
    const sym = libc();
    for (;;) {
      const n = sym.recvfrom(this.#fd, this.#recvBuf, RECV_BUFFER_BIG, 0, null, null);
      if (n > 0) return n;
      const errno = n < 0 ? lastErrno() : EAGAIN;
      if (errno === EINTR) continue;
      if (errno !== EAGAIN) throw new Errno(errno, "recvfrom(netlink)", { detail: what });
      if (this.#poll.poll(REPLY_TIMEOUT_MS) === 0) {
        throw new Errno(ETIMEDOUT, "netlink", { detail: `${what}: no answer from the kernel` });
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Links

  /** RTM_GETLINK by name. Throws {@link Errno} ENODEV when there is no such interface. */
  getLink(name: string): LinkInfo {
    const req = new Request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, IFINFOMSG.SIZE);
    req.fixed.setUint8(IFINFOMSG.FAMILY, AF_UNSPEC);
    req.string(IFLA_IFNAME, name);
    const replies = this.#request(req, `RTM_GETLINK "${name}"`);
    const msg = replies.find((m) => m.type === RTM_NEWLINK);
    if (!msg) throw new Errno(19, "netlink", { detail: `RTM_GETLINK "${name}": no link in the answer` });
    return parseLink(msg.payload);
  }

  /** RTM_NEWLINK on an existing link: up/down, MTU, TX queue length (IFLA_TXQLEN). */
  setLink(index: number, change: LinkChange): void {
    const req = new Request(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, IFINFOMSG.SIZE);
    const fixed = req.fixed;
    fixed.setUint8(IFINFOMSG.FAMILY, AF_UNSPEC);
    fixed.setInt32(IFINFOMSG.INDEX, index, true);
    if (change.up !== undefined) {
      fixed.setUint32(IFINFOMSG.FLAGS, change.up ? 1 : 0, true);
      fixed.setUint32(IFINFOMSG.CHANGE, 1, true);
    }
    if (change.mtu !== undefined) req.u32(IFLA_MTU, change.mtu);
    if (change.txQueueLen !== undefined) req.u32(IFLA_TXQLEN, change.txQueueLen);
    this.#request(req, `RTM_NEWLINK index ${index} ${JSON.stringify(change)}`);
  }

  // ------------------------------------------------------------------------------------------
  // Addresses

  /** RTM_GETADDR dump, optionally only for one interface index. */
  listAddresses(index?: number): AddressInfo[] {
    const req = new Request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, IFADDRMSG.SIZE);
    req.fixed.setUint8(IFADDRMSG.FAMILY, AF_UNSPEC);
    const out: AddressInfo[] = [];
    for (const msg of this.#request(req, "RTM_GETADDR")) {
      if (msg.type !== RTM_NEWADDR) continue;
      const p = msg.payload;
      const af = p.getUint8(IFADDRMSG.FAMILY);
      if (af !== AF_INET && af !== AF_INET6) continue;
      const ifIndex = p.getUint32(IFADDRMSG.INDEX, true);
      if (index !== undefined && ifIndex !== index) continue;
      const attrs = parseAttributes(p, IFADDRMSG.SIZE);
      const peer = attrBytes(attrs, IFA_ADDRESS);
      const address = af === AF_INET
        ? (attrBytes(attrs, IFA_LOCAL) ?? peer)
        : (peer ?? attrBytes(attrs, IFA_LOCAL));
      if (!address) continue;
      out.push({
        family: af === AF_INET ? 4 : 6,
        index: ifIndex,
        prefixLen: p.getUint8(IFADDRMSG.PREFIXLEN),
        address,
        peer,
      });
    }
    return out;
  }

  /** RTM_NEWADDR (create, exclusive): throws EEXIST when the address is already there. */
  addAddress(index: number, family: 4 | 6, address: Uint8Array, prefixLen: number): void {
    const req = addressRequest(
      RTM_NEWADDR,
      NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
      index,
      family,
      prefixLen,
    );
    req.bytes(IFA_LOCAL, address).bytes(IFA_ADDRESS, address);
    this.#request(req, `RTM_NEWADDR index ${index} ${formatAddr(address)}/${prefixLen}`);
  }

  /** RTM_DELADDR for an address as listed by {@link listAddresses}. */
  deleteAddress(info: AddressInfo): void {
    const req = addressRequest(
      RTM_DELADDR,
      NLM_F_REQUEST | NLM_F_ACK,
      info.index,
      info.family,
      info.prefixLen,
    );
    req.bytes(IFA_LOCAL, info.address);
    if (info.peer) req.bytes(IFA_ADDRESS, info.peer);
    this.#request(req, `RTM_DELADDR index ${info.index} ${formatAddr(info.address)}/${info.prefixLen}`);
  }

  /** Deletes every address on the interface; returns how many were removed. */
  flushAddresses(index: number): number {
    let removed = 0;
    for (const info of this.listAddresses(index)) {
      try {
        this.deleteAddress(info);
        removed++;
      } catch (error) {
        // EADDRNOTAVAIL: already gone (deleting an IPv4 primary also drops its secondaries).
        if (!Errno.is(error, 99)) throw error;
      }
    }
    return removed;
  }

  // ------------------------------------------------------------------------------------------
  // Routes

  /** RTM_NEWROUTE (create, exclusive): EEXIST when present; EOPNOTSUPP/EAFNOSUPPORT without IPv6. */
  addRoute(route: RouteSpec): void {
    this.#request(
      routeRequest(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, route),
      `RTM_NEWROUTE ${describeRoute(route)}`,
    );
  }

  /** RTM_DELROUTE. */
  deleteRoute(route: RouteSpec): void {
    this.#request(
      routeRequest(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, route),
      `RTM_DELROUTE ${describeRoute(route)}`,
    );
  }

  /** RTM_GETROUTE dump of one family, filtered to `table` (and `oif` when given). */
  listRoutes(family: 4 | 6, table: number, oif?: number): RouteInfo[] {
    const req = new Request(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, RTMSG.SIZE);
    req.fixed.setUint8(RTMSG.FAMILY, familyCode(family));
    const out: RouteInfo[] = [];
    for (const msg of this.#request(req, `RTM_GETROUTE table ${table}`)) {
      if (msg.type !== RTM_NEWROUTE) continue;
      const p = msg.payload;
      if (p.getUint8(RTMSG.FAMILY) !== familyCode(family)) continue;
      const attrs = parseAttributes(p, RTMSG.SIZE);
      const routeTable = attrU32(attrs, RTA_TABLE) ?? p.getUint8(RTMSG.TABLE);
      if (routeTable !== table) continue;
      const routeOif = attrU32(attrs, RTA_OIF);
      if (oif !== undefined && routeOif !== oif) continue;
      out.push({
        family,
        dst: attrBytes(attrs, RTA_DST) ?? new Uint8Array(family === 4 ? 4 : 16),
        prefixLen: p.getUint8(RTMSG.DST_LEN),
        table: routeTable,
        oif: routeOif,
        protocol: p.getUint8(RTMSG.PROTOCOL),
        scope: p.getUint8(RTMSG.SCOPE),
        type: p.getUint8(RTMSG.TYPE),
      });
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Rules

  /** RTM_NEWRULE (create, exclusive): EEXIST when an identical rule exists. */
  addRule(rule: RuleSpec): void {
    this.#request(
      ruleRequest(RTM_NEWRULE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, rule),
      `RTM_NEWRULE ${describeRule(rule)}`,
    );
  }

  /** RTM_DELRULE (matches on the given selectors). */
  deleteRule(rule: RuleSpec): void {
    this.#request(
      ruleRequest(RTM_DELRULE, NLM_F_REQUEST | NLM_F_ACK, rule),
      `RTM_DELRULE ${describeRule(rule)}`,
    );
  }

  /** RTM_GETRULE dump of one family. */
  listRules(family: 4 | 6): RuleInfo[] {
    const req = new Request(RTM_GETRULE, NLM_F_REQUEST | NLM_F_DUMP, FIB_RULE_HDR.SIZE);
    req.fixed.setUint8(FIB_RULE_HDR.FAMILY, familyCode(family));
    const out: RuleInfo[] = [];
    for (const msg of this.#request(req, "RTM_GETRULE")) {
      if (msg.type !== RTM_NEWRULE) continue;
      const p = msg.payload;
      if (p.getUint8(FIB_RULE_HDR.FAMILY) !== familyCode(family)) continue;
      const attrs = parseAttributes(p, FIB_RULE_HDR.SIZE);
      const protocol = attrs.get(FRA_PROTOCOL);
      out.push({
        family,
        table: attrU32(attrs, FRA_TABLE) ?? p.getUint8(FIB_RULE_HDR.TABLE),
        action: p.getUint8(FIB_RULE_HDR.ACTION),
        flags: p.getUint32(FIB_RULE_HDR.FLAGS, true),
        fwmark: attrU32(attrs, FRA_FWMARK),
        priority: attrU32(attrs, FRA_PRIORITY),
        protocol: protocol && protocol.byteLength >= 1 ? protocol.getUint8(0) : undefined,
      });
    }
    return out;
  }
}

function parseLink(p: DataView): LinkInfo {
  const attrs = parseAttributes(p, IFINFOMSG.SIZE);
  return {
    index: p.getInt32(IFINFOMSG.INDEX, true),
    name: attrString(attrs, IFLA_IFNAME) ?? "",
    flags: p.getUint32(IFINFOMSG.FLAGS, true),
    mtu: attrU32(attrs, IFLA_MTU) ?? 0,
    txQueueLen: attrU32(attrs, IFLA_TXQLEN) ?? 0,
  };
}

function addressRequest(
  type: number,
  flags: number,
  index: number,
  family: 4 | 6,
  prefixLen: number,
): Request {
  const req = new Request(type, flags, IFADDRMSG.SIZE);
  const fixed = req.fixed;
  fixed.setUint8(IFADDRMSG.FAMILY, familyCode(family));
  fixed.setUint8(IFADDRMSG.PREFIXLEN, prefixLen);
  fixed.setUint8(IFADDRMSG.SCOPE, RT_SCOPE_UNIVERSE);
  fixed.setUint32(IFADDRMSG.INDEX, index, true);
  return req;
}

function routeRequest(type: number, flags: number, route: RouteSpec): Request {
  const req = new Request(type, flags, RTMSG.SIZE);
  const fixed = req.fixed;
  fixed.setUint8(RTMSG.FAMILY, familyCode(route.family));
  fixed.setUint8(RTMSG.DST_LEN, route.prefixLen);
  fixed.setUint8(RTMSG.TABLE, route.table < 256 ? route.table : RT_TABLE_UNSPEC);
  fixed.setUint8(RTMSG.PROTOCOL, route.protocol ?? RTPROT_STATIC);
  fixed.setUint8(RTMSG.SCOPE, route.scope ?? RT_SCOPE_UNIVERSE);
  fixed.setUint8(RTMSG.TYPE, RTN_UNICAST);
  req.u32(RTA_TABLE, route.table);
  req.bytes(RTA_DST, route.dst);
  req.u32(RTA_OIF, route.oif);
  return req;
}

function ruleRequest(type: number, flags: number, rule: RuleSpec): Request {
  const req = new Request(type, flags, FIB_RULE_HDR.SIZE);
  const fixed = req.fixed;
  fixed.setUint8(FIB_RULE_HDR.FAMILY, familyCode(rule.family));
  fixed.setUint8(FIB_RULE_HDR.TABLE, rule.table < 256 ? rule.table : RT_TABLE_UNSPEC);
  fixed.setUint8(FIB_RULE_HDR.ACTION, FR_ACT_TO_TBL);
  fixed.setUint32(FIB_RULE_HDR.FLAGS, rule.invert ? FIB_RULE_INVERT : 0, true);
  req.u32(FRA_TABLE, rule.table);
  if (rule.fwmark !== undefined) req.u32(FRA_FWMARK, rule.fwmark);
  if (rule.priority !== undefined) req.u32(FRA_PRIORITY, rule.priority);
  req.u8(FRA_PROTOCOL, rule.protocol ?? RTPROT_KERNEL);
  return req;
}

/** The extended-ack text of an NLMSG_ERROR payload, as `": <text>"`, or "". */
function extAckMessage(payload: DataView, flags: number): string {
  if ((flags & NLM_F_ACK_TLVS) === 0 || payload.byteLength < NLMSGERR.SIZE) return "";
  let tlvOffset = NLMSGERR.SIZE;
  if ((flags & NLM_F_CAPPED) === 0) {
    tlvOffset = NLMSGERR.ERROR + 4 + align4(payload.getUint32(NLMSGERR.MSG, true));
  }
  if (tlvOffset >= payload.byteLength) return "";
  const text = attrString(parseAttributes(payload, tlvOffset), NLMSGERR_ATTR_MSG);
  return text ? `: ${text}` : "";
}

function formatAddr(bytes: Uint8Array): string {
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < bytes.length; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":");
}

function describeRoute(route: RouteSpec): string {
  return `${formatAddr(route.dst)}/${route.prefixLen} dev #${route.oif} table ${route.table}`;
}

function describeRule(rule: RuleSpec): string {
  const mark = rule.fwmark === undefined
    ? ""
    : `${rule.invert ? "not " : ""}fwmark 0x${rule.fwmark.toString(16)} `;
  return `IPv${rule.family} ${mark}lookup ${rule.table}`;
}
