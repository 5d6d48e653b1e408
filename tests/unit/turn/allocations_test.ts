import assert from "node:assert/strict";
import { SeededRng } from "../../../src/rng.ts";
import { Allocations } from "../../../src/turn/allocations.ts";
import { socketAddr } from "../../../src/wire/ip_addr.ts";

const V4 = socketAddr("198.51.100.1", 3478);
const V6 = socketAddr("2001:db8::1", 3478);

function set() {
  return new Allocations({ sessionId: "AB", rng: new SeededRng(1) });
}

Deno.test("Allocations.upsert() adds, keeps identical relays, replaces changed ones", () => {
  const all = set();
  assert.deepEqual(all.upsert({ id: "r1", server: { v4: V4 }, username: "u", password: "p" }, 0), {
    type: "added",
  });
  const first = all.get("r1")!;
  assert.deepEqual(all.upsert({ id: "r1", server: { v4: V4 }, username: "u", password: "p" }, 1), {
    type: "skipped",
  });
  assert.equal(all.get("r1"), first, "same id + credentials + address: kept");
  const r = all.upsert({ id: "r1", server: { v4: V4, v6: V6 }, username: "u", password: "p" }, 2);
  assert.equal(r.type, "replaced");
  assert.ok(r.type === "replaced" && r.previous === first);
  assert.notEqual(all.get("r1"), first);
  const second = all.get("r1")!;
  const r2 = all.upsert({ id: "r1", server: { v4: V4, v6: V6 }, username: "u", password: "p2" }, 3);
  assert.ok(r2.type === "replaced" && r2.previous === second, "new password: replaced");
  assert.equal(all.size, 1);
});

Deno.test("Allocations routes by server address and removes freed allocations when draining events", () => {
  const all = set();
  all.upsert({ id: "r1", server: { v4: V4 }, username: "u", password: "p" }, 0);
  all.upsert({ id: "r2", server: { v6: V6 }, username: "u", password: "p" }, 0);
  assert.equal(all.byServer(V6)?.[0], "r2");
  assert.equal(all.byServer(socketAddr("198.51.100.1", 3479)), undefined);
  const sent: string[] = [];
  for (let t = all.pollTransmit(); t; t = all.pollTransmit()) sent.push(t.destination.ip);
  assert.deepEqual(sent, ["198.51.100.1", "2001:db8::1"]);
  // No relay answers: both give up and are freed.
  for (let now = all.pollTimeout(); now !== Infinity; now = all.pollTimeout()) {
    all.handleTimeout(now);
    while (all.pollTransmit());
  }
  const freed: string[] = [];
  for (let e = all.pollEvent(); e; e = all.pollEvent()) if (e.event.type === "freed") freed.push(e.relayId);
  assert.deepEqual(freed.sort(), ["r1", "r2"]);
  assert.equal(all.size, 0);
});

Deno.test("Allocations.sample() picks among the current relays", () => {
  const all = set();
  assert.equal(all.sample(new SeededRng(1)), undefined);
  all.upsert({ id: "a", server: { v4: V4 }, username: "u", password: "p" }, 0);
  all.upsert({ id: "b", server: { v6: V6 }, username: "u", password: "p" }, 0);
  const rng = new SeededRng(7);
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) seen.add(all.sample(rng)![0]);
  assert.deepEqual([...seen].sort(), ["a", "b"]);
  assert.equal(all.remove("a")?.server.v4, V4);
  assert.deepEqual(all.ids(), ["b"]);
});
