import assert from "node:assert/strict";
import { PeerAddrView } from "../../../src/p2p/peer_addr.ts";
import { ENCAPSULATE_HEADROOM, NodeOut, P2pDrop, P2pResult } from "../../../src/p2p/transmit.ts";
import type { SocketAddr } from "../../../src/wire/ip_addr.ts";
import { World } from "../../sim/p2p_world.ts";
import { ipv4Packet, type SimNodeHost } from "../../sim/sim_node.ts";

const GW_IP = "203.0.113.10";
const CLIENT_IP = "198.51.100.20";
const RELAY_IP = "192.0.2.1";

/** A view that counts conversions to SocketAddr (the data path must not need any). */
class CountingView extends PeerAddrView {
  conversions = 0;
  override toSocketAddr(): SocketAddr {
    this.conversions++;
    return super.toSocketAddr();
  }
}

Deno.test("P2pNode data path (direct): no address conversions, cached out addresses, in-place layout", () => {
  const { world, gw, cl } = connected(false);
  const out = new NodeOut();
  const buf = new Uint8Array(2048);

  const sends: { dst: PeerAddrView | null; src: PeerAddrView | null; off: number; len: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const packet = ipv4Packet("10.0.0.5", "100.64.0.1", Uint8Array.of(i));
    buf.set(packet, ENCAPSULATE_HEADROOM);
    assert.equal(
      gw.node.encapsulate("client-1", buf, ENCAPSULATE_HEADROOM, packet.length, world.now, out),
      P2pResult.WriteToNetwork,
    );
    assert.equal(out.buf, buf, "encrypted in the caller's buffer");
    sends.push({ dst: out.dst, src: out.src, off: out.off, len: out.len });
  }
  assert.equal(sends[0]!.off, ENCAPSULATE_HEADROOM - 16, "WireGuard header right in front of the packet");
  assert.equal(sends[1]!.dst, sends[0]!.dst, "same cached destination object");
  assert.equal(sends[2]!.src, sends[0]!.src, "same cached source object");
  assert.equal(sends[0]!.dst!.toString(), `${CLIENT_IP}:52625`);
  assert.equal(sends[0]!.src!.toString(), `${GW_IP}:52625`);

  // The client decrypts it with views that must not be converted.
  const from = new CountingView().setBytes(Uint8Array.of(203, 0, 113, 10), 0, 4, 52625);
  const local = new CountingView().setBytes(Uint8Array.of(198, 51, 100, 20), 0, 4, 52625);
  const rx = buf.slice(sends[2]!.off, sends[2]!.off + sends[2]!.len);
  const r = cl.node.decapsulate(rx, 0, rx.length, from, local, world.now, out);
  assert.equal(r, P2pResult.WriteToTunnel);
  assert.equal(out.cid, "gateway");
  assert.equal(out.off, 16, "decrypted in place");
  assert.equal(out.ipVersion, 4);
  assert.equal(from.conversions + local.conversions, 0);
});

Deno.test("P2pNode data path (relayed): ChannelData unwrapped without address conversions", () => {
  const { world, gw, cl } = connected(true);
  const captured: { src: SocketAddr; dst: SocketAddr; payload: Uint8Array }[] = [];
  world.net.block((from, src, dst, payload) => {
    const toGateway = from.name === "relay-1" && dst.ip === GW_IP && payload[0]! >= 0x40 &&
      payload[0]! <= 0x4f;
    if (toGateway && payload.length > 60) captured.push({ src, dst, payload });
    return toGateway && payload.length > 60;
  });
  assert.equal(
    cl.sendIp("gateway", ipv4Packet("100.64.0.1", "10.0.0.5", Uint8Array.of(7))),
    P2pResult.WriteToNetwork,
  );
  world.net.runFor(100);
  assert.equal(captured.length, 1);

  const { src, payload } = captured[0]!;
  const from = new CountingView().setBytes(Uint8Array.of(192, 0, 2, 1), 0, 4, src.port);
  const local = new CountingView().setBytes(Uint8Array.of(203, 0, 113, 10), 0, 4, 52625);
  const out = new NodeOut();
  const buf = payload.slice();
  assert.equal(gw.node.decapsulate(buf, 0, buf.length, from, local, world.now, out), P2pResult.WriteToTunnel);
  assert.equal(out.cid, "client-1");
  assert.equal(out.off, 4 + 16, "inside the ChannelData payload");
  assert.deepEqual(
    out.buf.slice(out.off, out.off + out.len),
    ipv4Packet("100.64.0.1", "10.0.0.5", Uint8Array.of(7)),
  );
  assert.equal(from.conversions + local.conversions, 0);

  // The gateway's answer goes to the relay with a ChannelData header in front, from "any" source.
  const tx = new Uint8Array(2048);
  const packet = ipv4Packet("10.0.0.5", "100.64.0.1", Uint8Array.of(8));
  tx.set(packet, ENCAPSULATE_HEADROOM);
  assert.equal(
    gw.node.encapsulate("client-1", tx, ENCAPSULATE_HEADROOM, packet.length, world.now, out),
    P2pResult.WriteToNetwork,
  );
  assert.equal(out.off, 0);
  assert.equal(out.src, null);
  assert.equal(out.dst!.toString(), `${RELAY_IP}:3478`);
  assert.ok(tx[0]! >= 0x40 && tx[0]! <= 0x4f);
  assert.equal((tx[2]! << 8) | tx[3]!, out.len - 4, "ChannelData length field");
});

Deno.test("P2pNode.encapsulate() refuses buffers without the documented head- and tailroom", () => {
  const { world, gw } = connected(false);
  const out = new NodeOut();
  const packet = ipv4Packet("10.0.0.5", "100.64.0.1", Uint8Array.of(1));
  const buf = new Uint8Array(ENCAPSULATE_HEADROOM + packet.length + 31);
  buf.set(packet, ENCAPSULATE_HEADROOM);

  assert.equal(gw.node.encapsulate("client-1", buf, 19, packet.length, world.now, out), P2pResult.Drop);
  assert.equal(out.dropReason, P2pDrop.BufferTooSmall);
  assert.equal(
    gw.node.encapsulate("client-1", buf.subarray(0, buf.length - 1), 20, packet.length, world.now, out),
    P2pResult.Drop,
  );
  assert.equal(out.dropReason, P2pDrop.BufferTooSmall);
  assert.equal(
    gw.node.encapsulate("client-1", buf, 20, packet.length, world.now, out),
    P2pResult.WriteToNetwork,
  );
  assert.equal(gw.node.encapsulate("nobody", buf, 20, packet.length, world.now, out), P2pResult.Drop);
  assert.equal(out.dropReason, P2pDrop.UnknownConnection);
});

function connected(relayOnly: boolean): { world: World; gw: SimNodeHost; cl: SimNodeHost } {
  const world = new World({ seed: 21 });
  const relay = world.relay("relay-1", { ip4: RELAY_IP });
  const gw = world.gateway([GW_IP]);
  const cl = world.client("client-1", [CLIENT_IP]);
  if (relayOnly) {
    world.net.block((from, _src, dst) =>
      (from === gw || from === cl) && !(dst.ip === RELAY_IP && dst.port === 3478)
    );
  }
  gw.node.updateRelays([], [relay.info()], 0);
  cl.node.updateRelays([], [relay.info()], 0);
  world.net.runUntil(500);
  world.connect(gw, cl);
  world.untilEstablished(gw, cl, "client-1", 15_000);
  world.net.runFor(100);
  return { world, gw, cl };
}
