import assert from "node:assert/strict";
import { type IpFamily, type SocketAddr, socketAddr } from "../../src/wire/ip_addr.ts";
import { FluxCapacitor } from "./flux_capacitor.ts";
import { MinHeap } from "./min_heap.ts";
import { type SimHost, SimNet, type SimTransmit } from "./sim_net.ts";

/** Records what it receives; answers "ping" with "pong" after `replyDelayMs` (a timer). */
class EchoHost implements SimHost {
  readonly received: { at: number; src: SocketAddr; dst: SocketAddr; text: string }[] = [];
  readonly #out: SimTransmit[] = [];
  readonly #timers: { at: number; t: SimTransmit }[] = [];

  constructor(readonly name: string, readonly ips: readonly string[], readonly replyDelayMs = 0) {}

  send(dst: SocketAddr, text: string, src: SocketAddr | null = null): void {
    this.#out.push({ src, dst, payload: new TextEncoder().encode(text) });
  }

  defaultSource(family: IpFamily): SocketAddr | null {
    const ip = this.ips.find((i) => (i.includes(":") ? 6 : 4) === family);
    return ip === undefined ? null : socketAddr(ip, 1000);
  }

  handleDatagram(src: SocketAddr, dst: SocketAddr, payload: Uint8Array, now: number): void {
    const text = new TextDecoder().decode(payload);
    this.received.push({ at: now, src, dst, text });
    if (text === "ping") {
      const t = { src: dst, dst: src, payload: new TextEncoder().encode("pong") };
      if (this.replyDelayMs === 0) this.#out.push(t);
      else this.#timers.push({ at: now + this.replyDelayMs, t });
    }
  }

  pollTransmit(): SimTransmit | undefined {
    return this.#out.shift();
  }

  pollTimeout(): number {
    return this.#timers.length === 0 ? Infinity : Math.min(...this.#timers.map((x) => x.at));
  }

  handleTimeout(now: number): void {
    for (let i = this.#timers.length - 1; i >= 0; i--) {
      if (this.#timers[i]!.at <= now) this.#out.push(this.#timers.splice(i, 1)[0]!.t);
    }
  }
}

Deno.test("SimNet delivers after the link latency, replies after the host's timer", () => {
  const net = new SimNet(new FluxCapacitor(), 10);
  const a = net.addHost(new EchoHost("a", ["192.0.2.1"]));
  const b = net.addHost(new EchoHost("b", ["192.0.2.2"], 5));
  net.setLatency(a, b, 30);

  a.send(socketAddr("192.0.2.2", 7), "ping");
  net.runUntil(1_000);

  assert.deepEqual(b.received.map((r) => [r.at, r.text, r.src.ip]), [[30, "ping", "192.0.2.1"]]);
  assert.deepEqual(a.received.map((r) => [r.at, r.text]), [[65, "pong"]]);
  assert.equal(net.now, 1_000);
});

Deno.test("SimNet NAT: endpoint-independent mapping, address-restricted filtering, symmetric mapping", () => {
  const net = new SimNet(new FluxCapacitor(), 10);
  const inner = net.addHost(new EchoHost("inner", ["10.0.0.2"]), { publicIp: "198.51.100.1" });
  const s1 = net.addHost(new EchoHost("s1", ["192.0.2.1"]));
  const s2 = net.addHost(new EchoHost("s2", ["192.0.2.2"]));

  inner.send(socketAddr("192.0.2.1", 3478), "ping");
  inner.send(socketAddr("192.0.2.2", 3478), "hello");
  net.runFor(100);
  assert.deepEqual(s1.received[0]!.src, socketAddr("198.51.100.1", 40000));
  assert.deepEqual(
    s2.received[0]!.src,
    socketAddr("198.51.100.1", 40000),
    "same mapping for every destination",
  );
  assert.equal(inner.received.length, 1, "the pong came back through the mapping");
  assert.deepEqual(inner.received[0]!.dst, socketAddr("10.0.0.2", 1000));

  const s3 = net.addHost(new EchoHost("s3", ["192.0.2.3"]));
  s3.send(socketAddr("198.51.100.1", 40000), "unsolicited");
  net.runFor(100);
  assert.equal(inner.received.length, 1, "filtered: inner never sent to 192.0.2.3");
  assert.equal(net.packets.at(-1)!.outcome, "filtered");

  const net2 = new SimNet(new FluxCapacitor(), 10);
  const sym = net2.addHost(new EchoHost("sym", ["10.0.0.2"]), { publicIp: "198.51.100.1", symmetric: true });
  const t1 = net2.addHost(new EchoHost("t1", ["192.0.2.1"]));
  const t2 = net2.addHost(new EchoHost("t2", ["192.0.2.2"]));
  sym.send(socketAddr("192.0.2.1", 1), "x");
  sym.send(socketAddr("192.0.2.2", 1), "y");
  net2.runFor(100);
  assert.notEqual(t1.received[0]!.src.port, t2.received[0]!.src.port, "a new port per destination");
});

Deno.test("SimNet block rules drop datagrams and can be lifted", () => {
  const net = new SimNet(new FluxCapacitor(), 10);
  const a = net.addHost(new EchoHost("a", ["192.0.2.1"]));
  const b = net.addHost(new EchoHost("b", ["192.0.2.2"]));
  const unblock = net.block((from, _src, dst) => from === a && dst.port === 7);

  a.send(socketAddr("192.0.2.2", 7), "one");
  a.send(socketAddr("192.0.2.2", 8), "two");
  net.runFor(50);
  unblock();
  a.send(socketAddr("192.0.2.2", 7), "three");
  net.runFor(50);

  assert.deepEqual(b.received.map((r) => r.text), ["two", "three"]);
  assert.deepEqual(net.packets.map((p) => p.outcome), ["blocked", "sent", "sent"]);
  a.send(socketAddr("203.0.113.9", 1), "nowhere");
  net.runFor(50);
  assert.equal(net.packets.at(-1)!.outcome, "unroutable");
});

Deno.test("SimNet.advanceUntil() stops when the condition holds and throws at the cut-off", () => {
  const net = new SimNet(new FluxCapacitor(), 10);
  const a = net.addHost(new EchoHost("a", ["192.0.2.1"]));
  net.addHost(new EchoHost("b", ["192.0.2.2"]));
  a.send(socketAddr("192.0.2.2", 7), "ping");

  assert.equal(net.advanceUntil(() => a.received.length > 0, 1_000), 20);
  assert.throws(() => net.advanceUntil(() => false, 500, "never"), /cut off after 500 ms waiting for never/);
  assert.equal(net.now, 520);
});

Deno.test("SimNet.advanceUntilIdle() stops when nothing is in flight and no timer is due within the quiet window", () => {
  const net = new SimNet(new FluxCapacitor(), 10);
  const a = net.addHost(new EchoHost("a", ["192.0.2.1"]));
  net.addHost(new EchoHost("b", ["192.0.2.2"], 3_000));
  a.send(socketAddr("192.0.2.2", 7), "ping");

  assert.equal(net.advanceUntilIdle({ cutOffMs: 10_000, quietMs: 1_000 }), true);
  assert.equal(net.now, 10);
  assert.equal(net.advanceUntilIdle({ cutOffMs: 10_000, quietMs: 5_000 }), true);
  assert.equal(net.now, 3_020, "ran the 3 s reply timer and the delivery");
  assert.equal(a.received.length, 1);

  const busy = new SimNet(new FluxCapacitor(), 10);
  const x = busy.addHost(new EchoHost("x", ["192.0.2.1"], 100));
  const y = busy.addHost(new EchoHost("y", ["192.0.2.2"], 100));
  x.send(socketAddr("192.0.2.2", 7), "ping");
  y.handleDatagram(
    socketAddr("192.0.2.1", 7),
    socketAddr("192.0.2.2", 7),
    new TextEncoder().encode("ping"),
    0,
  );
  assert.equal(busy.advanceUntilIdle({ cutOffMs: 50, quietMs: 1_000 }), false, "cut off while busy");
});

Deno.test("MinHeap pops in order", () => {
  const h = new MinHeap<number>((a, b) => a < b);
  for (const v of [5, 1, 4, 1, 9, 2, 6]) h.push(v);
  const out: number[] = [];
  for (let v = h.pop(); v !== undefined; v = h.pop()) out.push(v);
  assert.deepEqual(out, [1, 1, 2, 4, 5, 6, 9]);
});

Deno.test("FluxCapacitor never goes backwards", () => {
  const c = new FluxCapacitor(100);
  c.advance(5);
  assert.equal(c.now, 105);
  assert.throws(() => c.advanceTo(104), RangeError);
  assert.equal(c.wallClock(0), 1_714_521_600_000);
});
