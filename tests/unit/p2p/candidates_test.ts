import assert from "node:assert/strict";
import { computeFoundation, parseCandidate, unspecifiedAddr } from "../../../src/ice/candidate.ts";
import { type SocketAddr, socketAddr } from "../../../src/wire/ip_addr.ts";
import { parseStun, StunAttr, StunMethod } from "../../../src/wire/stun.ts";
import type { P2pNode } from "../../../src/p2p/node.ts";
import type { Transmit } from "../../../src/p2p/transmit.ts";
import { CLIENT_CREDS, GATEWAY_CREDS, World } from "../../sim/p2p_world.ts";
import { NODE_PORT } from "../../sim/sim_node.ts";
import { CID, connectRaw, gatewayWithRawClient, RawWireGuard } from "./_raw_client.ts";

const GW_PRIVATE_IP = "10.1.0.2";
const GW_PUBLIC_IP = "203.0.113.10";
const RELAY1_IP = "192.0.2.1";
const RELAY2_IP = "192.0.2.2";
const HOST = socketAddr(GW_PRIVATE_IP, NODE_PORT);
const PSK = new Uint8Array(32).fill(1);
const KEY = new RawWireGuard(9).publicKey;

Deno.test("P2pNode.upsertConnection() signals host and srflx of every allocation plus the relay candidate of the selected relay", () => {
  const { world, gw } = natGateway();
  world.net.runUntil(1_000); // both allocations done

  assert.equal(gw.node.upsertConnection(CID, KEY, PSK, GATEWAY_CREDS, CLIENT_CREDS, world.now), "created");
  gw.afterStep(world.now);

  const selected = gw.info(CID)!.selectedRelay;
  assert.ok(selected === "relay-1" || selected === "relay-2");
  const relayed = selected === "relay-1" ? socketAddr(RELAY1_IP, 49152) : socketAddr(RELAY2_IP, 50000);
  assert.deepEqual(gw.signalled(CID), [
    // host: through the agent, so it carries our ufrag; priority (126 << 24) | (65534 << 8) | 255
    `candidate:${foundation("host", HOST, 2130706175)} 1 udp 2130706175 10.1.0.2 52625 typ host ufrag gw01`,
    // srflx of both relays (symmetric NAT: one mapping per relay), not in the agent: no ufrag
    `candidate:${foundation("srflx", HOST, 1694498559)} 1 udp 1694498559 203.0.113.10 40000 typ srflx` +
    " raddr 0.0.0.0 rport 0",
    `candidate:${foundation("srflx", HOST, 1694498559)} 1 udp 1694498559 203.0.113.10 40001 typ srflx` +
    " raddr 0.0.0.0 rport 0",
    // relay of the selected relay only: (2 << 24) | (16382 << 8) | 255
    `candidate:${
      foundation("relay", relayed, 37748479)
    } 1 udp 37748479 ${relayed.ip} ${relayed.port} typ relay` +
    " raddr 0.0.0.0 rport 0 ufrag gw01",
  ]);
  // srflx candidates are signalled but never added to the agent (checks go out from the base).
  assert.deepEqual(gw.info(CID)!.localCandidates.map((c) => c.kind), ["host", "relay"]);
});

Deno.test("P2pNode adds candidates discovered later only to connections whose selected relay found them", () => {
  const { world, gw } = natGateway();
  gw.node.upsertConnection(CID, KEY, PSK, GATEWAY_CREDS, CLIENT_CREDS, world.now); // no relay answered yet
  gw.afterStep(world.now);
  assert.deepEqual(gw.signalled(CID), []);

  world.net.runUntil(1_000);

  const selected = gw.info(CID)!.selectedRelay;
  const srflxPort = selected === "relay-1" ? 40000 : 40001;
  const relayIp = selected === "relay-1" ? RELAY1_IP : RELAY2_IP;
  const kinds = gw.signalled(CID).map((s) => parseCandidate(s)!);
  assert.deepEqual(kinds.map((c) => `${c.kind} ${c.addr.ip}:${c.addr.port}`), [
    `host ${GW_PRIVATE_IP}:52625`,
    `srflx ${GW_PUBLIC_IP}:${srflxPort}`,
    `relay ${relayIp}:${selected === "relay-1" ? 49152 : 50000}`,
  ]);
});

Deno.test("P2pNode signals a changed srflx candidate as new, then invalidates the old one", () => {
  const { world, gw, raw, wg, psk } = gatewayWithRawClient({
    gatewayIp: GW_PRIVATE_IP,
    gatewayNat: { publicIp: GW_PUBLIC_IP },
  });
  connectRaw(world, gw, raw, wg, psk);
  world.net.advanceUntil(() => gw.info(CID)!.state === "connected", 5_000, "nomination");
  const oldSrflx = gw.signalled(CID).find((c) => c.includes("typ srflx"))!;
  assert.ok(oldSrflx.includes(`${GW_PUBLIC_IP} 40000 typ srflx`));
  const before = gw.events.length;

  world.net.resetNat(gw); // the relay's next keepalive BINDING (every 25 s) sees a new mapping
  world.net.runUntil(27_000);

  const after = gw.events.slice(before).map((e) => e.event);
  const added = after.findIndex((e) => e.type === "NewIceCandidate" && e.candidate.includes("typ srflx"));
  assert.ok(added >= 0, "new srflx signalled");
  const fresh = parseCandidate((after[added] as { candidate: string }).candidate)!;
  assert.equal(fresh.addr.ip, GW_PUBLIC_IP);
  assert.notEqual(fresh.addr.port, 40000);
  assert.deepEqual(after[added + 1], { type: "InvalidateIceCandidate", cid: CID, candidate: oldSrflx });
});

Deno.test("P2pNode.upsertConnection() with identical parameters reuses the connection", () => {
  const { world, gw, raw, wg, psk } = gatewayWithRawClient();
  connectRaw(world, gw, raw, wg, psk);
  world.net.advanceUntil(() => gw.info(CID)!.state === "connected", 5_000, "nomination");
  world.net.advanceUntil(() => gw.info(CID)!.state === "idle", 30_000, "idle");
  const index = gw.info(CID)!.wgIndex;
  const first = gw.signalled(CID);
  const before = gw.events.length;

  const outcome = gw.node.upsertConnection(CID, wg.publicKey, psk, GATEWAY_CREDS, CLIENT_CREDS, world.now);
  gw.afterStep(world.now);

  assert.equal(outcome, "reused");
  const info = gw.info(CID)!;
  assert.equal(info.wgIndex, index);
  assert.equal(info.state, "connected", "moved out of idle");
  assert.equal(info.idleTimings, false);
  assert.deepEqual(
    gw.events.slice(before).map((e) => e.event.type === "NewIceCandidate" ? e.event.candidate : "?"),
    first,
  );
});

Deno.test("P2pNode.upsertConnection() replaces the connection when credentials, key or PSK differ", () => {
  const { world, gw, raw, wg, psk } = gatewayWithRawClient();
  connectRaw(world, gw, raw, wg, psk);
  const variants: [string, () => string][] = [
    [
      "psk",
      () =>
        gw.node.upsertConnection(
          CID,
          wg.publicKey,
          new Uint8Array(32).fill(9),
          GATEWAY_CREDS,
          CLIENT_CREDS,
          1,
        ),
    ],
    ["key", () => gw.node.upsertConnection(CID, KEY, PSK, GATEWAY_CREDS, CLIENT_CREDS, 1)],
    [
      "local creds",
      () =>
        gw.node.upsertConnection(CID, KEY, PSK, { ufrag: "gw02", pwd: GATEWAY_CREDS.pwd }, CLIENT_CREDS, 1),
    ],
    [
      "remote creds",
      () =>
        gw.node.upsertConnection(CID, KEY, PSK, { ufrag: "gw02", pwd: GATEWAY_CREDS.pwd }, {
          ufrag: "cl01",
          pwd: "x".repeat(22),
        }, 1),
    ],
  ];
  for (const [what, upsert] of variants) {
    const index = gw.info(CID)!.wgIndex;
    assert.equal(upsert(), "replaced", what);
    assert.notEqual(gw.info(CID)!.wgIndex, index, `${what}: new WireGuard index`);
    assert.equal(gw.info(CID)!.state, "connecting", `${what}: new ICE agent`);
  }
  assert.deepEqual(gw.node.connectionIds(), [CID]);
});

Deno.test("P2pNode.updateRelays() removing the selected relay invalidates its relay candidate and selects another", () => {
  const { world, gw } = natGateway();
  world.net.runUntil(1_000);
  gw.node.upsertConnection(CID, KEY, PSK, GATEWAY_CREDS, CLIENT_CREDS, world.now);
  gw.afterStep(world.now);
  const selected = gw.info(CID)!.selectedRelay!;
  const other = selected === "relay-1" ? "relay-2" : "relay-1";
  const relayCandidate = gw.signalled(CID).find((c) => c.includes("typ relay"))!;
  const before = gw.events.length;

  gw.node.updateRelays([other], [], world.now); // not the selected one: nothing to withdraw
  gw.afterStep(world.now);
  assert.equal(gw.events.length, before);
  gw.node.updateRelays([], [{
    id: other,
    v4: socketAddr(other === "relay-1" ? RELAY1_IP : RELAY2_IP, 3478),
    username: "u",
    password: "p",
  }], world.now);
  gw.afterStep(world.now);

  gw.node.updateRelays([selected], [], world.now);
  gw.afterStep(world.now);

  assert.deepEqual(gw.invalidated(CID), [relayCandidate]);
  assert.equal(gw.info(CID)!.selectedRelay, other);
  assert.ok(gw.info(CID)!.localCandidates.every((c) => c.kind !== "relay"), "relay candidate left the agent");
  assert.deepEqual(gw.node.relayIds(), [other]);
});

Deno.test("P2pNode drops a relay that refuses our credentials and moves its connections to another relay", () => {
  const { world, gw, relays } = natGateway({ relays: false });
  const good = relays[0]!.info();
  const refused = { ...relays[1]!.info(), password: "wrong" };
  gw.node.updateRelays([], [refused], 0);
  gw.node.upsertConnection(CID, KEY, PSK, GATEWAY_CREDS, CLIENT_CREDS, 0);
  gw.node.addRemoteCandidate(CID, "candidate:1 1 udp 1694498559 198.51.100.8 6000 typ srflx", 0);
  assert.equal(gw.info(CID)!.selectedRelay, "relay-2");
  gw.node.updateRelays([], [good], 0); // relay-2 is kept (unchanged) and refreshed

  // Its responses fail the integrity check; the ALLOCATE gives up after 8 s and the allocation is freed.
  world.net.runUntil(15_000);

  assert.deepEqual(gw.node.relayIds(), ["relay-1"]);
  assert.equal(gw.info(CID)!.selectedRelay, "relay-1");
  assert.ok(gw.signalled(CID).some((c) => c.includes(`${RELAY1_IP} 49152 typ relay`)));
});

Deno.test("P2pNode.hasRelays() tracks the allocation set", () => {
  const { world, gw } = natGateway({ relays: false });
  assert.equal(gw.node.hasRelays(), false);
  gw.node.updateRelays(
    [],
    [{ id: "r", v4: socketAddr(RELAY1_IP, 3478), username: "u", password: "p" }],
    world.now,
  );
  assert.equal(gw.node.hasRelays(), true);
  gw.node.updateRelays(["r"], [], world.now);
  assert.equal(gw.node.hasRelays(), false);
});

Deno.test("P2pNode.addRemoteCandidate() skips unparsable strings and binds channels at once for srflx/relay candidates only", () => {
  const { world, gw } = natGateway();
  world.net.runUntil(1_000);
  gw.node.upsertConnection(CID, KEY, PSK, GATEWAY_CREDS, CLIENT_CREDS, world.now);
  world.net.runFor(100);
  drainTransmits(gw.node);

  assert.equal(gw.node.addRemoteCandidate(CID, "candidate:bogus", world.now), false);
  assert.equal(
    gw.node.addRemoteCandidate("unknown", "candidate:1 1 udp 2130706175 192.0.2.9 1 typ host", world.now),
    false,
  );
  assert.equal(
    gw.node.addRemoteCandidate(
      CID,
      "candidate:1 1 udp 2130706175 198.51.100.7 5000 typ host ufrag cl01",
      world.now,
    ),
    true,
  );
  assert.equal(
    gw.node.addRemoteCandidate(
      CID,
      "candidate:2 1 udp 1694498559 198.51.100.8 6000 typ srflx raddr 0.0.0.0 rport 0",
      world.now,
    ),
    true,
  );
  assert.equal(
    gw.node.addRemoteCandidate(
      CID,
      "candidate:3 1 udp 37748479 192.0.2.77 49999 typ relay raddr 0.0.0.0 rport 0 ufrag cl01",
      world.now,
    ),
    true,
  );

  // Before any ICE check went out (checks from our relay candidate bind channels on demand later).
  const binds = drainTransmits(gw.node).flatMap((t) => {
    const parsed = parseStun(t.payload);
    return parsed.ok && parsed.msg.method === StunMethod.ChannelBind
      ? [fmt(parsed.msg.xorAddress(StunAttr.XorPeerAddress)!)]
      : [];
  });
  assert.deepEqual(binds, ["198.51.100.8:6000", "192.0.2.77:49999"]);
});

Deno.test("P2pNode adds optimistic srflx remote candidates (snownet generates_correct_optimistic_candidates)", () => {
  const { world, gw } = natGateway();
  world.net.runUntil(1_000);
  gw.node.upsertConnection(CID, KEY, PSK, GATEWAY_CREDS, CLIENT_CREDS, world.now);

  gw.node.addRemoteCandidate(CID, "candidate:1 1 udp 2130706175 10.0.0.1 52625 typ host", world.now);
  gw.node.addRemoteCandidate(
    CID,
    "candidate:2 1 udp 1694498559 1.1.1.1 40000 typ srflx raddr 0.0.0.0 rport 0",
    world.now,
  );

  const optimistic = gw.info(CID)!.remoteCandidates.filter((c) =>
    c.addr.ip === "1.1.1.1" && c.addr.port === 52625
  );
  assert.equal(optimistic.length, 1);
  assert.equal(optimistic[0]!.kind, "srflx");
  assert.deepEqual(optimistic[0]!.base, socketAddr("10.0.0.1", 52625));
});

function natGateway(options: { relays?: boolean } = {}) {
  const world = new World({ seed: 5 });
  const relays = [
    world.relay("relay-1", { ip4: RELAY1_IP }),
    world.relay("relay-2", { ip4: RELAY2_IP, firstRelayPort: 50000 }),
  ];
  const gw = world.gateway([GW_PRIVATE_IP], { publicIp: GW_PUBLIC_IP, symmetric: true });
  if (options.relays !== false) gw.node.updateRelays([], relays.map((r) => r.info()), 0);
  return { world, gw, relays };
}

function foundation(kind: "host" | "srflx" | "relay", base: SocketAddr, priority: number): string {
  return computeFoundation(kind, base, kind === "host" ? undefined : unspecifiedAddr(4), priority);
}

function fmt(a: SocketAddr): string {
  return `${a.ip}:${a.port}`;
}

function drainTransmits(node: P2pNode): Transmit[] {
  const out: Transmit[] = [];
  for (let t = node.pollTransmit(); t !== undefined; t = node.pollTransmit()) out.push(t);
  return out;
}
