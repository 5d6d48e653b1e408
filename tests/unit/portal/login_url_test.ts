import assert from "node:assert/strict";
import { formEncode, LoginUrl, parseApiUrl } from "../../../src/portal/login_url.ts";
import { Secret } from "../../../src/log.ts";

const PK = "S6REkbStSNMfn8hpLkVxibjR+zz3RO/Gq40TprHJE2U=";

Deno.test("parseApiUrl() maps schemes and applies the path rules", () => {
  const cases: [string, string, string, number][] = [
    ["wss://api.firezone.dev", "wss", "/gateway/websocket", 443],
    ["https://x.example/api/", "wss", "/api/gateway/websocket", 443],
    ["https://x.example/api", "wss", "/api/gateway/websocket", 443],
    ["https://x.example/api//", "wss", "/api//gateway/websocket", 443],
    ["http://x.example:8081/?a=b", "ws", "/gateway/websocket", 8081],
    ["ws://localhost:8081", "ws", "/gateway/websocket", 8081],
  ];
  for (const [text, scheme, path, port] of cases) {
    const api = parseApiUrl(text);
    assert.equal(api.scheme, scheme, text);
    assert.equal(api.path, path, text);
    assert.equal(api.port, port, text);
  }
});

Deno.test("parseApiUrl() connects to 443 without a port or with the scheme's default port (quirk)", () => {
  assert.equal(parseApiUrl("ws://api.example").port, 443);
  assert.equal(parseApiUrl("ws://api.example:80").port, 443);
  assert.equal(parseApiUrl("http://api.example:80").port, 443);
  assert.equal(parseApiUrl("wss://api.example:443").port, 443);
  assert.equal(parseApiUrl("ws://api.example:443").port, 443);
  assert.equal(parseApiUrl("wss://api.example:8443").port, 8443);
});

Deno.test("parseApiUrl() keeps IPv6 brackets for Host and strips them for connecting", () => {
  const api = parseApiUrl("ws://[::1]:8081");
  assert.equal(api.hostname, "::1");
  assert.equal(api.hostHeader, "[::1]");
});

Deno.test("parseApiUrl() rejects other schemes, relative URLs and missing hosts", () => {
  assert.throws(
    () => parseApiUrl("ftp://x.example"),
    /scheme "ftp" is not supported, expected wss, ws, https or http/,
  );
  assert.throws(() => parseApiUrl("api.firezone.dev"), /expected an absolute URL/);
  assert.throws(() => parseApiUrl("file:///tmp/x"), /scheme "file"/);
});

Deno.test("LoginUrl puts token, external_id, name, public_key in this order, form-urlencoded", () => {
  const login = new LoginUrl(parseApiUrl("wss://api.firezone.dev"), {
    token: new Secret("tok en+/="),
    externalId: "ext id",
    name: "my gw/ä",
  });
  assert.equal(
    login.requestTarget(PK).expose(),
    "/gateway/websocket?token=tok+en%2B%2F%3D&external_id=ext+id&name=my+gw%2F%C3%A4" +
      "&public_key=S6REkbStSNMfn8hpLkVxibjR%2Bzz3RO%2FGq40TprHJE2U%3D",
  );
  assert.equal(login.url(PK).expose().split("?")[0], "wss://api.firezone.dev/gateway/websocket");
  assert.equal(String(login.url(PK)), "[redacted]");
  const redacted = login.redacted(PK);
  assert.ok(
    redacted.startsWith("wss://api.firezone.dev/gateway/websocket?token=[redacted]&external_id=ext+id"),
  );
  assert.ok(!redacted.includes("tok+en") && !redacted.includes("tok en"));
});

Deno.test("LoginUrl shows the quirk port in its URL", () => {
  const login = new LoginUrl(parseApiUrl("ws://portal.example"), {
    token: new Secret("t"),
    externalId: "e",
    name: "n",
  });
  assert.ok(login.url(PK).expose().startsWith("ws://portal.example:443/gateway/websocket?"));
});

Deno.test("formEncode() matches URLSearchParams' serializer", () => {
  const samples = ["a b", "*-._~!'()", "ü€😀", "x=y&z", "\n\t%"];
  for (const s of samples) assert.equal(formEncode(s), new URLSearchParams({ k: s }).toString().slice(2), s);
});
