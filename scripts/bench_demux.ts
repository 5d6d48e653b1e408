/**
 * Micro-benchmark of the receive-side demux: `classifyDatagram` alone (WireGuard data, relay
 * ChannelData, ICE STUN) and classify + `Allocation.decapsulate` for ChannelData from a relay.
 *
 * Usage: `./scripts/deno run scripts/bench_demux.ts [iterations]` (default 2,000,000).
 * Prints ns per packet. Run with `--v8-flags=--trace-gc` to check that the loop does not allocate.
 *
 * @module
 */

import { SeededRng } from "../src/rng.ts";
import { Allocation } from "../src/turn/allocation.ts";
import { writeChannelDataHeader } from "../src/wire/channel_data.ts";
import { classifyDatagram, DatagramKind } from "../src/wire/demux.ts";
import { socketAddr } from "../src/wire/ip_addr.ts";
import {
  longTermKey,
  parseStun,
  StunAttr,
  StunClass,
  StunMessageBuilder,
  StunMethod,
} from "../src/wire/stun.ts";

const ITERATIONS = Number(Deno.args[0] ?? 2_000_000);
const RELAY = socketAddr("198.51.100.1", 3478);
const LOCAL = socketAddr("10.0.0.2", 52625);
const PEER = socketAddr("192.0.2.50", 6000);
const USER = "bench";
const PASS = "bench";

function out(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
}

/** An allocation with channel 0x4000 bound to PEER, driven by hand-made relay responses. */
function boundAllocation(): Allocation {
  const key = longTermKey(USER, "firezone", PASS);
  const alloc = new Allocation({
    server: { v4: RELAY },
    username: USER,
    password: PASS,
    sessionId: "BENCH",
    rng: new SeededRng(1),
    now: 0,
  });
  const reply = (build: (tid: Uint8Array) => Uint8Array) => {
    const t = alloc.pollTransmit()!;
    const req = parseStun(t.payload);
    if (!req.ok) throw new Error(req.reason);
    alloc.handleInput(RELAY, LOCAL, build(req.msg.transactionId), 0);
  };
  reply((tid) =>
    new StunMessageBuilder(StunMethod.Binding, StunClass.Success, tid)
      .addXorAddress(StunAttr.XorMappedAddress, LOCAL).build()
  );
  reply((tid) =>
    new StunMessageBuilder(StunMethod.Allocate, StunClass.Success, tid)
      .addXorAddress(StunAttr.XorRelayedAddress, socketAddr("198.51.100.1", 49152))
      .addU32(StunAttr.Lifetime, 600).addMessageIntegrity(key).build()
  );
  alloc.bindChannel(PEER, 0);
  reply((tid) =>
    new StunMessageBuilder(StunMethod.ChannelBind, StunClass.Success, tid).addMessageIntegrity(key).build()
  );
  return alloc;
}

function measure(name: string, fn: () => number): void {
  let sink = 0;
  for (let i = 0; i < 100_000; i++) sink += fn(); // warm-up
  const start = performance.now();
  for (let i = 0; i < ITERATIONS; i++) sink += fn();
  const ns = ((performance.now() - start) * 1e6) / ITERATIONS;
  out(`${name.padEnd(44)} ${ns.toFixed(1).padStart(7)} ns/packet  (checksum ${sink})`);
}

const alloc = boundAllocation();

const wg = new Uint8Array(1312);
wg[0] = 4;
const cd = new Uint8Array(1316);
cd.set(wg, 4);
writeChannelDataHeader(cd, 0, 0x4000, 1312);
const stun = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, new Uint8Array(12))
  .addString(StunAttr.Username, "abcd:efgh").addU32(StunAttr.Priority, 1).addMessageIntegrity(
    new Uint8Array(16),
  )
  .addFingerprint().build();

out(`${ITERATIONS} iterations`);
measure("classify WireGuard data (1312 B, peer)", () => classifyDatagram(wg, 0, wg.length, 52625));
measure("classify ChannelData (1316 B, port 3478)", () => classifyDatagram(cd, 0, cd.length, 3478));
measure("classify ICE STUN check (peer)", () => classifyDatagram(stun, 0, stun.length, 52625));
measure("classify + decapsulate ChannelData", () => {
  if (classifyDatagram(cd, 0, cd.length, 3478) !== DatagramKind.ChannelData) return -1;
  const d = alloc.decapsulate(RELAY, cd, 0, cd.length, 1);
  return d === null ? -1 : d.payloadLen;
});
const sendBuf = new Uint8Array(1316);
measure("encodeToPeer (ChannelData header in place)", () => alloc.encodeToPeer(PEER, sendBuf, 4, 1312, 1));
