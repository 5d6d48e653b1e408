import assert from "node:assert/strict";
import {
  CHANNEL_LIFETIME_MS,
  CHANNEL_REBIND_TIMEOUT_MS,
  ChannelBindings,
  FIRST_CHANNEL,
  LAST_CHANNEL,
} from "../../../src/turn/channel_bindings.ts";
import { socketAddr } from "../../../src/wire/ip_addr.ts";

const PEER1 = socketAddr("127.0.0.1", 10000);
const MINUTE = 60_000;

function peerN(n: number) {
  return socketAddr("127.0.0.1", 10000 + n);
}

Deno.test("ChannelBindings returns the first available channel", () => {
  const c = new ChannelBindings();
  assert.equal(c.newChannelToPeer(PEER1, 0), FIRST_CHANNEL);
  assert.equal(FIRST_CHANNEL, 0x4000);
  assert.equal(LAST_CHANNEL, 0x4fff);
});

Deno.test("ChannelBindings recycles channels not in use after 10 + 5 min", () => {
  const c = new ChannelBindings();
  for (let n = FIRST_CHANNEL; n <= LAST_CHANNEL; n++) assert.equal(c.newChannelToPeer(PEER1, 0), n);
  assert.equal(c.newChannelToPeer(PEER1, 0), -1, "all 4096 in use");
  assert.equal(c.newChannelToPeer(PEER1, CHANNEL_LIFETIME_MS + CHANNEL_REBIND_TIMEOUT_MS - 1), -1);
  assert.equal(c.newChannelToPeer(PEER1, CHANNEL_LIFETIME_MS + CHANNEL_REBIND_TIMEOUT_MS), FIRST_CHANNEL);
});

Deno.test("ChannelBindings uses unused channels before reusing expired ones", () => {
  const c = new ChannelBindings();
  for (let n = 0; n < 100; n++) c.setConfirmed(c.newChannelToPeer(peerN(n), 0), 0);
  assert.equal(c.newChannelToPeer(socketAddr("127.0.0.2", 1), 20 * MINUTE), FIRST_CHANNEL + 100);
});

Deno.test("ChannelBindings continues round-robin instead of reusing the first number", () => {
  const c = new ChannelBindings();
  let now = 0;
  for (let n = 0; n <= 4095; n++) c.setConfirmed(c.newChannelToPeer(peerN(n), now), now);
  now += 15 * MINUTE;
  c.setConfirmed(LAST_CHANNEL, now);
  const a = c.newChannelToPeer(socketAddr("127.0.0.3", 1), now);
  c.setConfirmed(a, now);
  assert.equal(a, FIRST_CHANNEL);
  now += 15 * MINUTE;
  c.setConfirmed(LAST_CHANNEL, now);
  const b = c.newChannelToPeer(socketAddr("127.0.0.3", 2), now);
  assert.equal(b, FIRST_CHANNEL + 1);
});

Deno.test("ChannelBindings: a just-expired channel cannot be rebound, 15 min later it can", () => {
  const c = new ChannelBindings();
  const n = c.newChannelToPeer(PEER1, 0);
  const ch = c.get(n)!;
  assert.ok(!ch.canRebind(10 * MINUTE + 1_000));
  assert.ok(ch.canRebind(15 * MINUTE));
  // A channel that saw data is never handed to another peer until refreshed.
  ch.recordReceived(1_000);
  assert.ok(!ch.canRebind(60 * MINUTE));
});

Deno.test("ChannelBindings reuses the same number for the same peer while in cooldown", () => {
  const c = new ChannelBindings();
  const n = c.newChannelToPeer(PEER1, 0);
  c.setConfirmed(n, 1_000);
  assert.equal(c.newChannelToPeer(PEER1, 12 * MINUTE), n);
});

Deno.test("ChannelBindings refreshes only channels older than 5 min that received data", () => {
  const c = new ChannelBindings();
  const active = c.newChannelToPeer(PEER1, 0);
  const idle = c.newChannelToPeer(peerN(1), 0);
  c.setConfirmed(active, 1_000);
  c.setConfirmed(idle, 1_000);
  assert.ok(c.tryHandlePacket(active, 2_000));
  assert.deepEqual(c.channelsToRefresh(4 * MINUTE, () => false), [], "younger than 5 min");
  assert.deepEqual(c.channelsToRefresh(6 * MINUTE, () => false).map((ch) => ch.number), [active]);
  assert.deepEqual(c.channelsToRefresh(6 * MINUTE, () => true), [], "already in flight");
  const ch = c.get(idle)!;
  ch.recordReceived(3 * MINUTE);
  assert.ok(!ch.needsRefresh(4 * MINUTE));
  assert.ok(ch.needsRefresh(6 * MINUTE));
});

Deno.test("ChannelBindings decodes only confirmed channels and prefers confirmed ones for sending", () => {
  const c = new ChannelBindings();
  const n = c.newChannelToPeer(PEER1, 0);
  assert.equal(c.tryHandlePacket(n, 1), undefined, "unconfirmed");
  assert.equal(c.channelForSend(PEER1, 1), n, "in flight: optimistic");
  c.setConfirmed(n, 1_000);
  assert.deepEqual(c.tryHandlePacket(n, 2_000)?.peer, PEER1);
  assert.equal(c.channelForSend(PEER1, 2_000), n);
  assert.equal(c.channelForSend(PEER1, 1_000 + CHANNEL_LIFETIME_MS), -1, "expired on the relay");
  assert.equal(c.channelForSend(socketAddr("127.0.0.1", 1), 2_000), -1, "other port");
  c.handleFailedBinding(n);
  assert.equal(c.size, 0);
  assert.equal(c.channelForSend(PEER1, 2_000), -1);
});

Deno.test("ChannelBindings moves a recycled number to its new peer", () => {
  const c = new ChannelBindings();
  for (let n = FIRST_CHANNEL; n <= LAST_CHANNEL; n++) c.newChannelToPeer(PEER1, 0);
  const other = socketAddr("192.0.2.1", 5);
  const n = c.newChannelToPeer(other, 15 * MINUTE);
  assert.equal(n, FIRST_CHANNEL);
  assert.deepEqual(c.get(n)!.peer, other);
  assert.equal(c.channelForSend(other, 15 * MINUTE), n);
  assert.equal(c.size, 4096);
});
