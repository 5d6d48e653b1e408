import assert from "node:assert/strict";
import {
  type Candidate,
  candidatePriority,
  formatCandidate,
  hostCandidate,
  localPreference,
  parseCandidate,
  prflxPriority,
  relayCandidate,
  serverReflexiveCandidate,
} from "../../../src/ice/candidate.ts";
import { IceAgent } from "../../../src/ice/agent.ts";
import { SeededRng } from "../../../src/rng.ts";
import { addr } from "./sim_net.ts";

const fixtureDir = new URL("../../fixtures/ice/", import.meta.url);

function readFixture(name: string): { candidates: string[] } {
  const json = JSON.parse(Deno.readTextFileSync(new URL(name, fixtureDir)));
  return "payload" in json ? json.payload : json;
}

function gatewayAgent(): IceAgent {
  return new IceAgent({
    controlling: false,
    local: { ufrag: "gwuf", pwd: "gatewaypasswordgatewayp" },
    remote: { ufrag: "cluf", pwd: "clientpasswordclientpa" },
    rng: new SeededRng(7),
    now: 0,
  });
}

Deno.test("candidatePriority() gives the spec's examples", () => {
  assert.equal(candidatePriority("host", 65534), 2130706175);
  assert.equal(candidatePriority("srflx", 65534), 1694498559);
  assert.equal(candidatePriority("relay", 16382), 37748479);
  assert.equal(candidatePriority("host", 65535), 2130706431);
  assert.equal(candidatePriority("prflx", 65534), 1862270719);
  assert.throws(() => candidatePriority("host", 65536), RangeError);
});

Deno.test("localPreference() follows str0m's bands, steps and the cross-family relay penalty", () => {
  assert.equal(localPreference("host", 6, 0), 65535);
  assert.equal(localPreference("host", 4, 0), 65534);
  assert.equal(localPreference("host", 4, 1), 65532);
  assert.equal(localPreference("host", 4, 2), 65530);
  assert.equal(localPreference("prflx", 4, 0), 49150);
  assert.equal(localPreference("srflx", 6, 1), 32765);
  assert.equal(localPreference("relay", 4, 0), 16382);
  assert.equal(localPreference("relay", 4, 0, true), 15382);
  assert.equal(localPreference("relay", 6, 1, true), 15381);
  assert.equal(localPreference("host", 4, 0, true), 65534, "only relays are penalised");
});

Deno.test("addLocalCandidate() assigns host v4 2130706175 and the exact candidate string", () => {
  const agent = gatewayAgent();
  const added = agent.addLocalCandidate(hostCandidate(addr("10.0.0.1:52625")))!;
  assert.equal(added.priority, 2130706175);
  assert.equal(added.ufrag, "gwuf");
  // 2130706175 = 0x7efffeff, byte-swapped 0xfffeff7e.
  assert.match(added.foundation, /^fffeff7e[0-9a-f]{1,16}$/);
  assert.equal(
    formatCandidate(added),
    `candidate:${added.foundation} 1 udp 2130706175 10.0.0.1 52625 typ host ufrag gwuf`,
  );
});

Deno.test("addLocalCandidate() steps local preference per kind and family", () => {
  const agent = gatewayAgent();
  const v4a = agent.addLocalCandidate(hostCandidate(addr("10.0.0.1:52625")))!;
  const v6a = agent.addLocalCandidate(hostCandidate(addr("[2001:db8::1]:52625")))!;
  const v4b = agent.addLocalCandidate(hostCandidate(addr("10.0.0.2:52625")))!;
  const relay = agent.addLocalCandidate(relayCandidate(addr("203.0.113.9:50000"), addr("10.0.0.1:52625")))!;
  const relayV6OverV4 = agent.addLocalCandidate(
    relayCandidate(addr("[2001:db8::9]:50000"), addr("10.0.0.1:52625")),
  )!;
  assert.equal(v4a.priority, candidatePriority("host", 65534));
  assert.equal(v6a.priority, candidatePriority("host", 65535));
  assert.equal(v4b.priority, candidatePriority("host", 65532));
  assert.equal(relay.priority, 37748479);
  assert.equal(relayV6OverV4.priority, candidatePriority("relay", 16383 - 1000));
});

Deno.test("addLocalCandidate() rejects a duplicate of an existing candidate", () => {
  const agent = gatewayAgent();
  assert.ok(agent.addLocalCandidate(hostCandidate(addr("10.0.0.1:52625"))));
  assert.equal(agent.addLocalCandidate(hostCandidate(addr("10.0.0.1:52625"))), null);
  assert.equal(agent.localCandidates().length, 1);
});

Deno.test("server-reflexive candidates use the default preference and the fake related address", () => {
  const v4 = serverReflexiveCandidate(addr("87.121.72.60:57114"), addr("10.0.0.1:52625"));
  assert.equal(v4.priority, 1694498559);
  assert.match(v4.foundation, /^fffeff64/);
  assert.equal(
    formatCandidate(v4),
    `candidate:${v4.foundation} 1 udp 1694498559 87.121.72.60 57114 typ srflx raddr 0.0.0.0 rport 0`,
  );
  const v6 = serverReflexiveCandidate(addr("[2001:db8::5]:40000"), addr("[fd00::5]:52625"));
  assert.equal(v6.priority, candidatePriority("srflx", 65535));
  assert.match(formatCandidate(v6), / 2001:db8::5 40000 typ srflx raddr :: rport 0$/);
});

Deno.test("a relay candidate added to the agent carries raddr 0.0.0.0 rport 0 and the ufrag", () => {
  const agent = gatewayAgent();
  const relay = agent.addLocalCandidate(relayCandidate(addr("203.0.113.9:50000"), addr("10.0.0.1:52625")))!;
  assert.equal(
    formatCandidate(relay),
    `candidate:${relay.foundation} 1 udp 37748479 203.0.113.9 50000 typ relay raddr 0.0.0.0 rport 0 ufrag gwuf`,
  );
  assert.deepEqual(relay.base, addr("203.0.113.9:50000"), "checks are sent from the relayed address");
});

Deno.test("prflxPriority() keeps the local preference with type preference 110", () => {
  const agent = gatewayAgent();
  const host = agent.addLocalCandidate(hostCandidate(addr("10.0.0.1:52625")))!;
  assert.equal(prflxPriority(host), candidatePriority("prflx", 65534));
  const relay = agent.addLocalCandidate(relayCandidate(addr("203.0.113.9:50000"), addr("10.0.0.1:52625")))!;
  assert.equal(prflxPriority(relay), candidatePriority("prflx", 16382));
});

Deno.test("parseCandidate() round-trips the gateway fixture's valid candidate exactly", () => {
  const { candidates } = readFixture("gateway_ingress_ice_candidates_1.json");
  const parsed = candidates.map(parseCandidate);
  assert.deepEqual(parsed.map((c) => c !== null), [false, false, false, true]);
  const c = parsed[3]!;
  assert.equal(c.kind, "srflx");
  assert.equal(c.priority, 1694498559);
  assert.equal(c.foundation, "fffeff6435be70ddbf995982");
  assert.deepEqual(c.addr, addr("87.121.72.60:57114"));
  assert.deepEqual(c.raddr, addr("0.0.0.0:0"));
  assert.equal(formatCandidate(c), candidates[3]);
});

Deno.test("parseCandidate() accepts the client fixtures' candidates", () => {
  const relay = readFixture("client_ingress_ice_candidates_1.json").candidates[0]!;
  const c = parseCandidate(relay)!;
  assert.equal(c.kind, "relay");
  assert.equal(c.priority, 50331391);
  assert.deepEqual(c.addr, addr("35.244.108.190:53909"));
  assert.equal(c.raddr, undefined);
  assert.equal(formatCandidate(c), relay);
  const mixed = readFixture("client_ingress_ice_candidates_2.json").candidates.map(parseCandidate);
  assert.equal(mixed.filter((x) => x !== null).length, 1);
});

Deno.test("parseCandidate() accepts prefixes, IPv6, ufrag and the optional extensions", () => {
  const base = "1 1 udp 2130706431 2001:DB8::1 52625 typ host";
  for (const text of [base, `candidate:${base}`, `a=candidate:${base}`, `  candidate:${base}\r\n`]) {
    const c = parseCandidate(text)!;
    assert.ok(c, text);
    assert.deepEqual(c.addr, addr("[2001:db8::1]:52625"));
    assert.equal(c.component, 1);
  }
  const ext = parseCandidate(
    "candidate:387183333 1 UDP 1686052607 113.185.55.72 31267 typ srflx raddr 10.217.229.219 rport 50028 " +
      "generation 0 network-id 1 network-cost 900 ufrag abcd",
  )!;
  assert.equal(ext.kind, "srflx");
  assert.deepEqual(ext.raddr, addr("10.217.229.219:50028"));
  assert.equal(ext.ufrag, "abcd");
  assert.ok(parseCandidate("candidate:1 1 udp 100 1.2.3.4 5 typ host tcptype passive"));
  assert.equal(
    formatCandidate(
      parseCandidate("candidate:abc 1 udp 37748479 1.2.3.4 5000 typ relay raddr :: rport 0 ufrag u")!,
    ),
    "candidate:abc 1 udp 37748479 1.2.3.4 5000 typ relay raddr :: rport 0 ufrag u",
  );
});

Deno.test("parseCandidate() rejects other components, transports and malformed input", () => {
  const bad = [
    "candidate:1 2 udp 2130706431 1.2.3.4 5000 typ host",
    "candidate:1 1 tcp 2130706431 1.2.3.4 5000 typ host",
    "candidate:1 1 udp 2130706431 abcd.local 5000 typ host",
    "candidate:1 1 udp 2130706431 1.2.3.4 70000 typ host",
    "candidate:1 1 udp 2130706431 1.2.3.4 5000 typ bogus",
    "candidate:1 1 udp x 1.2.3.4 5000 typ host",
    "candidate:1 1 udp 2130706431 1.2.3.4 5000 type host",
    "candidate:1 1 udp 2130706431 1.2.3.4 5000 typ host raddr 1.2.3.4",
    "candidate:1 1 udp 2130706431 1.2.3.4 5000 typ host frobnicate 1",
    "candidate:1 1 udp 2130706431 1.2.3.4 5000 typ host ufrag a ufrag b",
    "candidate:fo!o 1 udp 2130706431 1.2.3.4 5000 typ host",
    "candidate:1 1 udp 2130706431 1.2.3.4",
    "",
    "foo",
  ];
  for (const text of bad) assert.equal(parseCandidate(text), null, text);
});

Deno.test("formatCandidate() and parseCandidate() round-trip agent-made candidates", () => {
  const agent = gatewayAgent();
  const made: Candidate[] = [
    agent.addLocalCandidate(hostCandidate(addr("10.0.0.1:52625")))!,
    agent.addLocalCandidate(hostCandidate(addr("[fd00::1]:52625")))!,
    agent.addLocalCandidate(relayCandidate(addr("[2001:db8::9]:50000"), addr("[fd00::1]:52625")))!,
    serverReflexiveCandidate(addr("198.51.100.4:61000"), addr("10.0.0.1:52625")),
  ];
  for (const c of made) {
    const text = formatCandidate(c);
    const back = parseCandidate(text)!;
    assert.equal(formatCandidate(back), text);
    assert.equal(back.priority, c.priority);
    assert.equal(back.foundation, c.foundation);
    assert.ok(back.foundation.length <= 32);
  }
});
