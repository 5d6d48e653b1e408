/**
 * Child process for tests/integration/tun_test.ts, run inside a fresh network namespace:
 * `deno run --allow-all tun_netns_child.ts <ifname> <offload:0|1>`.
 *
 * Opens and configures the TUN device with our FFI/netlink code, exchanges packets with the
 * kernel through it, prints one JSON line with what it observed, then keeps the device open until
 * its stdin closes so the parent can inspect the namespace with `ip`.
 */
import { POLLIN, PollSet } from "../../ffi/poll.ts";
import { SO_MARK, SO_RCVBUF, SO_SNDBUF, SOL_SOCKET } from "../../ffi/structs.ts";
import { tunOffloadNames } from "../../ffi/tun_linux.ts";
import { getSockOptInt } from "../../ffi/udp_linux.ts";
import { PacketArena, TUN_HEADROOM, TUN_TAILROOM } from "../../src/io/packet_arena.ts";
import { FIREZONE_TABLE, TunDevice, TunStat } from "../../src/io/tun_device.ts";
import { UdpSendBatch, UdpSocket, UdpSockets, UdpStat } from "../../src/io/udp_sockets.ts";
import { parseIp } from "../../src/wire/ip_addr.ts";

const [name = "tun-fzffi", offloadArg = "0"] = Deno.args;
const offload = offloadArg === "1";

// ---------------------------------------------------------------------------------------------
// Minimal packet crafting and checking (independent of src/wire).

function sum16(b: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

function get16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function get32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) >>> 0) + (b[o + 1]! << 16) + (b[o + 2]! << 8) + b[o + 3]!;
}

function put32(b: Uint8Array, o: number, v: number): void {
  put16(b, o, Math.floor(v / 65536));
  put16(b, o + 2, v % 65536);
}

function ipv4(src: string, dst: string, proto: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  put16(p, 2, p.length);
  p[8] = 64;
  p[9] = proto;
  p.set(parseIp(src)!, 12);
  p.set(parseIp(dst)!, 16);
  put16(p, 10, ~sum16(p.subarray(0, 20)) & 0xffff);
  p.set(payload, 20);
  return p;
}

function ipv6(src: string, dst: string, next: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(40 + payload.length);
  p[0] = 0x60;
  put16(p, 4, payload.length);
  p[6] = next;
  p[7] = 64;
  p.set(parseIp(src)!, 8);
  p.set(parseIp(dst)!, 24);
  p.set(payload, 40);
  return p;
}

/** Fills in the L4 checksum at `csumOff` (relative to the L4 header) using the pseudo-header. */
function l4Checksum(pkt: Uint8Array, csumOff: number): void {
  const v6 = pkt[0]! >> 4 === 6;
  const l4 = v6 ? 40 : 20;
  const proto = v6 ? pkt[6]! : pkt[9]!;
  const len = pkt.length - l4;
  put16(pkt, l4 + csumOff, 0);
  const pseudo = sum16(v6 ? pkt.subarray(8, 40) : pkt.subarray(12, 20)) + proto + len;
  put16(pkt, l4 + csumOff, ~sum16(pkt.subarray(l4), pseudo) & 0xffff);
}

function l4ChecksumOk(pkt: Uint8Array): boolean {
  const v6 = pkt[0]! >> 4 === 6;
  const l4 = v6 ? 40 : 20;
  const proto = v6 ? pkt[6]! : pkt[9]!;
  const pseudo = sum16(v6 ? pkt.subarray(8, 40) : pkt.subarray(12, 20)) + proto + (pkt.length - l4);
  return sum16(pkt.subarray(l4), pseudo) === 0xffff;
}

function echoRequest(v6: boolean, id: number, seq: number, data: Uint8Array): Uint8Array {
  const icmp = new Uint8Array(8 + data.length);
  icmp[0] = v6 ? 128 : 8;
  put16(icmp, 4, id);
  put16(icmp, 6, seq);
  icmp.set(data, 8);
  if (v6) {
    const pkt = ipv6("fd00:2021:1111::3", "fd00:2021:1111::2", 58, icmp);
    l4Checksum(pkt, 2);
    return pkt;
  }
  put16(icmp, 2, ~sum16(icmp) & 0xffff);
  return ipv4("100.64.0.3", "100.64.0.2", 1, icmp);
}

function isEchoReply(v6: boolean, data: Uint8Array): (pkt: Uint8Array) => boolean {
  return (pkt) => {
    if (v6) {
      return pkt[0]! >> 4 === 6 && pkt[6] === 58 && pkt[40] === 129 && get16(pkt, 44) === 0x4242 &&
        get16(pkt, 46) === 7 && l4ChecksumOk(pkt) &&
        pkt.subarray(48).every((b, i) => b === data[i]) && pkt[23] === 2 && pkt[39] === 3;
    }
    return pkt[0]! >> 4 === 4 && pkt[9] === 1 && pkt[20] === 0 && get16(pkt, 24) === 0x4242 &&
      get16(pkt, 26) === 7 && pkt[15] === 2 && pkt[19] === 3 && sum16(pkt.subarray(20)) === 0xffff &&
      pkt.subarray(28).every((b, i) => b === data[i]);
  };
}

// ---------------------------------------------------------------------------------------------

const SLOT = 2048;
const arena = new PacketArena({
  slots: 64,
  slotSize: SLOT,
  headroom: TUN_HEADROOM,
  tailroom: TUN_TAILROOM,
  scratchBytes: TunDevice.scratchBytesFor(SLOT),
});
const offsets = new Uint32Array(64);
arena.fillDataOffsets(offsets);
const lengths = new Uint32Array(64);

const tun = TunDevice.open({ name, offload });
const poll = new PollSet(1);
poll.add(tun.fd, POLLIN);

function writePacket(pkt: Uint8Array): number {
  const off = arena.dataOffset(63);
  arena.bytes.set(pkt, off);
  return tun.writeBatch(arena, new Uint32Array([off]), new Uint32Array([pkt.length]), 1);
}

/** Reads packets (letting the event loop run between polls) until `accept` returns true. */
async function readUntil(accept: (pkt: Uint8Array) => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const n = tun.readBatch(arena, offsets, lengths, 60);
    for (let i = 0; i < n; i++) {
      if (accept(arena.bytes.slice(offsets[i]!, offsets[i]! + lengths[i]!))) return true;
    }
    if (n === 0 && !tun.hasPendingSegments) {
      poll.poll(0);
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  return false;
}

const result: Record<string, unknown> = {
  name: tun.name,
  ifIndex: tun.ifIndex,
  offloadFlags: tun.offloadFlags,
  offloadNames: tunOffloadNames(tun.offloadFlags),
  vnetHdr: tun.vnetHdr,
  txQueueLen: tun.txQueueLen,
};

try {
  // Configure twice: the second run must tolerate existing rules/routes and remove the stale one.
  tun.configure({
    ipv4: "100.64.0.2",
    ipv6: "fd00:2021:1111::2",
    routes: ["100.64.0.0/11", "fd00:2021:1111::/107", "10.99.0.0/16"],
  });
  result.routesFirst = tun.netlink.listRoutes(4, FIREZONE_TABLE, tun.ifIndex).map((r) =>
    `${r.dst.join(".")}/${r.prefixLen}`
  );
  tun.configure({ ipv4: "100.64.0.2", ipv6: "fd00:2021:1111::2" });
  result.routesSecond = tun.netlink.listRoutes(4, FIREZONE_TABLE, tun.ifIndex).map((r) =>
    `${r.dst.join(".")}/${r.prefixLen}`
  );
  const link = tun.netlink.getLink(tun.name);
  result.link = { mtu: link.mtu, txQueueLen: link.txQueueLen, up: (link.flags & 1) === 1 };
  result.rules4 = tun.netlink.listRules(4).filter((r) => r.table === FIREZONE_TABLE).length;
  result.rules6 = tun.netlink.listRules(6).filter((r) => r.table === FIREZONE_TABLE).length;
  // RTM_DELRULE removes it; the next configure puts it back.
  tun.netlink.deleteRule({ family: 4, table: FIREZONE_TABLE, fwmark: 0xfd002021, invert: true });
  result.rules4AfterDelete = tun.netlink.listRules(4).filter((r) => r.table === FIREZONE_TABLE).length;
  tun.configure({ ipv4: "100.64.0.2", ipv6: "fd00:2021:1111::2" });

  // ICMP echo through the TUN: the kernel answers from the tunnel address.
  const data = new TextEncoder().encode("fz-gateway tun echo test 0123456789");
  for (const v6 of [false, true]) {
    // A new IPv6 address is briefly tentative (DAD runs from a workqueue even on NOARP links), so
    // an early request can be dropped: retry a few times.
    let got = false;
    for (let attempt = 0; attempt < 10 && !got; attempt++) {
      writePacket(echoRequest(v6, 0x4242, 7, data));
      got = await readUntil(isEchoReply(v6, data), 300);
    }
    result[v6 ? "echo6" : "echo4"] = got;
  }

  // TCP: let the kernel connect through the TUN, answer its SYN, then collect its first flight.
  const conn = Deno.connect({ hostname: "100.64.0.3", port: 8080 });
  let synAck: Uint8Array | null = null;
  let clientPort = 0;
  let clientIsn = 0;
  const SERVER_ISN = 1_000_000;
  await readUntil((pkt) => {
    if (pkt[0]! >> 4 !== 4 || pkt[9] !== 6 || (pkt[33]! & 0x12) !== 0x02) return false;
    clientPort = get16(pkt, 20);
    clientIsn = get32(pkt, 24);
    const tcp = new Uint8Array(24);
    put16(tcp, 0, 8080);
    put16(tcp, 2, clientPort);
    put32(tcp, 4, SERVER_ISN);
    put32(tcp, 8, (clientIsn + 1) % 2 ** 32);
    tcp[12] = 6 << 4;
    tcp[13] = 0x12;
    put16(tcp, 14, 65535);
    tcp.set([2, 4, 0x04, 0xd8], 20); // MSS 1240
    synAck = ipv4("100.64.0.3", "100.64.0.2", 6, tcp);
    l4Checksum(synAck, 16);
    return true;
  });
  result.tcpSyn = synAck !== null;
  if (synAck !== null) {
    writePacket(synAck);
    const stream = await conn;
    const payload = new Uint8Array(60_000).map((_, i) => (i * 13) & 0xff);
    const writing = stream.write(payload);
    let expectSeq = (clientIsn + 1) % 2 ** 32;
    let segments = 0;
    let bytes = 0;
    let badChecksums = 0;
    let outOfOrder = 0;
    let maxLen = 0;
    let payloadOk = true;
    await readUntil((pkt) => {
      if (pkt[0]! >> 4 !== 4 || pkt[9] !== 6 || get16(pkt, 20) !== clientPort) return false;
      const dataOff = 20 + (pkt[32]! >> 4) * 4;
      const len = pkt.length - dataOff;
      if (len === 0) return false;
      segments++;
      maxLen = Math.max(maxLen, pkt.length);
      if (!l4ChecksumOk(pkt) || sum16(pkt.subarray(0, 20)) !== 0xffff || get16(pkt, 2) !== pkt.length) {
        badChecksums++;
      }
      const seq = get32(pkt, 24);
      if (seq !== expectSeq) outOfOrder++;
      const base = (seq - ((clientIsn + 1) % 2 ** 32) + 2 ** 32) % 2 ** 32;
      for (let i = 0; i < len; i++) if (pkt[dataOff + i] !== payload[base + i]) payloadOk = false;
      expectSeq = (seq + len) % 2 ** 32;
      bytes += len;
      return segments >= 8;
    });
    result.tcp = { segments, bytes, badChecksums, outOfOrder, maxLen, payloadOk };
    stream.close();
    await writing.catch(() => {});
  }

  // TCP into the TUN: connect to a local server through it and write a burst of data segments in
  // one batch (coalesced into super-packets when offload is on).
  const listener = Deno.listen({ hostname: "100.64.0.2", port: 8081 });
  const accepted = listener.accept();
  accepted.catch(() => {}); // rejected when no connection arrives before close
  const peerPort = 20000 + (Deno.pid % 40000);
  const C0 = 7_000_000;
  const syn = new Uint8Array(24);
  put16(syn, 0, peerPort);
  put16(syn, 2, 8081);
  put32(syn, 4, C0);
  syn[12] = 6 << 4;
  syn[13] = 0x02;
  put16(syn, 14, 65535);
  syn.set([2, 4, 0x04, 0xd8], 20);
  const synPkt = ipv4("100.64.0.3", "100.64.0.2", 6, syn);
  l4Checksum(synPkt, 16);
  writePacket(synPkt);
  let serverIsn = -1;
  await readUntil((pkt) => {
    if (pkt[0]! >> 4 !== 4 || pkt[9] !== 6 || get16(pkt, 20) !== 8081 || (pkt[33]! & 0x12) !== 0x12) {
      return false;
    }
    serverIsn = get32(pkt, 24);
    return true;
  });
  result.inboundSynAck = serverIsn >= 0;
  if (serverIsn >= 0) {
    const segment = (seq: number, flags: number, payload: Uint8Array, id: number): Uint8Array => {
      const tcp = new Uint8Array(20 + payload.length);
      put16(tcp, 0, peerPort);
      put16(tcp, 2, 8081);
      put32(tcp, 4, seq % 2 ** 32);
      put32(tcp, 8, (serverIsn + 1) % 2 ** 32);
      tcp[12] = 5 << 4;
      tcp[13] = flags;
      put16(tcp, 14, 65535);
      tcp.set(payload, 20);
      const pkt = ipv4("100.64.0.3", "100.64.0.2", 6, tcp);
      pkt[6] = 0x40; // DF
      put16(pkt, 4, id);
      put16(pkt, 10, 0);
      put16(pkt, 10, ~sum16(pkt.subarray(0, 20)) & 0xffff);
      l4Checksum(pkt, 16);
      return pkt;
    };
    writePacket(segment(C0 + 1, 0x10, new Uint8Array(0), 1));
    const conn = await accepted;
    const SEGMENTS = 40;
    const SIZE = 1000;
    const data = new Uint8Array(SEGMENTS * SIZE - 333).map((_, i) => (i * 7 + 1) & 0xff);
    const received = new Uint8Array(data.length);
    let got = 0;
    const reading = (async () => {
      while (got < data.length) {
        const n = await conn.read(received.subarray(got));
        if (n === null) break;
        got += n;
      }
    })();
    const wOff = new Uint32Array(SEGMENTS);
    const wLen = new Uint32Array(SEGMENTS);
    for (let k = 0; k < SEGMENTS; k++) {
      const chunk = data.subarray(k * SIZE, Math.min(data.length, (k + 1) * SIZE));
      const pkt = segment(C0 + 1 + k * SIZE, k === SEGMENTS - 1 ? 0x18 : 0x10, chunk, 2 + k);
      wOff[k] = arena.dataOffset(k);
      wLen[k] = pkt.length;
      arena.bytes.set(pkt, wOff[k]!);
    }
    const written = tun.writeBatch(arena, wOff, wLen, SEGMENTS);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([reading, new Promise((r) => timer = setTimeout(r, 3000))]);
    clearTimeout(timer);
    result.inbound = {
      written,
      received: got,
      intact: got === data.length && received.every((b, i) => b === data[i]),
      superPackets: tun.stats[TunStat.TxSuperPackets],
      writes: tun.stats[TunStat.TxWrites],
      coalesced: Array.from(tun.txCoalesced).flatMap((c, n) => c > 0 ? [[n, c]] : []),
    };
    conn.close();
  }
  listener.close();

  // The gateway's sockets with default options (root: SO_MARK and forced buffer sizes work).
  const sockets = UdpSockets.bind();
  result.gatewaySockets = [sockets.v4, sockets.v6].map((sock) =>
    sock === null ? null : {
      port: sock.localPort,
      mark: getSockOptInt(sock.fd, SOL_SOCKET, SO_MARK, "SO_MARK") >>> 0,
      rcvBuf: getSockOptInt(sock.fd, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF"),
      sndBuf: getSockOptInt(sock.fd, SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF"),
    }
  );
  sockets.close();

  // UDP with UDP_SEGMENT through the TUN (USO when negotiated).
  const udp = UdpSocket.bind({ family: 4, address: "0.0.0.0", port: 0, mark: null, gro: false });
  const udpArena = new PacketArena({ slots: 8, slotSize: 2048 });
  const batch = new UdpSendBatch(8);
  for (let i = 0; i < 8; i++) {
    const len = i === 7 ? 77 : 1000;
    udpArena.bytes.fill(i + 1, i * 2048, i * 2048 + len);
    batch.push(udpArena, i * 2048, len, 4, parseIp("100.64.0.3")!, 0, 9999, null, 0);
  }
  result.udpSent = udp.sendBatch(batch);
  result.udpGsoMessages = udp.stats[UdpStat.TxGsoMessages];
  const udpLens: number[] = [];
  let udpBad = 0;
  await readUntil((pkt) => {
    if (pkt[0]! >> 4 !== 4 || pkt[9] !== 17 || get16(pkt, 22) !== 9999) return false;
    const len = get16(pkt, 24) - 8;
    const tag = udpLens.length + 1;
    if (!l4ChecksumOk(pkt) || sum16(pkt.subarray(0, 20)) !== 0xffff || pkt.length !== 28 + len) udpBad++;
    if (!pkt.subarray(28).every((b) => b === tag)) udpBad++;
    udpLens.push(len);
    return udpLens.length >= 8;
  });
  udp.close();
  result.udp = { lengths: udpLens, bad: udpBad };
  result.stats = {
    superPackets: tun.stats[TunStat.RxSuperPackets],
    checksumsCompleted: tun.stats[TunStat.RxChecksumsCompleted],
    dropped: tun.stats[TunStat.RxDropped],
    rxErrors: tun.stats[TunStat.RxErrors],
    txPackets: tun.stats[TunStat.TxPackets],
  };
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

await Deno.stdout.write(new TextEncoder().encode(JSON.stringify(result) + "\n"));
// Keep the device alive until the parent has looked at the namespace.
const buf = new Uint8Array(16);
while ((await Deno.stdin.read(buf)) !== null) { /* wait for EOF */ }
tun.close();
