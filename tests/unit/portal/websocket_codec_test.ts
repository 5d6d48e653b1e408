import assert from "node:assert/strict";
import {
  acceptKeyFor,
  buildUpgradeRequest,
  checkHandshake,
  closePayload,
  encodeClientFrame,
  FrameDecoder,
  Opcode,
  parseResponseHead,
} from "../../../src/portal/websocket_codec.ts";

const enc = new TextEncoder();

Deno.test("acceptKeyFor() matches RFC 6455 §1.3's example", () => {
  assert.equal(acceptKeyFor("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});

Deno.test("buildUpgradeRequest() sends upstream's headers in order and refuses line breaks", () => {
  assert.equal(
    buildUpgradeRequest({
      target: "/gateway/websocket?token=t",
      host: "api.firezone.dev",
      key: "a2V5",
      userAgent: "UA",
    }),
    "GET /gateway/websocket?token=t HTTP/1.1\r\nHost: api.firezone.dev\r\nConnection: Upgrade\r\n" +
      "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: a2V5\r\nUser-Agent: UA\r\n\r\n",
  );
  assert.throws(
    () => buildUpgradeRequest({ target: "/", host: "h", key: "k", userAgent: "a\r\nb" }),
    /line break/,
  );
});

Deno.test("parseResponseHead() parses status and headers and waits for the blank line", () => {
  assert.equal(parseResponseHead(enc.encode("HTTP/1.1 101 Switching")), null);
  const text = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nX-A: 1\r\nx-a: 2\r\n\r\nrest";
  const head = parseResponseHead(enc.encode(text))!;
  assert.equal(head.status, 101);
  assert.equal(head.headers.get("x-a"), "1, 2");
  assert.equal(head.length, text.length - 4);
  assert.equal(checkHandshake(head, "dGhlIHNhbXBsZSBub25jZQ=="), null);
  assert.match(checkHandshake(head, "b3RoZXI=")!, /Sec-WebSocket-Accept/);
  assert.throws(() => parseResponseHead(enc.encode("SMTP ready\r\n\r\n")), /Malformed HTTP status line/);
});

Deno.test("encodeClientFrame() masks the payload and uses the 7/16/64-bit length forms", () => {
  const mask = new Uint8Array([1, 2, 3, 4]);
  const small = encodeClientFrame(Opcode.Text, enc.encode("Hi"), mask);
  assert.deepEqual([...small], [0x81, 0x82, 1, 2, 3, 4, 0x48 ^ 1, 0x69 ^ 2]);
  const mid = encodeClientFrame(Opcode.Binary, new Uint8Array(300), mask);
  assert.deepEqual([...mid.subarray(0, 4)], [0x82, 0xfe, 0x01, 0x2c]);
  assert.equal(mid.length, 4 + 4 + 300);
  const big = encodeClientFrame(Opcode.Binary, new Uint8Array(70_000), mask);
  assert.deepEqual([...big.subarray(0, 10)], [0x82, 0xff, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]);
});

Deno.test("FrameDecoder reassembles split and fragmented messages and parses control frames", () => {
  const d = new FrameDecoder();
  const text = [0x81, 0x05, ...enc.encode("hello")];
  assert.deepEqual(d.push(new Uint8Array(text.slice(0, 3))), []);
  assert.deepEqual(d.push(new Uint8Array(text.slice(3))), [{ type: "text", data: "hello" }]);
  const frag = [0x01, 0x02, ...enc.encode("ab"), 0x89, 0x01, 0x7a, 0x80, 0x01, ...enc.encode("c")];
  assert.deepEqual(d.push(new Uint8Array(frag)), [
    { type: "ping", data: new Uint8Array([0x7a]) },
    { type: "text", data: "abc" },
  ]);
  assert.deepEqual(d.push(new Uint8Array([0x88, 0x04, ...closePayload(4000, "no")])), [
    { type: "close", code: 4000, reason: "no" },
  ]);
  const long = new Uint8Array(4 + 200);
  long.set([0x82, 126, 0, 200]);
  assert.equal(d.push(long)[0]!.type, "binary");
});

Deno.test("FrameDecoder rejects masked server frames, bad UTF-8 and oversized control frames", () => {
  assert.throws(
    () => new FrameDecoder().push(new Uint8Array([0x81, 0x81, 0, 0, 0, 0, 0x41])),
    /must not be masked/,
  );
  assert.throws(() => new FrameDecoder().push(new Uint8Array([0x81, 0x01, 0xff])), /UTF-8/);
  assert.throws(() => new FrameDecoder().push(new Uint8Array([0x09, 0x00])), /control frame/);
  assert.throws(() => new FrameDecoder().push(new Uint8Array([0x80, 0x00])), /continuation/);
});
