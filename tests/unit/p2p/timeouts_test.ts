import assert from "node:assert/strict";
import { CANDIDATE_TIMEOUT_MS, DISCONNECTED_GRACE_MS, IDLE_AFTER_MS } from "../../../src/p2p/connection.ts";
import { FailReason } from "../../../src/p2p/events.ts";
import { CONNECTION_EXPIRY_MS, REKEY_ATTEMPT_TIME_MS } from "../../../src/wireguard/constants.ts";
import { WG_HANDSHAKE_INIT_LEN, WG_TYPE_HANDSHAKE_INIT } from "../../../src/wire/wireguard.ts";
import { parseStun, StunClass } from "../../../src/wire/stun.ts";
import { CLIENT_CREDS, GATEWAY_CREDS, World } from "../../sim/p2p_world.ts";
import { ipv4Packet } from "../../sim/sim_node.ts";
import { CID, connectRaw, gatewayWithRawClient, upsertRaw } from "./_raw_client.ts";

const UNREACHABLE = "candidate:9 1 udp 2130706175 192.0.2.99 1234 typ host ufrag cl01";

Deno.test("P2pNode: the connection-level constants match spec §3.3", () => {
  assert.equal(CANDIDATE_TIMEOUT_MS, 10_000);
  assert.equal(DISCONNECTED_GRACE_MS, 2_000);
  assert.equal(IDLE_AFTER_MS, 20_000);
});

Deno.test("P2pNode (server) fails a connection without a WireGuard session after exactly 540 s", () => {
  const { world, gw, raw, wg, psk } = gatewayWithRawClient();
  const createdAt = world.now;
  connectRaw(world, gw, raw, wg, psk); // ICE only: the raw client never sends WireGuard

  world.net.runUntil(createdAt + CONNECTION_EXPIRY_MS + 1_000);

  assert.equal(CONNECTION_EXPIRY_MS, 540_000);
  const failed = gw.eventsOf("ConnectionFailed");
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.at, createdAt + CONNECTION_EXPIRY_MS);
  assert.equal(failed[0]!.event.reason, FailReason.WireGuardExpired);
  assert.ok(raw.nominated(), "ICE itself was fine all along");
});

Deno.test("P2pNode (client) fails when its handshake gets no valid answer within REKEY_ATTEMPT_TIME (15 s)", () => {
  const world = new World({ seed: 11 });
  const relay = world.relay("relay-1", { ip4: "192.0.2.1" });
  const gw = world.gateway(["203.0.113.10"]);
  const cl = world.client("client-1", ["198.51.100.20"]);
  gw.node.updateRelays([], [relay.info()], 0);
  cl.node.updateRelays([], [relay.info()], 0);
  world.net.runUntil(500);
  world.signalling.link(gw, "client-1", cl, "gateway");
  // Mismatched PSKs: the gateway's responses never decrypt at the client.
  gw.node.upsertConnection(
    "client-1",
    cl.node.publicKey,
    new Uint8Array(32).fill(1),
    GATEWAY_CREDS,
    CLIENT_CREDS,
    500,
  );
  cl.node.upsertConnection(
    "gateway",
    gw.node.publicKey,
    new Uint8Array(32).fill(2),
    CLIENT_CREDS,
    GATEWAY_CREDS,
    500,
  );

  world.net.advanceUntil(() => cl.eventsOf("ConnectionFailed").length > 0, 30_000, "client failure");

  const inits = cl.sent.filter((s) =>
    s.payload.length === WG_HANDSHAKE_INIT_LEN && s.payload[0] === WG_TYPE_HANDSHAKE_INIT
  );
  assert.ok(inits.length >= 3, `${inits.length} initiations (first + retries)`);
  const failed = cl.eventsOf("ConnectionFailed")[0]!;
  assert.equal(failed.event.reason, FailReason.WireGuardExpired);
  assert.equal(failed.at, inits[0]!.at + REKEY_ATTEMPT_TIME_MS);
  assert.equal(gw.eventsOf("ConnectionEstablished").length, 0);
});

Deno.test("P2pNode: a remote candidate before 10 s prevents the candidate timeout; an unanswered pair fails after 15.25 s + 2 s", () => {
  const { world, gw, wg, psk } = gatewayWithRawClient();
  const createdAt = world.now;
  upsertRaw(world, gw, wg, psk);
  world.net.schedule(createdAt + 9_900, (now) => {
    gw.node.addRemoteCandidate(CID, UNREACHABLE, now);
  });

  world.net.advanceUntil(() => gw.eventsOf("ConnectionFailed").length > 0, 60_000, "failure");

  const failed = gw.eventsOf("ConnectionFailed")[0]!;
  assert.equal(failed.event.reason, FailReason.IceDisconnected, "not the candidate timeout");
  // The unanswered pair dies after the default ICE timeout (15.25 s, §7.3), then the 2 s grace.
  assert.equal(failed.at, createdAt + 9_900 + 15_250 + DISCONNECTED_GRACE_MS);
});

Deno.test("P2pNode: the disconnected grace period restarts when ICE recovers", () => {
  const world = new World({ seed: 12 });
  const relay = world.relay("relay-1", { ip4: "192.0.2.1" });
  const gw = world.gateway(["203.0.113.10"]);
  const cl = world.client("client-1", ["198.51.100.20"]);
  gw.node.updateRelays([], [relay.info()], 0);
  cl.node.updateRelays([], [relay.info()], 0);
  world.net.runUntil(500);
  world.connect(gw, cl);
  world.untilEstablished(gw, cl);
  gw.watch("client-1");
  // The client's answers to the gateway's checks are lost: the gateway's pair dies and ICE goes
  // Disconnected, but the client's own (nominating) checks still arrive and revive it each time.
  world.net.block((from, _src, _dst, payload) => from === cl && isStunSuccess(payload));
  // Tunnel traffic keeps both sides on active ICE timings.
  for (let t = world.now + 5_000; t < world.now + 60_000; t += 5_000) {
    world.net.schedule(t, () => cl.sendIp("gateway", ipv4Packet("100.64.0.1", "10.0.0.5", Uint8Array.of(1))));
  }

  world.net.runFor(60_000);

  const disconnects = gw.stateLog.filter((s) => s.iceState === "Disconnected").map((s) => s.at);
  assert.ok(disconnects.length >= 1, "ICE went Disconnected");
  for (const at of disconnects) {
    const next = gw.stateLog.find((s) => s.at > at)!;
    assert.ok(next.iceState === "Connected" || next.iceState === "Completed");
    assert.ok(next.at - at < DISCONNECTED_GRACE_MS, "recovered within the grace period");
  }
  // Without the reset, the first episode's deadline (2 s after it began) would have failed it.
  assert.equal(gw.eventsOf("ConnectionFailed").length, 0, "each recovery restarted the grace period");

  // Now nothing gets through: the next Disconnected is final, 2 s later.
  world.net.block(() => true);
  world.net.advanceUntil(() => gw.eventsOf("ConnectionFailed").length > 0, 60_000, "failure");
  const last = gw.stateLog.filter((s) => s.iceState === "Disconnected" && s.state !== "gone").at(-1)!.at;
  assert.equal(gw.eventsOf("ConnectionFailed")[0]!.at, last + DISCONNECTED_GRACE_MS);
});

Deno.test("P2pNode: a new remote candidate moves an idle connection back to active timings", () => {
  const { world, gw, raw, wg, psk } = gatewayWithRawClient();
  connectRaw(world, gw, raw, wg, psk);
  world.net.advanceUntil(() => gw.info(CID)!.state === "connected", 5_000, "nomination");
  const nominatedAt = world.now;
  world.net.advanceUntil(() => gw.info(CID)!.state === "idle", 30_000, "idle");
  assert.equal(world.now, nominatedAt + IDLE_AFTER_MS, "idle 20 s after nomination (no traffic at all)");
  assert.equal(gw.info(CID)!.idleTimings, true);

  gw.node.addRemoteCandidate(CID, UNREACHABLE, world.now);

  assert.equal(gw.info(CID)!.state, "connected");
  assert.equal(gw.info(CID)!.idleTimings, false);
});

/** A STUN success response, bare or inside ChannelData. */
function isStunSuccess(payload: Uint8Array): boolean {
  const inner = payload[0]! >= 0x40 && payload[0]! <= 0x4f ? payload.subarray(4) : payload;
  const parsed = parseStun(inner);
  return parsed.ok && parsed.msg.cls === StunClass.Success;
}
