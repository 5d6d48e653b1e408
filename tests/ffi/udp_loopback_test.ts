/**
 * UdpSocket/UdpSockets over loopback (no root needed): recvmmsg/sendmmsg on 127.0.0.1 and ::1,
 * pktinfo local addresses, explicit source addresses, GSO sends with and without GRO receive, the
 * GSO fallback when the kernel refuses UDP_SEGMENT, and the bind fallback rules.
 */
import assert from "node:assert/strict";
import { EINVAL } from "../../ffi/errno.ts";
import { POLLIN, PollSet } from "../../ffi/poll.ts";
import { IP_PKTINFO, SOL_IP, SOL_SOCKET } from "../../ffi/structs.ts";
import { setSockOptInt } from "../../ffi/udp_linux.ts";
import { PacketArena } from "../../src/io/packet_arena.ts";
import {
  GRO_SLOT_BYTES,
  NoUdpSocketsError,
  raiseSocketBufferLimits,
  UdpRecvBatch,
  UdpSendBatch,
  UdpSocket,
  UdpSockets,
  UdpStat,
} from "../../src/io/udp_sockets.ts";
import { parseIp } from "../../src/wire/ip_addr.ts";

const SO_NO_CHECK = 11; // makes the kernel refuse UDP GSO with EINVAL: a real fallback trigger

function ip(text: string): Uint8Array {
  const bytes = parseIp(text);
  if (!bytes) throw new TypeError(text);
  return bytes;
}

function ipv6LoopbackUsable(): boolean {
  try {
    UdpSocket.bind({ family: 6, address: "::1", port: 0, mark: null }).close();
    return true;
  } catch {
    return false;
  }
}
const hasIpv6 = ipv6LoopbackUsable();

/** Fills slot `i` of `arena` with a recognisable pattern of `len` bytes. */
function fill(arena: PacketArena, i: number, len: number, tag: number): number {
  const off = arena.dataOffset(i);
  for (let k = 0; k < len; k++) arena.bytes[off + k] = (tag * 31 + k) & 0xff;
  return off;
}

function expectPattern(bytes: Uint8Array, off: number, len: number, tag: number): void {
  for (let k = 0; k < len; k++) {
    if (bytes[off + k] !== ((tag * 31 + k) & 0xff)) assert.fail(`datagram ${tag}: byte ${k} differs`);
  }
}

/** Receives until `want` entries arrived (loopback delivery is synchronous; poll guards anyway). */
function receive(socket: UdpSocket, batch: UdpRecvBatch, want: number): number {
  batch.clear();
  const poll = new PollSet(1);
  poll.add(socket.fd, POLLIN);
  for (let tries = 0; tries < 50 && batch.count < want; tries++) {
    if (socket.recvBatch(batch) === 0) poll.poll(20);
  }
  return batch.count;
}

interface Pair {
  rx: UdpSocket;
  tx: UdpSocket;
  close(): void;
}

function pair(family: 4 | 6, rxOpts: { gro: boolean; address?: string }, txOpts: { gso: boolean }): Pair {
  const any = family === 4 ? "0.0.0.0" : "::";
  const rx = UdpSocket.bind({ family, address: rxOpts.address ?? any, port: 0, mark: null, gro: rxOpts.gro });
  const tx = UdpSocket.bind({ family, address: any, port: 0, mark: null, gso: txOpts.gso, gro: false });
  return {
    rx,
    tx,
    close() {
      rx.close();
      tx.close();
    },
  };
}

for (const family of [4, 6] as const) {
  const loop = family === 4 ? "127.0.0.1" : "::1";
  Deno.test({
    name: `UdpSocket sendmmsg/recvmmsg on ${loop}: sizes, payloads, source and local addresses`,
    ignore: family === 6 && !hasIpv6,
    fn() {
      const p = pair(family, { gro: false }, { gso: false });
      try {
        const arena = new PacketArena({ slots: 16, slotSize: 2048, headroom: 20, tailroom: 31 });
        const batch = new UdpSendBatch(16);
        const sizes = [1, 1316, 40, 0, 700];
        sizes.forEach((len, i) => {
          assert.ok(
            batch.push(arena, fill(arena, i, len, i), len, family, ip(loop), 0, p.rx.localPort, null, 0),
          );
        });
        assert.equal(p.tx.sendBatch(batch), sizes.length);
        assert.equal(batch.count, 0, "batch emptied");
        assert.equal(p.tx.stats[UdpStat.TxDatagrams], sizes.length);
        assert.equal(p.tx.stats[UdpStat.TxGsoMessages], 0);

        const rb = p.rx.newRecvBatch(8);
        assert.equal(receive(p.rx, rb, sizes.length), sizes.length);
        sizes.forEach((len, i) => {
          assert.equal(rb.length[i], len);
          expectPattern(rb.arena.bytes, rb.offset[i]!, len, i);
          assert.equal(rb.family[i], family);
          assert.deepEqual(rb.sourceAddr(i), { family, ip: loop, port: p.tx.localPort });
          assert.deepEqual(rb.localAddr(i), { family, ip: loop, port: p.rx.localPort });
          assert.equal(rb.segmentSize[i], len);
        });
        if (family === 4) assert.equal(rb.srcV4[0], 0x7f000001);
        assert.equal(p.rx.recvBatch(rb), 0, "nothing more queued: EAGAIN is 0, not an error");
        assert.equal(p.rx.stats[UdpStat.RxErrors], 0);
      } finally {
        p.close();
      }
    },
  });
}

Deno.test("UdpSocket reports the datagram's local destination address from IP_PKTINFO", () => {
  const p = pair(4, { gro: false }, { gso: false });
  try {
    const arena = new PacketArena({ slots: 4, slotSize: 256 });
    const batch = new UdpSendBatch(4);
    batch.push(arena, fill(arena, 0, 10, 1), 10, 4, ip("127.0.0.2"), 0, p.rx.localPort, null, 0);
    batch.push(arena, fill(arena, 1, 10, 2), 10, 4, ip("127.0.0.3"), 0, p.rx.localPort, null, 0);
    assert.equal(p.tx.sendBatch(batch), 2);
    const rb = p.rx.newRecvBatch(4);
    assert.equal(receive(p.rx, rb, 2), 2);
    assert.equal(p.rx.localIp, "0.0.0.0");
    assert.equal(rb.localAddr(0).ip, "127.0.0.2");
    assert.equal(rb.localAddr(1).ip, "127.0.0.3");
  } finally {
    p.close();
  }
});

Deno.test("Datagrams that arrive without pktinfo are skipped and counted", () => {
  const p = pair(4, { gro: false }, { gso: false });
  try {
    setSockOptInt(p.rx.fd, SOL_IP, IP_PKTINFO, 0, "IP_PKTINFO");
    const arena = new PacketArena({ slots: 2, slotSize: 256 });
    const batch = new UdpSendBatch(2);
    batch.push(arena, fill(arena, 0, 10, 0), 10, 4, ip("127.0.0.1"), 0, p.rx.localPort, null, 0);
    assert.equal(p.tx.sendBatch(batch), 1);
    const rb = p.rx.newRecvBatch(2);
    assert.equal(receive(p.rx, rb, 1), 0);
    assert.equal(p.rx.stats[UdpStat.RxNoPktinfo], 1);
  } finally {
    p.close();
  }
});

Deno.test("UdpSendBatch sends from an explicit source address (IP_PKTINFO on send)", () => {
  const p = pair(4, { gro: false }, { gso: true });
  try {
    const arena = new PacketArena({ slots: 8, slotSize: 256 });
    const batch = new UdpSendBatch(8);
    const src = ip("127.0.0.5");
    for (let i = 0; i < 3; i++) {
      batch.push(arena, fill(arena, i, 100, i), 100, 4, ip("127.0.0.1"), 0, p.rx.localPort, src, 0);
    }
    batch.push(arena, fill(arena, 3, 100, 3), 100, 4, ip("127.0.0.1"), 0, p.rx.localPort, null, 0);
    assert.equal(p.tx.sendBatch(batch), 4);
    const rb = p.rx.newRecvBatch(8);
    assert.equal(receive(p.rx, rb, 4), 4);
    for (let i = 0; i < 3; i++) assert.equal(rb.sourceAddr(i).ip, "127.0.0.5");
    assert.equal(rb.sourceAddr(3).ip, "127.0.0.1");
    assert.equal(p.tx.txSegments[3], 1, "same source: one GSO message of 3");
    assert.equal(p.tx.txSegments[1], 1, "different source choice: its own message");
  } finally {
    p.close();
  }
});

for (const family of [4, 6] as const) {
  for (const gro of [false, true]) {
    const loop = family === 4 ? "127.0.0.1" : "::1";
    Deno.test({
      name: `GSO send of equal segments plus a shorter tail arrives intact (IPv${family}, GRO ${
        gro ? "on" : "off"
      })`,
      ignore: family === 6 && !hasIpv6,
      fn() {
        const p = pair(family, { gro }, { gso: true });
        try {
          assert.ok(p.tx.gsoEnabled, "kernel supports UDP_SEGMENT");
          const arena = new PacketArena({ slots: 80, slotSize: 2048, headroom: 20, tailroom: 31 });
          const batch = new UdpSendBatch(128);
          const n = 70; // 54 × 1200 bytes reach the 65507-byte cap: two GSO messages
          const seg = 1200;
          for (let i = 0; i < n; i++) {
            const len = i === n - 1 ? 333 : seg;
            batch.push(arena, fill(arena, i, len, i), len, family, ip(loop), 0, p.rx.localPort, null, 0);
          }
          assert.equal(p.tx.sendBatch(batch), n);
          assert.equal(p.tx.stats[UdpStat.TxGsoMessages], 2);
          assert.equal(p.tx.txSegments[54], 1);
          assert.equal(p.tx.txSegments[16], 1);

          const rb = p.rx.newRecvBatch(80);
          assert.equal(rb.slotSize, gro && p.rx.groEnabled ? GRO_SLOT_BYTES : 2048);
          assert.equal(receive(p.rx, rb, n), n);
          for (let i = 0; i < n; i++) {
            const len = i === n - 1 ? 333 : seg;
            assert.equal(rb.length[i], len);
            expectPattern(rb.arena.bytes, rb.offset[i]!, len, i);
            assert.equal(rb.srcPort[i], p.tx.localPort);
          }
          if (gro && p.rx.groEnabled) {
            assert.ok(p.rx.stats[UdpStat.RxGroMessages]! >= 1, "kernel coalesced the GSO send");
            assert.ok(p.rx.stats[UdpStat.RxCalls]! < n);
            assert.equal(rb.segmentSize[0], seg);
          } else {
            assert.equal(p.rx.stats[UdpStat.RxGroMessages], 0);
          }
        } finally {
          p.close();
        }
      },
    });
  }
}

Deno.test("GSO messages carry at most 64 segments", () => {
  const p = pair(4, { gro: false }, { gso: true });
  try {
    const arena = new PacketArena({ slots: 100, slotSize: 256 });
    const batch = new UdpSendBatch(128);
    for (let i = 0; i < 100; i++) {
      batch.push(arena, fill(arena, i, 100, i), 100, 4, ip("127.0.0.1"), 0, p.rx.localPort, null, 0);
    }
    assert.equal(p.tx.sendBatch(batch), 100);
    assert.equal(p.tx.txSegments[64], 1);
    assert.equal(p.tx.txSegments[36], 1);
    const rb = p.rx.newRecvBatch(100);
    assert.equal(receive(p.rx, rb, 100), 100);
  } finally {
    p.close();
  }
});

Deno.test("GSO groups break on destination change, size change, and a longer datagram", () => {
  const p = pair(4, { gro: false }, { gso: true });
  const other = UdpSocket.bind({ family: 4, address: "127.0.0.1", port: 0, mark: null, gro: false });
  try {
    const arena = new PacketArena({ slots: 16, slotSize: 2048 });
    const batch = new UdpSendBatch(16);
    const plan: Array<[number, number]> = [ // [length, port]
      [500, p.rx.localPort],
      [500, p.rx.localPort],
      [500, other.localPort], // new destination
      [500, other.localPort],
      [300, other.localPort], // shorter tail ends the group
      [300, other.localPort], // new group
      [900, other.localPort], // longer than the group's size: new group
    ];
    plan.forEach(([len, port], i) =>
      batch.push(arena, fill(arena, i, len, i), len, 4, ip("127.0.0.1"), 0, port, null, 0)
    );
    assert.equal(p.tx.sendBatch(batch), plan.length);
    assert.deepEqual([...p.tx.txSegments.subarray(1, 4)], [2, 1, 1], "messages of 1, 2, 3 segments");
    const a = p.rx.newRecvBatch(8);
    const b = other.newRecvBatch(8);
    assert.equal(receive(p.rx, a, 2), 2);
    assert.equal(receive(other, b, 5), 5);
    assert.deepEqual([...b.length.subarray(0, 5)], [500, 500, 300, 300, 900]);
  } finally {
    p.close();
    other.close();
  }
});

Deno.test("UdpSocket falls back to one datagram per message when the kernel refuses GSO", () => {
  const p = pair(4, { gro: false }, { gso: true });
  try {
    setSockOptInt(p.tx.fd, SOL_SOCKET, SO_NO_CHECK, 1, "SO_NO_CHECK"); // GSO now fails with EINVAL
    const arena = new PacketArena({ slots: 16, slotSize: 2048 });
    const batch = new UdpSendBatch(16);
    for (let i = 0; i < 10; i++) {
      const len = i === 9 ? 50 : 1000;
      batch.push(arena, fill(arena, i, len, i), len, 4, ip("127.0.0.1"), 0, p.rx.localPort, null, 0);
    }
    assert.equal(p.tx.sendBatch(batch), 10);
    assert.equal(p.tx.gsoEnabled, false, "GSO disabled after EINVAL");
    assert.equal(p.tx.stats[UdpStat.TxGsoMessages], 0);
    assert.equal(p.tx.txSegments[1], 10);
    assert.equal(p.tx.errors[EINVAL], 0, "the refused message was retried, not dropped");
    const rb = p.rx.newRecvBatch(16);
    assert.equal(receive(p.rx, rb, 10), 10);
    for (let i = 0; i < 10; i++) expectPattern(rb.arena.bytes, rb.offset[i]!, rb.length[i]!, i);
  } finally {
    p.close();
  }
});

Deno.test("A datagram the kernel rejects is dropped and counted; the rest is sent", () => {
  const p = pair(4, { gro: false }, { gso: false });
  try {
    const arena = new PacketArena({ slots: 4, slotSize: 256 });
    const batch = new UdpSendBatch(4);
    batch.push(arena, fill(arena, 0, 10, 0), 10, 4, ip("127.0.0.1"), 0, p.rx.localPort, null, 0);
    batch.push(arena, fill(arena, 1, 10, 1), 10, 4, ip("127.0.0.1"), 0, 0, null, 0); // port 0: EINVAL
    batch.push(arena, fill(arena, 2, 10, 2), 10, 4, ip("127.0.0.1"), 0, p.rx.localPort, null, 0);
    assert.equal(p.tx.sendBatch(batch), 2);
    assert.equal(batch.count, 0);
    assert.equal(p.tx.stats[UdpStat.TxErrors], 1);
    assert.equal(p.tx.errors[EINVAL], 1);
    const rb = p.rx.newRecvBatch(4);
    assert.equal(receive(p.rx, rb, 2), 2);
  } finally {
    p.close();
  }
});

Deno.test("UdpSockets.bind falls back to a random port when the port is taken", () => {
  const holder = UdpSocket.bind({ family: 4, address: "127.0.0.1", port: 0, mark: null });
  try {
    const sockets = UdpSockets.bind({
      ipv4: "127.0.0.1",
      ipv6: hasIpv6 ? "::1" : null,
      port: holder.localPort,
      mark: null,
    });
    try {
      assert.ok(sockets.v4 !== null);
      assert.notEqual(sockets.v4.localPort, holder.localPort);
      assert.notEqual(sockets.v4.localPort, 0);
      if (hasIpv6) assert.equal(sockets.v6?.localPort, holder.localPort, "IPv6 port was free");
    } finally {
      sockets.close();
    }
  } finally {
    holder.close();
  }
});

Deno.test("UdpSockets.bind keeps one family when the other fails, and throws when both fail", () => {
  const sockets = UdpSockets.bind({ ipv4: "127.0.0.1", ipv6: "2001:db8::1", port: 0, mark: null });
  try {
    assert.ok(sockets.v4 !== null);
    assert.equal(sockets.v6, null);
    // A datagram for the missing family is dropped, the IPv4 one goes out.
    const arena = new PacketArena({ slots: 2, slotSize: 128 });
    const batch = new UdpSendBatch(2);
    batch.push(arena, 0, 10, 6, ip("::1"), 0, 9, null, 0);
    batch.push(arena, 128, 10, 4, ip("127.0.0.1"), 0, sockets.v4.localPort, null, 0);
    assert.equal(sockets.sendBatch(batch), 1);
    assert.equal(batch.count, 0);
    const rb = sockets.newRecvBatch(4);
    assert.equal(sockets.recvBatch(rb), 1);
  } finally {
    sockets.close();
  }
  assert.throws(
    () => UdpSockets.bind({ ipv4: "192.0.2.1", ipv6: null, port: 0, mark: null }),
    NoUdpSocketsError,
  );
});

Deno.test("UdpSocket with GRO refuses a receive batch with small slots", () => {
  const s = UdpSocket.bind({ family: 4, address: "127.0.0.1", port: 0, mark: null, gro: true });
  try {
    if (!s.groEnabled) return;
    assert.throws(() => s.recvBatch(new UdpRecvBatch(4, 2048)), RangeError);
  } finally {
    s.close();
  }
});

Deno.test("raiseSocketBufferLimits() raises rmem_max/wmem_max but never lowers them", async () => {
  const root = await Deno.makeTempDir({ prefix: "fzffi-sysctl-" });
  try {
    await Deno.mkdir(`${root}/net/core`, { recursive: true });
    await Deno.writeTextFile(`${root}/net/core/rmem_max`, "212992\n");
    await Deno.writeTextFile(`${root}/net/core/wmem_max`, "33554432\n");
    const result = raiseSocketBufferLimits({ procSys: root });
    assert.deepEqual(result, { rmemMax: 128 * 1024 * 1024, wmemMax: 33554432 });
    assert.equal(await Deno.readTextFile(`${root}/net/core/rmem_max`), `${128 * 1024 * 1024}\n`);
    assert.equal(await Deno.readTextFile(`${root}/net/core/wmem_max`), "33554432\n");
    assert.deepEqual(raiseSocketBufferLimits({ procSys: `${root}/missing` }), { rmemMax: -1, wmemMax: -1 });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

for (const family of [4, 6] as const) {
  const loop = family === 4 ? "127.0.0.1" : "::1";
  for (const gso of [false, true]) {
    Deno.test({
      name: `UdpSocket carries each datagram's ECN bits on ${loop} (${
        gso ? "GSO" : "one datagram per message"
      })`,
      ignore: family === 6 && !hasIpv6,
      fn() {
        const p = pair(family, { gro: false }, { gso });
        try {
          const arena = new PacketArena({ slots: 8, slotSize: 2048 });
          const batch = new UdpSendBatch(8);
          // Equal sizes: with GSO the ECN change is what must split the messages.
          const ecns = [2, 2, 1, 0, 2];
          ecns.forEach((ecn, i) => {
            assert.ok(
              batch.push(
                arena,
                fill(arena, i, 100, i),
                100,
                family,
                ip(loop),
                0,
                p.rx.localPort,
                null,
                0,
                ecn,
              ),
            );
          });
          assert.equal(p.tx.sendBatch(batch), ecns.length);
          const rb = p.rx.newRecvBatch(8);
          assert.equal(receive(p.rx, rb, ecns.length), ecns.length);
          ecns.forEach((ecn, i) => {
            expectPattern(rb.arena.bytes, rb.offset[i]!, 100, i);
            assert.equal(rb.ecn[i], ecn, `datagram ${i}`);
          });
        } finally {
          p.close();
        }
      },
    });
  }
}
