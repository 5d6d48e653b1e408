import assert from "node:assert/strict";
import {
  buildTcpPacket,
  TCP_FLAG_ACK,
  TCP_FLAG_RST,
  TCP_FLAG_SYN,
  tcpAck,
  tcpDstPort,
  tcpFlags,
  tcpHeaderLen,
  tcpSeq,
  tcpSrcPort,
} from "../../../src/wire/tcp.ts";
import { parseIp } from "../../../src/wire/ip_addr.ts";
import { kernelPacket, refPacketVerifies } from "./_reference.ts";

Deno.test("tcp accessors read kernel SYNs with options", () => {
  const v6 = kernelPacket("ipv6_tcp_syn");
  const v4 = kernelPacket("ipv4_tcp_syn");

  assert.equal(tcpSrcPort(v6, 40), 40001);
  assert.equal(tcpDstPort(v6, 40), 443);
  assert.equal(tcpHeaderLen(v6, 40), 40);
  assert.equal(tcpFlags(v6, 40), TCP_FLAG_SYN);
  assert.equal(tcpSeq(v6, 40), 0x759f1a36);
  assert.equal(tcpAck(v6, 40), 0);
  assert.equal(tcpDstPort(v4, 20), 80);
  assert.equal(tcpSeq(v4, 20), 0xf8f38b44);
  assert.ok(refPacketVerifies(v6));
  assert.ok(refPacketVerifies(v4));
});

Deno.test("buildTcpPacket() builds valid SYN and RST segments for both families", () => {
  const buf = new Uint8Array(200);
  const cases: [string, string, number][] = [
    ["10.0.0.1", "10.0.0.2", TCP_FLAG_SYN],
    ["fd00::1", "fd00::2", TCP_FLAG_SYN],
    ["10.0.0.1", "10.0.0.2", TCP_FLAG_RST | TCP_FLAG_ACK],
    ["fd00::1", "fd00::2", TCP_FLAG_RST | TCP_FLAG_ACK],
  ];
  for (const [src, dst, flags] of cases) {
    const hl = src.includes(":") ? 40 : 20;

    const n = buildTcpPacket(
      buf,
      0,
      parseIp(src)!,
      parseIp(dst)!,
      50000,
      443,
      0xfffffffe,
      7,
      flags,
      64240,
      new Uint8Array([1, 2, 3]),
    );

    assert.equal(n, hl + 20 + 3);
    assert.equal(tcpFlags(buf, hl), flags);
    assert.equal(tcpSeq(buf, hl), 0xfffffffe);
    assert.equal(tcpAck(buf, hl), 7);
    assert.equal(tcpHeaderLen(buf, hl), 20);
    assert.ok(refPacketVerifies(buf.subarray(0, n)), `${src} flags ${flags}`);
  }
});

Deno.test("buildTcpPacket() returns 0 when it does not fit", () => {
  const a = parseIp("10.0.0.1")!;

  assert.equal(
    buildTcpPacket(new Uint8Array(39), 0, a, a, 1, 2, 0, 0, TCP_FLAG_SYN, 0, new Uint8Array(0)),
    0,
  );
  assert.equal(
    buildTcpPacket(new Uint8Array(40), 0, a, a, 1, 2, 0, 0, TCP_FLAG_SYN, 0, new Uint8Array(0)),
    40,
  );
});
