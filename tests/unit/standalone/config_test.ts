import assert from "node:assert/strict";
import { ConfigError, parseStandaloneConfig } from "../../../src/standalone/config.ts";

const KEY_A = "YEocP0e2o1WT5GlvBvQzVF7h3IEQ0eAb3wO5Ch1Ch3c=";
const KEY_B = "kaK1YmVq3ZN3qE4wBb1oR7r0t0K3vB+9v6g0c1WmIHw=";
const PSK = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";

Deno.test("parseStandaloneConfig() reads a wg-quick file", () => {
  const cfg = parseStandaloneConfig(
    `# gateway
[Interface]
PrivateKey = ${KEY_A}
ListenPort = 51820
Address = 100.64.0.2/24, fd00::2/64
mtu = 1420
Name = wg-test

[Peer]
PublicKey = ${KEY_B}
PresharedKey = ${PSK}
AllowedIPs = 100.64.0.1/32, 10.1.2.3/8, ::/0
Endpoint = [2001:db8::1]:51821
PersistentKeepalive = 25
`,
    "gw.conf",
  );
  assert.equal(cfg.listenPort, 51820);
  assert.equal(cfg.mtu, 1420);
  assert.equal(cfg.name, "wg-test");
  assert.deepEqual(cfg.addresses.map((a) => `${a.ip}/${a.prefix}`), ["100.64.0.2/24", "fd00::2/64"]);
  assert.equal(cfg.peers.length, 1);
  const p = cfg.peers[0]!;
  assert.deepEqual(p.allowedIps.map((a) => `${a.ip}/${a.prefix}`), ["100.64.0.1/32", "10.0.0.0/8", "::/0"]);
  assert.deepEqual(p.endpoint, { host: "2001:db8::1", port: 51821 });
  assert.equal(p.persistentKeepalive, 25);
  assert.equal(p.presharedKey?.length, 32);
  assert.equal(cfg.privateKey.toBase64(), KEY_A);
});

Deno.test("parseStandaloneConfig() keeps host names in Endpoint for the I/O layer to resolve", () => {
  const cfg = parseStandaloneConfig(
    `[Interface]\nPrivateKey=${KEY_A}\n[Peer]\nPublicKey=${KEY_B}\nEndpoint=vpn.example.com:443\nPersistentKeepalive=off\n`,
  );
  assert.deepEqual(cfg.peers[0]!.endpoint, { host: "vpn.example.com", port: 443 });
  assert.equal(cfg.peers[0]!.persistentKeepalive, 0);
  assert.equal(cfg.name, "tun-fz0");
  assert.equal(cfg.mtu, 1280);
});

for (
  const [title, body, line, pattern] of [
    ["a bad key", `[Interface]\nPrivateKey = nope\n`, 2, /PrivateKey is not a valid WireGuard key/],
    ["a missing private key", `[Interface]\nListenPort = 1\n`, 0, /no PrivateKey/],
    ["an unknown key", `[Interface]\nPrivateKey=${KEY_A}\nFoo = 1\n`, 3, /unknown key Foo in \[Interface\]/],
    ["a hook", `[Interface]\nPrivateKey=${KEY_A}\nPostUp = iptables -A\n`, 3, /does not run commands/],
    ["a bad port", `[Interface]\nPrivateKey=${KEY_A}\nListenPort = 70000\n`, 3, /out of range/],
    [
      "a bad network",
      `[Interface]\nPrivateKey=${KEY_A}\n[Peer]\nPublicKey=${KEY_B}\nAllowedIPs = 10.0.0.0/33\n`,
      5,
      /prefix/,
    ],
    [
      "a peer without key",
      `[Interface]\nPrivateKey=${KEY_A}\n[Peer]\nAllowedIPs = 10.0.0.0/8\n`,
      3,
      /no PublicKey/,
    ],
    [
      "a duplicate peer",
      `[Interface]\nPrivateKey=${KEY_A}\n[Peer]\nPublicKey=${KEY_B}\n[Peer]\nPublicKey=${KEY_B}\n`,
      5,
      /repeats/,
    ],
    [
      "an endpoint without port",
      `[Interface]\nPrivateKey=${KEY_A}\n[Peer]\nPublicKey=${KEY_B}\nEndpoint=1.2.3.4\n`,
      5,
      /no port/,
    ],
    ["text outside sections", `PrivateKey=${KEY_A}\n`, 1, /before any/],
    ["garbage", `[Interface]\nPrivateKey=${KEY_A}\nhello\n`, 3, /expected "Key = Value"/],
  ] as const
) {
  Deno.test(`parseStandaloneConfig() names the line of ${title}`, () => {
    assert.throws(() => parseStandaloneConfig(body, "x.conf"), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.line, line);
      assert.match(e.message, pattern);
      assert.ok(e.message.startsWith(line > 0 ? `x.conf:${line}: ` : "x.conf: "));
      return true;
    });
  });
}

Deno.test("parseStandaloneConfig() refuses an MTU the data path cannot carry", () => {
  assert.throws(
    () => parseStandaloneConfig(`[Interface]\nPrivateKey=${KEY_A}\nMTU = 9000\n`, "x.conf"),
    /x\.conf:3: MTU 9000 is out of range: expected 1280 to 1997/,
  );
  assert.equal(parseStandaloneConfig(`[Interface]\nPrivateKey=${KEY_A}\nMTU = 1997\n`).mtu, 1997);
});
