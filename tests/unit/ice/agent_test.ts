import assert from "node:assert/strict";
import { IceAgent, type IceCredentials } from "../../../src/ice/agent.ts";
import {
  type Candidate,
  candidatePriority,
  formatCandidate,
  hostCandidate,
  parseCandidate,
  relayCandidate,
  serverReflexiveCandidate,
} from "../../../src/ice/candidate.ts";
import { IDLE_STUN_TIMING } from "../../../src/ice/stun_timing.ts";
import { SeededRng } from "../../../src/rng.ts";
import type { SocketAddr } from "../../../src/wire/ip_addr.ts";
import {
  parseStun,
  shortTermKey,
  StunAttr,
  StunClass,
  type StunMessage,
  StunMessageBuilder,
  StunMethod,
} from "../../../src/wire/stun.ts";
import { addr, lastNominated, SimNet, type SimPeer, states, stateTime } from "./sim_net.ts";

// Firezone-shaped credentials: client ufrag 4 / pwd 22, gateway ufrag 4 / pwd 23.
const CLIENT: IceCredentials = { ufrag: "c1uf", pwd: "clientpasswordclientpa" };
const GATEWAY: IceCredentials = { ufrag: "g1uf", pwd: "gatewaypasswordgatewayp" };

function makeClient(seed = 1, now = 0): IceAgent {
  return new IceAgent({ controlling: true, local: CLIENT, remote: GATEWAY, rng: new SeededRng(seed), now });
}

function makeGateway(seed = 2, now = 0): IceAgent {
  return new IceAgent({ controlling: false, local: GATEWAY, remote: CLIENT, rng: new SeededRng(seed), now });
}

/** Adds a local candidate on `from` and trickles its string form to `to` (through the parser). */
function trickle(from: IceAgent, to: IceAgent, c: Candidate, now: number): Candidate {
  const added = from.addLocalCandidate(c);
  assert.ok(added, "candidate was added");
  const parsed = parseCandidate(formatCandidate(added));
  assert.ok(parsed);
  to.addRemoteCandidate(parsed, now);
  return added;
}

function same(a: SocketAddr | undefined, b: SocketAddr): boolean {
  return a !== undefined && a.ip === b.ip && a.port === b.port;
}

function bothNominated(a: SimPeer, b: SimPeer): () => boolean {
  return () => lastNominated(a) !== undefined && lastNominated(b) !== undefined;
}

function directSetup(latencyMs = 10) {
  const net = new SimNet(latencyMs);
  const client = makeClient();
  const gateway = makeGateway();
  const clientAddr = addr("10.0.0.1:4000");
  const gatewayAddr = addr("10.0.0.2:52625");
  const c = net.addPeer("client", client, [clientAddr]);
  const g = net.addPeer("gateway", gateway, [gatewayAddr]);
  trickle(client, gateway, hostCandidate(clientAddr), 0);
  trickle(gateway, client, hostCandidate(gatewayAddr), 0);
  return { net, client, gateway, c, g, clientAddr, gatewayAddr };
}

Deno.test("IceAgent: controlling and controlled agents connect directly and both nominate the host pair", () => {
  const { net, c, g, clientAddr, gatewayAddr } = directSetup();
  net.run(5_000, bothNominated(c, g));
  assert.ok(net.now < 200, `connected after ${net.now} ms`);
  const gw = lastNominated(g)!;
  assert.ok(same(gw.source, gatewayAddr) && same(gw.destination, clientAddr));
  const cl = lastNominated(c)!;
  assert.ok(same(cl.source, clientAddr) && same(cl.destination, gatewayAddr));
  net.run(net.now + 100);
  assert.ok(["Connected", "Completed"].includes(g.agent.state), g.agent.state);
  assert.deepEqual(states(g).slice(0, 2), ["Checking", "Completed"]);
  assert.ok(net.sentUseCandidate("client"), "the controlling side nominates with USE-CANDIDATE");
  assert.ok(!net.sentUseCandidate("gateway"), "the controlled side never sends USE-CANDIDATE");
});

Deno.test("IceAgent: the controlled agent's checks carry exactly the spec's attributes", () => {
  const { net, gateway, c, g } = directSetup();
  net.run(5_000, bothNominated(c, g));
  const checks = net.sent.filter((p) => p.from === "gateway" && p.stun?.cls === StunClass.Request);
  assert.ok(checks.length > 0);
  for (const p of checks) {
    const m = p.stun!;
    assert.ok(p.payload.length <= 1150);
    assert.equal(m.method, StunMethod.Binding);
    assert.equal(m.stringAttr(StunAttr.Username), "c1uf:g1uf");
    assert.equal(m.u32Attr(StunAttr.Priority), candidatePriority("prflx", 65534));
    assert.equal(m.u64Attr(StunAttr.IceControlled), gateway.tieBreaker);
    assert.ok(!m.has(StunAttr.IceControlling) && !m.has(StunAttr.UseCandidate));
    assert.ok(m.verifyIntegrity(shortTermKey(CLIENT.pwd)), "integrity with the remote password");
    assert.ok(!m.verifyIntegrity(shortTermKey(GATEWAY.pwd)));
    assert.ok(m.verifyFingerprint());
    const types = m.attributes.map((a) => a.type);
    assert.deepEqual(types.slice(-2), [StunAttr.MessageIntegrity, StunAttr.Fingerprint]);
  }
  const replies = net.sent.filter((p) => p.from === "gateway" && p.stun?.cls === StunClass.Success);
  assert.ok(replies.length > 0);
  for (const p of replies) {
    const m = p.stun!;
    assert.deepEqual(m.xorAddress(StunAttr.XorMappedAddress), p.destination, "mapped = request source");
    assert.ok(m.verifyIntegrity(shortTermKey(GATEWAY.pwd)), "integrity with the local password");
    assert.ok(m.verifyFingerprint());
    assert.deepEqual(p.source, addr("10.0.0.2:52625"));
  }
  const clientChecks = net.requestsFrom("client");
  assert.ok(clientChecks.every((m) => m.u64Attr(StunAttr.IceControlling) !== null));
  assert.ok(clientChecks.every((m) => m.stringAttr(StunAttr.Username) === "g1uf:c1uf"));
});

Deno.test("IceAgent: the controlled side reports NominatedSend only after the peer's USE-CANDIDATE", () => {
  const { net, c, g } = directSetup(25);
  net.run(5_000, bothNominated(c, g));
  const firstUseCandidate = net.sent.find((p) => p.from === "client" && p.stun?.has(StunAttr.UseCandidate));
  assert.ok(firstUseCandidate);
  const gwNominatedAt = g.eventTimes[g.events.findIndex((e) => e.type === "NominatedSend")]!;
  assert.equal(gwNominatedAt, firstUseCandidate.at + 25, "right when the nominating check arrives");
  const plainChecksBefore = net.sent.filter((p) =>
    p.from === "client" && p.stun?.cls === StunClass.Request && !p.stun.has(StunAttr.UseCandidate)
  );
  assert.ok(plainChecksBefore.length > 0, "regular nomination: a plain check succeeds first");
});

Deno.test("IceAgent: keeps a direct connection alive with ~1.5 s keepalive checks", () => {
  const { net, c, g } = directSetup();
  net.run(5_000, bothNominated(c, g));
  const start = net.now;
  net.run(start + 60_000);
  assert.ok(["Connected", "Completed"].includes(g.agent.state));
  assert.ok(!states(g).includes("Disconnected"));
  const window = net.sent.filter((p) =>
    p.from === "gateway" && p.stun?.cls === StunClass.Request && p.at > start
  );
  assert.ok(window.length >= 38 && window.length <= 41, `${window.length} keepalives in 60 s`);
});

Deno.test("IceAgent: connects through a NAT by learning peer-reflexive candidates", () => {
  const net = new SimNet(10);
  const client = makeClient();
  const gateway = makeGateway();
  const privateAddr = addr("192.168.1.10:4000");
  const gatewayAddr = addr("198.51.100.2:52625");
  const c = net.addPeer("client", client, [privateAddr], {
    publicIp: "203.0.113.7",
    firstPort: 40000,
    privateAddrs: [privateAddr],
  });
  const g = net.addPeer("gateway", gateway, [gatewayAddr]);
  trickle(client, gateway, hostCandidate(privateAddr), 0);
  trickle(gateway, client, hostCandidate(gatewayAddr), 0);
  net.run(10_000, bothNominated(c, g));

  const mapped = addr("203.0.113.7:40000");
  const prflx = gateway.remoteCandidates().find((x) => x.kind === "prflx");
  assert.ok(prflx, "the gateway learned a remote prflx candidate");
  assert.deepEqual(prflx.addr, mapped);
  assert.equal(prflx.priority, candidatePriority("prflx", 65534), "priority from the request's PRIORITY");
  const gw = lastNominated(g)!;
  assert.ok(same(gw.source, gatewayAddr) && same(gw.destination, mapped));
  const localPrflx = client.localCandidates().find((x) => x.kind === "prflx");
  assert.ok(localPrflx, "the client learned its own mapped address");
  assert.deepEqual(localPrflx.addr, mapped);
  assert.deepEqual(localPrflx.base, privateAddr);
  assert.ok(!net.sentUseCandidate("gateway"));
});

Deno.test("IceAgent: connects through a symmetric NAT on the client side too", () => {
  const net = new SimNet(10);
  const client = makeClient(11);
  const gateway = makeGateway(12);
  const privateAddr = addr("192.168.1.10:4000");
  const gatewayAddr = addr("198.51.100.2:52625");
  const c = net.addPeer("client", client, [privateAddr], {
    publicIp: "203.0.113.7",
    symmetric: true,
    privateAddrs: [privateAddr],
  });
  const g = net.addPeer("gateway", gateway, [gatewayAddr]);
  trickle(client, gateway, hostCandidate(privateAddr), 0);
  trickle(gateway, client, hostCandidate(gatewayAddr), 0);
  net.run(10_000, bothNominated(c, g));
  assert.ok(lastNominated(g), "nominated");
  assert.equal(lastNominated(g)!.destination.ip, "203.0.113.7");
});

Deno.test("IceAgent: connects only via relayed addresses when direct paths are blocked", () => {
  const net = new SimNet(15);
  const client = makeClient(3);
  const gateway = makeGateway(4);
  const clientHost = addr("10.1.0.1:4000");
  const gatewayHost = addr("10.2.0.1:52625");
  const clientRelay = addr("192.0.2.50:60000");
  const gatewayRelay = addr("192.0.2.60:61000");
  const c = net.addPeer("client", client, [clientHost, clientRelay]);
  const g = net.addPeer("gateway", gateway, [gatewayHost, gatewayRelay]);
  const hosts = [clientHost, gatewayHost];
  net.drop = (_from, src, dst) => hosts.some((h) => same(src, h) || same(dst, h));

  trickle(client, gateway, hostCandidate(clientHost), 0);
  trickle(client, gateway, relayCandidate(clientRelay, clientHost), 0);
  trickle(gateway, client, hostCandidate(gatewayHost), 0);
  trickle(gateway, client, relayCandidate(gatewayRelay, gatewayHost), 0);
  net.run(20_000, bothNominated(c, g));

  const gw = lastNominated(g)!;
  assert.ok(same(gw.source, gatewayRelay), "the gateway sends from its relayed address");
  assert.ok(same(gw.destination, clientRelay));
  const cl = lastNominated(c)!;
  assert.ok(same(cl.source, clientRelay) && same(cl.destination, gatewayRelay));
  assert.ok(!net.sentUseCandidate("gateway"));
  // The blocked host pairs die off; the relayed one stays.
  net.run(net.now + 30_000);
  assert.ok(gateway.pairs().every((p) => p.local.kind === "relay" && p.remote.kind === "relay"));
  assert.ok(["Connected", "Completed"].includes(gateway.state));
});

Deno.test("IceAgent: switches to a better pair trickled later (NominatedSend fires again)", () => {
  const net = new SimNet(10);
  const client = makeClient(5);
  const gateway = makeGateway(6);
  const clientHost = addr("10.0.0.1:4000");
  const gatewayHost = addr("10.0.0.2:52625");
  const clientRelay = addr("192.0.2.50:60000");
  const gatewayRelay = addr("192.0.2.60:61000");
  const c = net.addPeer("client", client, [clientHost, clientRelay]);
  const g = net.addPeer("gateway", gateway, [gatewayHost, gatewayRelay]);
  trickle(client, gateway, relayCandidate(clientRelay, clientHost), 0);
  trickle(gateway, client, relayCandidate(gatewayRelay, gatewayHost), 0);
  net.run(5_000, bothNominated(c, g));
  assert.ok(same(lastNominated(g)!.destination, clientRelay));

  trickle(client, gateway, hostCandidate(clientHost), net.now);
  trickle(gateway, client, hostCandidate(gatewayHost), net.now);
  net.run(
    net.now + 5_000,
    () => same(lastNominated(g)?.destination, clientHost) && same(lastNominated(c)?.destination, gatewayHost),
  );
  const gw = lastNominated(g)!;
  assert.ok(same(gw.source, gatewayHost) && same(gw.destination, clientHost));
  assert.ok(g.events.filter((e) => e.type === "NominatedSend").length >= 2);
  assert.ok(same(lastNominated(c)!.destination, gatewayHost));
});

Deno.test("IceAgent: an unanswered agent is Disconnected exactly 15 250 ms after its first check", () => {
  const net = new SimNet(10);
  const gateway = makeGateway();
  const g = net.addPeer("gateway", gateway, [addr("10.0.0.2:52625")]);
  gateway.addLocalCandidate(hostCandidate(addr("10.0.0.2:52625")));
  gateway.addRemoteCandidate(parseCandidate("candidate:1 1 udp 2130706175 10.0.0.1 4000 typ host")!, 0);
  net.run(15_249);
  assert.equal(net.sent[0]!.at, 0, "first check at once");
  assert.equal(gateway.state, "Checking");
  assert.deepEqual(
    net.sent.map((p) => p.at),
    [0, 250, 750, 1750, 3250, 4750, 6250, 7750, 9250, 10750, 12250, 13750],
  );
  net.run(15_250);
  assert.equal(gateway.state, "Disconnected");
  assert.equal(stateTime(g, "Disconnected"), 15_250);
  assert.equal(gateway.pairs().length, 0, "the failed pair is removed");
  assert.equal(gateway.iceTimeoutMs(), 15_250);
});

Deno.test("IceAgent: with idle timings an unanswered agent is Disconnected after exactly 100 s", () => {
  const net = new SimNet(10);
  const gateway = makeGateway();
  const g = net.addPeer("gateway", gateway, [addr("10.0.0.2:52625")]);
  gateway.setIdle(true);
  assert.equal(gateway.timing, IDLE_STUN_TIMING);
  assert.equal(gateway.iceTimeoutMs(), 100_000);
  gateway.addLocalCandidate(hostCandidate(addr("10.0.0.2:52625")));
  gateway.addRemoteCandidate(parseCandidate("candidate:1 1 udp 2130706175 10.0.0.1 4000 typ host")!, 0);
  net.run(99_999);
  assert.deepEqual(net.sent.map((p) => p.at), [0, 25_000, 50_000, 75_000]);
  assert.equal(gateway.state, "Checking");
  net.run(100_000);
  assert.equal(stateTime(g, "Disconnected"), 100_000);
});

Deno.test("IceAgent: a connected pair that goes silent is dropped 15 250 ms into its back-off", () => {
  const { net, c, g } = directSetup();
  net.run(5_000, bothNominated(c, g));
  net.run(net.now + 10_000);
  const cut = net.now;
  net.drop = () => true;
  net.run(cut + 60_000, () => g.agent.state === "Disconnected");
  // The first unanswered keepalive t1 still waits one max RTO (1.5 s); from then on the back-off
  // restarts at 500 ms, so the 12th unanswered check goes out at t1 + 15 s and the pair dies
  // 1.5 s later: t1 + 16.5 s = 1.5 s + the 15.25 s ICE timeout - the 250 ms first step.
  const t1 =
    net.sent.find((p) => p.from === "gateway" && p.stun?.cls === StunClass.Request && p.at >= cut)!.at;
  assert.equal(stateTime(g, "Disconnected"), t1 + 16_500);
});

Deno.test("IceAgent: setIdle() switches keepalives to 25 s and back", () => {
  const { net, c, g } = directSetup();
  net.run(5_000, bothNominated(c, g));
  g.agent.setIdle(true);
  c.agent.setIdle(true);
  const start = net.now;
  net.run(start + 100_000);
  const idle = net.sent.filter((p) =>
    p.from === "gateway" && p.stun?.cls === StunClass.Request && p.at > start
  );
  assert.ok(idle.length >= 3 && idle.length <= 5, `${idle.length} checks in 100 s idle`);
  assert.ok(["Connected", "Completed"].includes(g.agent.state));
  g.agent.setIdle(false);
  const back = net.now;
  net.run(back + 15_000);
  const active = net.sent.filter((p) =>
    p.from === "gateway" && p.stun?.cls === StunClass.Request && p.at > back
  );
  assert.ok(active.length >= 9, `${active.length} checks in 15 s active`);
});

Deno.test("IceAgent: two controlled agents resolve the role conflict and connect", () => {
  const net = new SimNet(10);
  const a = new IceAgent({
    controlling: false,
    local: CLIENT,
    remote: GATEWAY,
    rng: new SeededRng(21),
    now: 0,
  });
  const b = makeGateway(22);
  const aAddr = addr("10.0.0.1:4000");
  const bAddr = addr("10.0.0.2:52625");
  const pa = net.addPeer("a", a, [aAddr]);
  const pb = net.addPeer("b", b, [bAddr]);
  trickle(a, b, hostCandidate(aAddr), 0);
  trickle(b, a, hostCandidate(bAddr), 0);
  net.run(10_000, bothNominated(pa, pb));
  assert.ok(lastNominated(pa) && lastNominated(pb));
  assert.notEqual(a.controlling, b.controlling, "exactly one side took the controlling role");
  assert.equal(a.controlling, a.tieBreaker > b.tieBreaker);
});

Deno.test("IceAgent: optimistic srflx candidates (generates_correct_optimistic_candidates)", () => {
  const gateway = makeGateway();
  gateway.addRemoteCandidate(hostCandidate(addr("10.0.0.1:52625")), 0);
  gateway.addRemoteCandidate(serverReflexiveCandidate(addr("1.1.1.1:40000"), addr("10.0.0.1:52625")), 0);
  const optimistic = gateway.remoteCandidates().filter((c) =>
    c.kind === "srflx" && same(c.addr, addr("1.1.1.1:52625"))
  );
  assert.equal(optimistic.length, 1);
  assert.deepEqual(optimistic[0]!.base, addr("10.0.0.1:52625"));
  // No duplicates when more candidates trickle in; other families are not mixed.
  gateway.addRemoteCandidate(hostCandidate(addr("[fd00::1]:52626")), 0);
  gateway.addRemoteCandidate(hostCandidate(addr("10.0.0.1:52625")), 0);
  assert.equal(gateway.remoteCandidates().length, 4);
  assert.ok(!gateway.remoteCandidates().some((c) => c.kind === "srflx" && c.addr.port === 52626));
});

Deno.test("IceAgent: rejects remote candidates carrying another ufrag", () => {
  const gateway = makeGateway();
  gateway.addRemoteCandidate(
    parseCandidate("candidate:1 1 udp 2130706175 10.0.0.1 4000 typ host ufrag zzzz")!,
    0,
  );
  assert.equal(gateway.remoteCandidates().length, 0);
  gateway.addRemoteCandidate(
    parseCandidate("candidate:1 1 udp 2130706175 10.0.0.1 4000 typ host ufrag c1uf")!,
    0,
  );
  assert.equal(gateway.remoteCandidates().length, 1);
  assert.equal(gateway.remoteCandidates()[0]!.ufrag, undefined);
});

Deno.test("IceAgent: invalidating a candidate removes its pairs", () => {
  const gateway = makeGateway();
  const local = gateway.addLocalCandidate(hostCandidate(addr("10.0.0.2:52625")))!;
  const r1 = parseCandidate("candidate:1 1 udp 2130706175 10.0.0.1 4000 typ host")!;
  const r2 = parseCandidate("candidate:2 1 udp 1694498559 1.2.3.4 4000 typ srflx raddr 0.0.0.0 rport 0")!;
  gateway.addRemoteCandidate(r1, 0);
  gateway.addRemoteCandidate(r2, 0);
  assert.equal(gateway.pairs().length, 2, "the srflx pair and the host pair (optimistic one is redundant)");
  assert.ok(gateway.invalidateRemoteCandidate(r1));
  assert.ok(!gateway.invalidateRemoteCandidate(r1), "already gone");
  assert.ok(gateway.pairs().every((p) => !same(p.remote.addr, r1.addr)));
  assert.ok(gateway.invalidateLocalCandidate(local));
  assert.equal(gateway.pairs().length, 0);
  assert.equal(gateway.localCandidates().length, 0);
});

Deno.test("IceAgent: caps the checklist at 100 pairs, keeping the best", () => {
  const gateway = makeGateway();
  for (let i = 0; i < 11; i++) gateway.addLocalCandidate(hostCandidate(addr(`10.0.1.${i + 1}:52625`)));
  for (let i = 0; i < 10; i++) {
    gateway.addRemoteCandidate(
      parseCandidate(`candidate:${i} 1 udp ${2130706175 - i * 512} 10.0.2.${i + 1} 4000 typ host`)!,
      0,
    );
  }
  const pairs = gateway.pairs();
  assert.equal(pairs.length, 100);
  // The 10 dropped pairs are those of the lowest-preference local candidate.
  assert.ok(pairs.every((p) => p.local.addr.ip !== "10.0.1.11"));
});

function request(opts: {
  username: string;
  key: Uint8Array;
  priority?: number;
  useCandidate?: boolean;
  controlling?: bigint;
}): StunMessage {
  const b = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, new Uint8Array(12).fill(7))
    .addString(StunAttr.Username, opts.username);
  if (opts.priority !== undefined) b.addU32(StunAttr.Priority, opts.priority);
  b.addU64(StunAttr.IceControlling, opts.controlling ?? 1n);
  if (opts.useCandidate) b.addEmpty(StunAttr.UseCandidate);
  const parsed = parseStun(b.addMessageIntegrity(opts.key).addFingerprint().build());
  assert.ok(parsed.ok);
  return parsed.msg;
}

Deno.test("IceAgent.acceptsMessage() checks ufrags, PRIORITY, integrity and transaction ids", () => {
  const gateway = makeGateway();
  const good = { username: "g1uf:c1uf", key: shortTermKey(GATEWAY.pwd), priority: 1 };
  assert.ok(gateway.acceptsMessage(request(good)));
  assert.ok(!gateway.acceptsMessage(request({ ...good, username: "xxxx:c1uf" })));
  assert.ok(!gateway.acceptsMessage(request({ ...good, username: "g1uf:xxxx" })));
  assert.ok(!gateway.acceptsMessage(request({ ...good, username: "g1uf" })));
  assert.ok(!gateway.acceptsMessage(request({ ...good, key: shortTermKey(CLIENT.pwd) })));
  const noPriority = { username: good.username, key: good.key };
  assert.ok(!gateway.acceptsMessage(request(noPriority)));
  // A response whose transaction id is not one of our checks.
  const resp = parseStun(
    new StunMessageBuilder(StunMethod.Binding, StunClass.Success, new Uint8Array(12).fill(9))
      .addXorAddress(StunAttr.XorMappedAddress, addr("10.0.0.2:52625"))
      .addMessageIntegrity(shortTermKey(CLIENT.pwd)).addFingerprint().build(),
  );
  assert.ok(resp.ok && !gateway.acceptsMessage(resp.msg));
  // Corrupted fingerprint.
  const bytes = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, new Uint8Array(12))
    .addString(StunAttr.Username, "g1uf:c1uf").addU32(StunAttr.Priority, 1)
    .addMessageIntegrity(shortTermKey(GATEWAY.pwd)).addFingerprint().build();
  bytes[bytes.length - 1]! ^= 1;
  const bad = parseStun(bytes);
  assert.ok(bad.ok && !gateway.acceptsMessage(bad.msg));
  // Remote ufrag unknown yet: only the local part and integrity count.
  const early = new IceAgent({ controlling: false, local: GATEWAY, rng: new SeededRng(1), now: 0 });
  assert.ok(early.acceptsMessage(request({ ...good, username: "g1uf:anything" })));
});

Deno.test("IceAgent.handlePacket(): unknown source → remote prflx; unknown destination → dropped", () => {
  const gateway = makeGateway();
  gateway.addLocalCandidate(hostCandidate(addr("10.0.0.2:52625")));
  gateway.handleTimeout(0);
  const req = request({ username: "g1uf:c1uf", key: shortTermKey(GATEWAY.pwd), priority: 1862270719 });

  assert.ok(gateway.handlePacket(1, addr("198.51.100.9:7000"), addr("10.0.0.99:52625"), req));
  assert.equal(gateway.pollTransmit(), undefined, "a check to an address we do not own is dropped");

  assert.ok(gateway.handlePacket(2, addr("198.51.100.9:7000"), addr("10.0.0.2:52625"), req));
  const reply = gateway.pollTransmit()!;
  assert.deepEqual(reply.source, addr("10.0.0.2:52625"));
  assert.deepEqual(reply.destination, addr("198.51.100.9:7000"));
  const parsed = parseStun(reply.payload);
  assert.ok(parsed.ok);
  assert.equal(parsed.msg.cls, StunClass.Success);
  assert.deepEqual(parsed.msg.transactionId, req.transactionId);
  assert.deepEqual(parsed.msg.xorAddress(StunAttr.XorMappedAddress), addr("198.51.100.9:7000"));
  const prflx = gateway.remoteCandidates().find((c) => c.kind === "prflx")!;
  assert.equal(prflx.priority, 1862270719);
  // A triggered check towards the new candidate follows.
  assert.equal(gateway.pollTimeout(), 2);
  gateway.handleTimeout(2);
  const check = gateway.pollTransmit()!;
  assert.deepEqual(check.destination, addr("198.51.100.9:7000"));
  assert.ok(gateway.pollEvent(), "events were queued");
});

Deno.test("IceAgent: checks that arrive before the remote credentials are answered once they are known", () => {
  const gateway = new IceAgent({ controlling: false, local: GATEWAY, rng: new SeededRng(3), now: 0 });
  gateway.addLocalCandidate(hostCandidate(addr("10.0.0.2:52625")));
  gateway.handleTimeout(0);
  const req = request({
    username: "g1uf:c1uf",
    key: shortTermKey(GATEWAY.pwd),
    priority: 5,
    useCandidate: true,
  });
  assert.ok(gateway.handlePacket(10, addr("10.0.0.1:4000"), addr("10.0.0.2:52625"), req));
  assert.equal(gateway.pollTransmit(), undefined);
  gateway.setRemoteCredentials(CLIENT);
  assert.equal(gateway.pollTimeout(), 10);
  gateway.handleTimeout(10);
  const reply = parseStun(gateway.pollTransmit()!.payload);
  assert.ok(reply.ok && reply.msg.cls === StunClass.Success);
  const events = [];
  for (let e = gateway.pollEvent(); e; e = gateway.pollEvent()) events.push(e.type);
  assert.ok(events.includes("NominatedSend"));
});

Deno.test("IceAgent: answers a controlling peer's conflicting request with 487 when it wins the tie-break", () => {
  const client = makeClient(99);
  client.addLocalCandidate(hostCandidate(addr("10.0.0.1:4000")));
  client.handleTimeout(0);
  const lowTie = request({
    username: "c1uf:g1uf",
    key: shortTermKey(CLIENT.pwd),
    priority: 5,
    controlling: 0n,
  });
  client.handlePacket(1, addr("10.0.0.2:52625"), addr("10.0.0.1:4000"), lowTie);
  const reply = parseStun(client.pollTransmit()!.payload);
  assert.ok(reply.ok);
  assert.equal(reply.msg.cls, StunClass.Error);
  assert.equal(reply.msg.errorCode()?.code, 487);
  assert.ok(reply.msg.verifyIntegrity(shortTermKey(CLIENT.pwd)));
  assert.ok(client.controlling);
});
