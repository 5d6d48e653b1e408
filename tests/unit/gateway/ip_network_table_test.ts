import assert from "node:assert/strict";
import fc from "fast-check";
import {
  IpNetworkTable,
  makeNetwork,
  networkContainsNetwork,
  parseIpNetwork,
} from "../../../src/gateway/ip_network_table.ts";
import { ip } from "./_packets.ts";

Deno.test("IpNetworkTable.longestMatch4() picks the longest containing network", () => {
  const t = new IpNetworkTable<string>();
  t.insert(net("10.0.0.0/8"), "a");
  t.insert(net("10.1.0.0/16"), "b");
  t.insert(net("10.1.2.0/24"), "c");
  t.insert(net("0.0.0.0/0"), "default");

  assert.equal(t.longestMatch4(u32("10.1.2.3")), "c");
  assert.equal(t.longestMatch4(u32("10.1.3.3")), "b");
  assert.equal(t.longestMatch4(u32("10.200.0.1")), "a");
  assert.equal(t.longestMatch4(u32("192.168.0.1")), "default");
  assert.equal(t.size, 4);
});

Deno.test("IpNetworkTable.longestMatch6() picks the longest containing network", () => {
  const t = new IpNetworkTable<string>();
  t.insert(net("fd00:2021:1111::/107"), "tunnel");
  t.insert(net("fd00:2021:1111:8000::/107"), "dns");
  t.insert(net("fd00:2021:1111:8000::5/128"), "host");
  t.insert(net("2001:db8::/32"), "doc");

  assert.equal(t.longestMatch6(ip("fd00:2021:1111:8000::5"), 0), "host");
  assert.equal(t.longestMatch6(ip("fd00:2021:1111:8000::6"), 0), "dns");
  assert.equal(t.longestMatch6(ip("fd00:2021:1111::1"), 0), "tunnel");
  assert.equal(t.longestMatch6(ip("2001:db8:ffff::1"), 0), "doc");
  assert.equal(t.longestMatch6(ip("2001:db9::1"), 0), undefined);
});

Deno.test("IpNetworkTable.insert() replaces the value of an existing network (host bits ignored)", () => {
  const t = new IpNetworkTable<number>();
  t.insert(net("10.0.0.7/24"), 1);
  t.insert(net("10.0.0.0/24"), 2);
  t.insert(net("2001:db8::1/64"), 3);
  t.insert(net("2001:db8::/64"), 4);

  assert.equal(t.size, 2);
  assert.equal(t.exactMatch(net("10.0.0.0/24")), 2);
  assert.equal(t.exactMatch(net("2001:db8::/64")), 4);
  assert.equal(t.exactMatch(net("10.0.0.0/25")), undefined);
});

Deno.test("IpNetworkTable does not mix families and handles /0 and /32 edges", () => {
  const t = new IpNetworkTable<string>();
  t.insert(net("0.0.0.0/0"), "v4 default");
  t.insert(net("255.255.255.255/32"), "bcast");

  assert.equal(t.longestMatch6(ip("::1"), 0), undefined);
  assert.equal(t.longestMatch4(0xffffffff), "bcast");
  assert.equal(t.longestMatch4(0xfffffffe), "v4 default");
  t.clear();
  assert.equal(t.longestMatch4(0), undefined);
  assert.equal(t.size, 0);
});

Deno.test("networkContainsNetwork() follows prefix containment", () => {
  assert.equal(networkContainsNetwork(net("10.0.0.0/16"), net("10.0.5.0/24")), true);
  assert.equal(networkContainsNetwork(net("10.0.5.0/24"), net("10.0.0.0/16")), false);
  assert.equal(networkContainsNetwork(net("10.0.0.0/24"), net("10.0.0.0/24")), true);
  assert.equal(networkContainsNetwork(net("10.0.1.0/24"), net("10.0.0.0/24")), false);
  assert.equal(networkContainsNetwork(net("0.0.0.0/0"), net("1.2.3.4/32")), true);
  assert.equal(networkContainsNetwork(net("::/0"), net("1.2.3.4/32")), false);
  assert.equal(networkContainsNetwork(net("2001:db8::/33"), net("2001:db8:7fff::/48")), true);
  assert.equal(networkContainsNetwork(net("2001:db8::/33"), net("2001:db8:8000::/48")), false);
});

Deno.test("parseIpNetwork() refuses bad prefixes and addresses", () => {
  assert.equal(parseIpNetwork("10.0.0.0/33"), null);
  assert.equal(parseIpNetwork("::/129"), null);
  assert.equal(parseIpNetwork("10.0.0/8"), null);
  assert.equal(parseIpNetwork("10.0.0.0/x"), null);
  assert.equal(parseIpNetwork("10.0.0.1")!.prefix, 32);
  assert.deepEqual(Array.from(parseIpNetwork("10.255.255.255/9")!.bytes), [10, 128, 0, 0]);
});

Deno.test("IpNetworkTable.longestMatch6() agrees with a linear scan (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 })), {
        maxLength: 20,
      }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.array(fc.integer({ min: 0, max: 19 }), { maxLength: 5 }),
      (entries, probe, copyFrom) => {
        const nets = entries.map(([b, p]) => makeNetwork(b, p));
        // Make some probes fall inside inserted networks.
        const target = probe.slice();
        for (const i of copyFrom) if (nets[i]) target.set(nets[i]!.bytes.subarray(0, 8), 0);
        const t = new IpNetworkTable<number>();
        nets.forEach((n, i) => t.insert(n, i));
        const host = makeNetwork(target, 128);
        let best = -1;
        let bestPrefix = -1;
        nets.forEach((n, i) => {
          // Later inserts of the same network replace earlier ones.
          if (networkContainsNetwork(n, host) && n.prefix >= bestPrefix) {
            best = i;
            bestPrefix = n.prefix;
          }
        });
        const got = t.longestMatch6(target, 0);
        return best < 0 ? got === undefined : got === best;
      },
    ),
  );
});

function net(text: string) {
  const n = parseIpNetwork(text);
  if (!n) throw new Error(`bad network ${text}`);
  return n;
}

function u32(text: string): number {
  const b = ip(text);
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}
