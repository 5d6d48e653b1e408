import assert from "node:assert/strict";
import { MAX_BUFFERED_PACKETS } from "../../../src/p2p/connection.ts";
import { P2pDrop, P2pResult } from "../../../src/p2p/transmit.ts";
import { socketAddr } from "../../../src/wire/ip_addr.ts";
import {
  readU32Le,
  WG_COOKIE_REPLY_LEN,
  WG_HANDSHAKE_INIT_LEN,
  WG_HANDSHAKE_RESPONSE_LEN,
  WG_TYPE_COOKIE_REPLY,
  WG_TYPE_HANDSHAKE_INIT,
  WG_TYPE_HANDSHAKE_RESPONSE,
} from "../../../src/wire/wireguard.ts";
import { ipv4Packet, NODE_PORT } from "../../sim/sim_node.ts";
import {
  CID,
  connectRaw,
  exchangeCandidates,
  gatewayWithRawClient,
  GW_IP,
  RAW_IP,
  RAW_PORT,
  upsertRaw,
} from "./_raw_client.ts";

const GW_HOST = socketAddr(GW_IP, NODE_PORT);
const RAW = socketAddr(RAW_IP, RAW_PORT);

Deno.test("P2pNode (server) drops application packets before a socket is nominated", () => {
  const { world, gw, raw, wg, psk } = gatewayWithRawClient();
  connectRaw(world, gw, raw, wg, psk);

  const r = gw.sendIp(CID, ipv4Packet("10.0.0.5", "100.64.0.1", Uint8Array.of(1, 2, 3)));

  assert.equal(r, P2pResult.Drop);
  assert.deepEqual(gw.drops.at(-1)!.slice(1), [P2pDrop.NotConnected, 0]);
  assert.equal(gw.info(CID)!.buffered, 0, "application packets are not buffered");
});

Deno.test("P2pNode (server) buffers at most 128 handshake replies before nomination and flushes them on nomination", () => {
  const { world, gw, raw, wg, psk } = gatewayWithRawClient();
  upsertRaw(world, gw, wg, psk);
  // 130 initiations from 130 fresh initiators (1 ms apart: TAI64N timestamps must grow). Beyond the
  // 100/s handshake limit the gateway answers with cookie replies; all of them wait for nomination.
  const senders: number[] = [];
  for (let i = 0; i < 130; i++) {
    world.net.schedule(world.now + i, (now) => {
      const init = wg.initiation(gw.node.publicKey, psk, now);
      senders.push(init.sender);
      gw.handleDatagram(RAW, GW_HOST, init.bytes, now);
    });
  }
  world.net.runUntil(world.now + 129);
  assert.equal(senders.length, 130);
  assert.equal(gw.info(CID)!.state, "connecting");
  assert.equal(gw.info(CID)!.buffered, MAX_BUFFERED_PACKETS);
  assert.equal(sentToRaw(gw).filter(isWireGuardReply).length, 0, "nothing sent before nomination");

  exchangeCandidates(world, gw, raw);
  world.net.advanceUntil(() => gw.info(CID)!.state === "connected", 5_000, "nomination");
  const nominatedAt = world.now;
  const flushed = sentToRaw(gw).filter(isWireGuardReply);

  assert.equal(flushed.length, MAX_BUFFERED_PACKETS);
  assert.ok(flushed.every((s) => s.at === nominatedAt && s.src !== null && s.src.ip === GW_IP));
  // Oldest first, the two oldest replies dropped; each reply names the initiation it answers.
  assert.deepEqual(flushed.map((s) => receiverOf(s.payload)), senders.slice(2));
  const responses = flushed.filter((s) => s.payload[0] === WG_TYPE_HANDSHAKE_RESPONSE).length;
  const cookies = flushed.filter((s) => s.payload[0] === WG_TYPE_COOKIE_REPLY).length;
  assert.ok(responses > 0 && cookies > 0, `${responses} responses, ${cookies} cookie replies`);
  assert.equal(gw.info(CID)!.buffered, 0);
});

Deno.test("P2pNode (server) never starts a WireGuard handshake on nomination", () => {
  const { world, gw, raw, wg, psk } = gatewayWithRawClient();
  connectRaw(world, gw, raw, wg, psk);
  world.net.advanceUntil(() => gw.info(CID)?.state === "connected" && raw.nominated(), 5_000, "nomination");

  world.net.runFor(60_000);

  assert.equal(gw.info(CID)?.established, false);
  assert.equal(sentToRaw(gw).filter((s) => isInitiation(s.payload)).length, 0);
  assert.equal(raw.received.length, 0, "only ICE reached the client");

  // Application data without a session does start one (boringtun queues the packet and initiates).
  const r = gw.sendIp(CID, ipv4Packet("10.0.0.5", "100.64.0.1", Uint8Array.of(1)));
  assert.equal(r, P2pResult.Done);
  world.net.runFor(100);
  assert.equal(raw.received.filter((d) => isInitiation(d.payload)).length, 1);
});

function sentToRaw(gw: ReturnType<typeof gatewayWithRawClient>["gw"]) {
  return gw.sent.filter((s) => s.dst.ip === RAW_IP && s.dst.port === RAW_PORT);
}

function isWireGuardReply(s: { payload: Uint8Array }): boolean {
  const p = s.payload;
  return (p[0] === WG_TYPE_HANDSHAKE_RESPONSE && p.length === WG_HANDSHAKE_RESPONSE_LEN) ||
    (p[0] === WG_TYPE_COOKIE_REPLY && p.length === WG_COOKIE_REPLY_LEN);
}

function isInitiation(p: Uint8Array): boolean {
  return p.length === WG_HANDSHAKE_INIT_LEN && p[0] === WG_TYPE_HANDSHAKE_INIT && p[1] === 0;
}

function receiverOf(p: Uint8Array): number {
  return readU32Le(p, p[0] === WG_TYPE_HANDSHAKE_RESPONSE ? 8 : 4);
}
