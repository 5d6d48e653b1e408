import assert from "node:assert/strict";
import { ChecksumValidatingCore } from "../../src/checksum_validator.ts";
import { configureLogging, Level, type LogRecord } from "../../src/log.ts";
import { PeerAddrView } from "../../src/p2p/peer_addr.ts";
import { CoreOut, CoreResult, type PacketCore } from "../../src/packet_core.ts";
import { buildUdpPacket } from "../../src/wire/udp.ts";

/** A core that hands every datagram to TUN unchanged. */
const passThrough: PacketCore = {
  publicKey: new Uint8Array(32),
  handleDatagram(buf, off, len, _from, _local, out) {
    out.buf = buf;
    out.off = off;
    out.len = len;
    return CoreResult.ToTun;
  },
  handleTunPacket: () => CoreResult.Done,
  handleTimeout: () => {},
  pollTimeout: () => Infinity,
  pollTransmit: () => undefined,
};

Deno.test("ChecksumValidatingCore warns once per TUN packet with a bad checksum and still passes it", () => {
  const records: LogRecord[] = [];
  configureLogging({ sink: (r) => records.push(r), filter: () => Level.Warn });
  try {
    const core = new ChecksumValidatingCore(passThrough);
    const buf = new Uint8Array(256);
    const len = buildUdpPacket(
      buf,
      0,
      new Uint8Array([100, 64, 0, 1]),
      new Uint8Array([10, 0, 0, 1]),
      1,
      2,
      new Uint8Array(8),
    );
    const out = new CoreOut();
    const addr = new PeerAddrView();
    assert.equal(core.handleDatagram(buf, 0, len, addr, addr, out, 0), CoreResult.ToTun);
    assert.equal(core.invalid, 0);
    buf[len - 1] = buf[len - 1]! ^ 0xff; // corrupt the UDP payload: the checksum no longer matches
    assert.equal(core.handleDatagram(buf, 0, len, addr, addr, out, 0), CoreResult.ToTun);
    assert.equal(core.invalid, 1);
    assert.equal(records.filter((r) => r.message.includes("invalid checksum")).length, 1);
  } finally {
    configureLogging({ sink: () => {}, filter: () => Level.Info });
  }
});
