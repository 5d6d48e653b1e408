import assert from "node:assert/strict";
import { parseCandidate } from "../../src/ice/candidate.ts";
import { FailReason } from "../../src/p2p/events.ts";
import { P2pResult } from "../../src/p2p/transmit.ts";
import { type SocketAddr, socketAddr } from "../../src/wire/ip_addr.ts";
import { parseStun, StunAttr, StunMethod } from "../../src/wire/stun.ts";
import { WG_TYPE_HANDSHAKE_INIT } from "../../src/wire/wireguard.ts";
import { World } from "./p2p_world.ts";
import { ipv4Packet, NODE_PORT, type SimNodeHost } from "./sim_node.ts";
import type { SimRelay } from "./sim_relay.ts";

const GW_IP = "203.0.113.10";
const CLIENT_IP = "198.51.100.20";
const CLIENT_PRIVATE_IP = "10.9.0.2";
const NAT_IP = "198.51.100.99";
const RELAY1_IP = "192.0.2.1";
const RELAY2_IP = "192.0.2.2";
const CID = "client-1";

Deno.test("p2p sim: direct connection over host candidates, handshake, IP packets both ways", () => {
  const { world, gw, cl } = setup();
  const establishedAt = world.untilEstablished(gw, cl, CID);
  assert.ok(establishedAt < 1_000, `established at ${establishedAt}`);

  const gwSocket = gw.info(CID)!.peerSocket;
  assert.deepEqual(gwSocket, {
    kind: "direct",
    src: socketAddr(GW_IP, NODE_PORT),
    dst: socketAddr(CLIENT_IP, NODE_PORT),
  });
  assert.deepEqual(cl.info("gateway")!.peerSocket, {
    kind: "direct",
    src: socketAddr(CLIENT_IP, NODE_PORT),
    dst: socketAddr(GW_IP, NODE_PORT),
  });

  exchangePackets(world, gw, cl);
  // Only the client initiated a WireGuard handshake.
  assert.equal(countInits(gw), 0);
  assert.equal(countInits(cl), 1);
});

Deno.test("p2p sim: a client behind a NAT is reached on its server-reflexive address", () => {
  const { world, gw, cl } = setup({ clientNat: { publicIp: NAT_IP } });
  world.untilEstablished(gw, cl, CID);

  const socket = gw.info(CID)!.peerSocket;
  assert.equal(socket?.kind, "direct");
  const dst = socket!.kind === "direct" ? socket.dst : undefined;
  assert.equal(dst?.ip, NAT_IP);
  // That address is the client's signalled srflx candidate (endpoint-independent mapping).
  const remote = gw.info(CID)!.remoteCandidates.find((c) => sameAddr(c.addr, dst!));
  assert.equal(remote?.kind, "srflx");
  exchangePackets(world, gw, cl);
});

Deno.test("p2p sim: a client behind a symmetric NAT is reached through a peer-reflexive candidate", () => {
  const { world, gw, cl } = setup({ clientNat: { publicIp: NAT_IP, symmetric: true } });
  world.untilEstablished(gw, cl, CID);

  const socket = gw.info(CID)!.peerSocket;
  assert.equal(socket?.kind, "direct");
  const dst = socket!.kind === "direct" ? socket.dst : undefined;
  assert.equal(dst?.ip, NAT_IP);
  const remote = gw.info(CID)!.remoteCandidates.find((c) => sameAddr(c.addr, dst!));
  assert.equal(remote?.kind, "prflx", "learned from the client's checks, never signalled");
  assert.ok(!world.signalling.log.some(([, , , , c]) => c.includes(` ${dst!.port} typ`)));
  exchangePackets(world, gw, cl);
});

Deno.test("p2p sim: relay-only when direct paths are blocked (ChannelData both ways, channel to the client's relayed address)", () => {
  const { world, gw, cl, relays } = setup({ relayOnly: true });
  world.untilEstablished(gw, cl, CID, 15_000);

  const relay = relays[0]!;
  const gwSocket = gw.info(CID)!.peerSocket;
  const clSocket = cl.info("gateway")!.peerSocket;
  assert.equal(gwSocket?.kind, "relay");
  assert.equal(clSocket?.kind, "relay");
  const clientRelayed = relay.server.allocationOf(clientRelaySource(cl))!.relay4!;
  assert.ok(gwSocket!.kind === "relay" && sameAddr(gwSocket.peer, clientRelayed));

  // The gateway bound a channel on its relay to the client's relayed address.
  const gwBinds = relay.server.requestsOf(StunMethod.ChannelBind)
    .filter((r) => r.from.ip === GW_IP)
    .map((r) => r.msg.xorAddress(StunAttr.XorPeerAddress)!);
  assert.ok(gwBinds.some((p) => sameAddr(p, clientRelayed)), "channel bound to the client's relayed address");

  const before = relay.server.relayedToClients;
  exchangePackets(world, gw, cl);
  // Data went out as ChannelData to the relay, and came back as ChannelData from it.
  const lastGwData = gw.sent.filter((s) => s.dst.port === 3478 && s.payload[0]! >= 0x40).at(-1);
  assert.ok(lastGwData !== undefined && lastGwData.src === null);
  assert.ok(relay.server.relayedToClients >= before + 2);
  // Nothing reached the other node directly.
  assert.ok(
    !world.net.packets.some((p) => p.outcome === "sent" && p.dst.ip === GW_IP && p.src.ip === CLIENT_IP),
  );
});

Deno.test("p2p sim: removing the selected relay invalidates its candidates, selects another, and the connection survives", () => {
  const { world, gw, cl, relays } = setup({ relayOnly: true, relays: 2, clientRelays: [1] });
  world.untilEstablished(gw, cl, CID, 15_000);
  const selected = gw.info(CID)!.selectedRelay!;
  const [gone, other] = selected === "relay-1" ? [relays[0]!, relays[1]!] : [relays[1]!, relays[0]!];
  const goneRelayCandidate = gw.signalled(CID).find((c) =>
    c.includes(` ${gone.ips[0]} `) && c.includes("typ relay")
  );
  assert.ok(goneRelayCandidate !== undefined);

  const t0 = world.now;
  gw.node.updateRelays([gone.name], [], t0);
  gw.afterStep(t0);

  assert.deepEqual(gw.invalidated(CID), [goneRelayCandidate]);
  assert.equal(gw.info(CID)!.selectedRelay, other.name);
  const newRelayCandidate = gw.signalled(CID).find((c) =>
    c.includes(` ${other.ips[0]} `) && c.includes("typ relay")
  );
  assert.ok(newRelayCandidate !== undefined, "relay candidate of the new relay signalled");
  assert.equal(parseCandidate(newRelayCandidate)!.ufrag, "gw01");

  const newRelayed = parseCandidate(newRelayCandidate)!.addr;
  world.net.advanceUntil(
    () => {
      const g = gw.info(CID)?.peerSocket;
      const c = cl.info("gateway")?.peerSocket;
      return g?.kind === "relay" && g.relayId === other.name && c?.kind === "relay" &&
        sameAddr(c.peer, newRelayed);
    },
    10_000,
    "migration to the other relay on both sides",
  );
  assert.ok(world.now - t0 < 2_000, `migrated within the 2 s grace (${world.now - t0} ms)`);
  exchangePackets(world, gw, cl);
  assert.equal(gw.eventsOf("ConnectionFailed").length, 0);
  assert.equal(cl.eventsOf("ConnectionFailed").length, 0);
});

Deno.test("p2p sim: no remote candidate within 10 s fails the connection at exactly 10 s", () => {
  const { world, gw, cl } = setup({ noSignalling: true, connectAt: 1_234 });
  world.net.runUntil(30_000);
  const failed = gw.eventsOf("ConnectionFailed");
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.at, 1_234 + 10_000);
  assert.equal(failed[0]!.event.reason, FailReason.NoRemoteCandidates);
  assert.equal(gw.info(CID), undefined, "removed");
  assert.equal(cl.eventsOf("ConnectionFailed")[0]?.at, 1_234 + 10_000);
});

Deno.test("p2p sim: ICE disconnected for more than 2 s fails the connection", () => {
  const { world, gw, cl } = setup();
  world.untilEstablished(gw, cl, CID);
  gw.watch(CID);
  world.net.runFor(1_000);
  const cutAt = world.now;
  world.net.block(() => true);
  world.net.advanceUntil(() => gw.eventsOf("ConnectionFailed").length > 0, 60_000, "failure");

  const disconnected = gw.stateLog.find((s) => s.iceState === "Disconnected");
  assert.ok(disconnected !== undefined && disconnected.at > cutAt);
  const failed = gw.eventsOf("ConnectionFailed")[0]!;
  assert.equal(failed.event.reason, FailReason.IceDisconnected);
  assert.equal(failed.at - disconnected.at, 2_000);
});

Deno.test("p2p sim: idle after exactly 20 s without tunneled packets (idle ICE timings), active again on traffic", () => {
  const { world, gw, cl } = setup();
  world.untilEstablished(gw, cl, CID);
  gw.watch(CID);
  const t0 = world.now;
  exchangePackets(world, gw, cl); // in at t0 + 10, out at t0 + 200

  world.net.advanceUntil(() => gw.info(CID)!.state === "idle", 30_000, "idle");
  const idle = gw.stateLog.find((s) => s.state === "idle")!;
  assert.equal(idle.at, t0 + 200 + 20_000);
  assert.ok(idle.idleTimings, "idle STUN timings in force");

  // In idle, the gateway's ICE keepalives slow down to the 25 s idle RTO.
  const checksFrom = world.now;
  world.net.runFor(60_000);
  const checks = stunRequestsFrom(gw, checksFrom);
  assert.ok(checks.length >= 2 && checks.length <= 4, `${checks.length} checks in 60 s`);
  assert.equal(gw.info(CID)!.state, "idle");

  const wakeAt = world.now;
  assert.equal(
    cl.sendIp("gateway", ipv4Packet("100.64.0.1", "10.0.0.5", Uint8Array.of(9))),
    P2pResult.WriteToNetwork,
  );
  world.net.runFor(100);
  const info = gw.info(CID)!;
  assert.equal(info.state, "connected");
  assert.equal(info.idleTimings, false);
  assert.ok(gw.stateLog.some((s) => s.state === "connected" && s.at === wakeAt + 10));
});

Deno.test("p2p sim: the same seed gives the same trace, another seed a different one", () => {
  const run = (seed: number) => {
    const { world, gw, cl } = setup({ seed, clientNat: { publicIp: NAT_IP } });
    world.untilEstablished(gw, cl, CID);
    exchangePackets(world, gw, cl);
    world.net.runFor(5_000);
    return world.net.trace();
  };
  const a = run(7);
  const b = run(7);
  assert.ok(a.length > 20);
  assert.deepEqual(a, b);
  assert.notDeepEqual(run(8), a);
});

// --- helpers ---------------------------------------------------------------------------------------

interface SetupOptions {
  seed?: number;
  clientNat?: { publicIp: string; symmetric?: boolean };
  /** Nodes may only talk to relays on port 3478. */
  relayOnly?: boolean;
  relays?: 1 | 2;
  /** Indices of the relays the client knows (default: all). */
  clientRelays?: number[];
  noSignalling?: boolean;
  connectAt?: number;
}

function setup(options: SetupOptions = {}) {
  const world = new World({ seed: options.seed ?? 1 });
  const relays: SimRelay[] = [world.relay("relay-1", { ip4: RELAY1_IP })];
  if (options.relays === 2) relays.push(world.relay("relay-2", { ip4: RELAY2_IP, firstRelayPort: 50000 }));
  const gw = world.gateway([GW_IP]);
  const cl = options.clientNat !== undefined
    ? world.client(CID, [CLIENT_PRIVATE_IP], options.clientNat)
    : world.client(CID, [CLIENT_IP]);
  if (options.relayOnly) {
    const relayIps = relays.map((r) => r.ips[0]!);
    world.net.block((from, _src, dst) =>
      (from === gw || from === cl) && !(relayIps.includes(dst.ip) && dst.port === 3478)
    );
  }
  gw.node.updateRelays([], relays.map((r) => r.info()), 0);
  const clientRelays = (options.clientRelays ?? relays.map((_, i) => i)).map((i) => relays[i]!.info());
  cl.node.updateRelays([], clientRelays, 0);
  world.net.runUntil(options.connectAt ?? 500);
  if (options.noSignalling) {
    world.signalling.partitioned = true;
  }
  world.connect(gw, cl, CID);
  return { world, gw, cl, relays };
}

/** Client → gateway and gateway → client, checking the exact bytes arrive. */
function exchangePackets(world: World, gw: SimNodeHost, cl: SimNodeHost): void {
  const up = ipv4Packet("100.64.0.1", "10.0.0.5", new TextEncoder().encode(`up ${world.now}`));
  const down = ipv4Packet("10.0.0.5", "100.64.0.1", new TextEncoder().encode(`down ${world.now}`));
  const gwBefore = gw.tun.length;
  const clBefore = cl.tun.length;
  assert.equal(cl.sendIp("gateway", up), P2pResult.WriteToNetwork);
  world.net.runFor(200);
  assert.equal(gw.tun.length, gwBefore + 1, "gateway got the packet");
  assert.deepEqual(gw.tun.at(-1)!.packet, up);
  assert.equal(gw.tun.at(-1)!.cid, CID);
  assert.equal(gw.sendIp(CID, down), P2pResult.WriteToNetwork);
  world.net.runFor(200);
  assert.equal(cl.tun.length, clBefore + 1, "client got the packet");
  assert.deepEqual(cl.tun.at(-1)!.packet, down);
}

function countInits(host: SimNodeHost): number {
  return host.sent.filter((s) => {
    const p = s.payload;
    const off = s.src === null && p[0]! >= 0x40 && p[0]! <= 0x4f ? 4 : 0;
    return p.length === off + 148 && p[off] === WG_TYPE_HANDSHAKE_INIT && p[off + 1] === 0;
  }).length;
}

function stunRequestsFrom(host: SimNodeHost, since: number): number[] {
  return host.sent.filter((s) => s.at >= since && s.src !== null).flatMap((s) => {
    const parsed = parseStun(s.payload);
    return parsed.ok && parsed.msg.method === StunMethod.Binding && parsed.msg.cls === 0 ? [s.at] : [];
  });
}

/** The 5-tuple the relay sees for the client's allocation. */
function clientRelaySource(cl: SimNodeHost): SocketAddr {
  return socketAddr(cl.ips[0]!, NODE_PORT);
}

function sameAddr(a: SocketAddr, b: SocketAddr): boolean {
  return a.ip === b.ip && a.port === b.port;
}
