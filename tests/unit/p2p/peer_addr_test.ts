import assert from "node:assert/strict";
import { PeerAddrView } from "../../../src/p2p/peer_addr.ts";
import { socketAddr } from "../../../src/wire/ip_addr.ts";

Deno.test("PeerAddrView.setV4() and setBytes() describe the same address", () => {
  const a = new PeerAddrView().setV4(0xc0000201, 3478);
  const b = new PeerAddrView().setBytes(Uint8Array.of(9, 192, 0, 2, 1), 1, 4, 3478);

  assert.ok(a.equals(b));
  assert.equal(a.ipv4, 0xc0000201);
  assert.deepEqual(a.toSocketAddr(), socketAddr("192.0.2.1", 3478));
  assert.equal(b.toString(), "192.0.2.1:3478");
});

Deno.test("PeerAddrView.equals() compares family, every address word and the port", () => {
  const v6 = PeerAddrView.fromSocketAddr(socketAddr("2001:db8::1", 3478));
  const otherPort = PeerAddrView.fromSocketAddr(socketAddr("2001:db8::1", 3479));
  const otherWord = PeerAddrView.fromSocketAddr(socketAddr("2001:db8::2", 3478));
  const same = new PeerAddrView().setBytes(v6.bytes, 0, 6, 3478);

  assert.ok(v6.equals(same));
  assert.ok(!v6.equals(otherPort));
  assert.ok(!v6.equals(otherWord));
  assert.ok(!new PeerAddrView().setV4(0, 0).equals(PeerAddrView.fromSocketAddr(socketAddr("::", 0))));
  assert.equal(v6.toString(), "[2001:db8::1]:3478");
});

Deno.test("PeerAddrView.toSocketAddr() caches until the view changes", () => {
  const v = new PeerAddrView().setV4(0x0a000001, 1);
  const first = v.toSocketAddr();
  assert.equal(v.toSocketAddr(), first);

  v.setV4(0x0a000002, 1);
  assert.notEqual(v.toSocketAddr(), first);
  assert.equal(v.toSocketAddr().ip, "10.0.0.2");
  const given = socketAddr("10.0.0.3", 7);
  assert.equal(v.setSocketAddr(given).toSocketAddr(), given, "keeps the object it was built from");
  assert.equal(new PeerAddrView().copyFrom(v).toSocketAddr(), given);
});

Deno.test("PeerAddrView.setSocketAddr() rejects an invalid address", () => {
  assert.throws(() => new PeerAddrView().setSocketAddr({ family: 4, ip: "not-an-ip", port: 1 }), TypeError);
});
