import assert from "node:assert/strict";
import { parseHosts } from "../../../src/dns/hosts.ts";

const HOSTS = [
  "127.0.0.1\tlocalhost",
  "::1     localhost ip6-localhost ip6-loopback",
  "# 10.9.9.9 commented.example",
  "10.0.0.5  db.internal.example  db   # the database",
  "10.0.0.6  DB.Internal.Example.",
  "2001:db8::5 db.internal.example",
  "fe80::9%eth0 linklocal.example",
  "not-an-ip broken.example",
  "10.0.0.7",
  "",
].join("\n");

Deno.test("parseHosts() maps names to addresses per family in file order", () => {
  const t = parseHosts(HOSTS);
  assert.deepEqual(t.lookup("db.internal.example", 4), ["10.0.0.5", "10.0.0.6"]);
  assert.deepEqual(t.lookup("db.internal.example", 6), ["2001:db8::5"]);
  assert.deepEqual(t.lookup("db", 4), ["10.0.0.5"]);
  assert.deepEqual(t.lookup("localhost", 4), ["127.0.0.1"]);
  assert.deepEqual(t.lookup("ip6-localhost", 6), ["::1"]);
  assert.deepEqual(t.lookup("ip6-localhost", 4), []);
});

Deno.test("parseHosts() compares names case-insensitively and ignores a trailing dot", () => {
  const t = parseHosts(HOSTS);
  assert.deepEqual(t.lookup("DB.INTERNAL.EXAMPLE.", 4), ["10.0.0.5", "10.0.0.6"]);
});

Deno.test("parseHosts() skips comments, bad addresses and lines without names; drops zone ids", () => {
  const t = parseHosts(HOSTS);
  assert.deepEqual(t.lookup("commented.example", 4), []);
  assert.deepEqual(t.lookup("broken.example", 4), []);
  assert.deepEqual(t.lookup("linklocal.example", 6), ["fe80::9"]);
  assert.deepEqual(t.lookup("the", 4), []);
});
