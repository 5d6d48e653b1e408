import assert from "node:assert/strict";
import { createMailboxBuffer, Mailbox } from "../../../src/io/mailbox.ts";
import { Secret } from "../../../src/log.ts";

Deno.test("Mailbox delivers messages in order across the wrap-around", () => {
  const buf = createMailboxBuffer(64);
  const producer = new Mailbox(buf);
  const consumer = new Mailbox(buf);
  const seen: unknown[] = [];
  for (let round = 0; round < 20; round++) {
    assert.equal(producer.send({ n: round, s: "x".repeat(round % 7) }), true);
    assert.equal(producer.send([round]), true);
    seen.push(...consumer.drain());
  }
  assert.equal(seen.length, 40);
  for (let round = 0; round < 20; round++) {
    assert.deepEqual(seen[2 * round], { n: round, s: "x".repeat(round % 7) });
    assert.deepEqual(seen[2 * round + 1], [round]);
  }
});

Deno.test("Mailbox refuses a message that does not fit and counts it", () => {
  const buf = createMailboxBuffer(32);
  const mb = new Mailbox(buf);
  assert.equal(mb.send("a".repeat(40)), false);
  assert.equal(mb.dropped, 1);
  assert.equal(mb.send("ok"), true);
  assert.deepEqual(new Mailbox(buf).drain(), ["ok"]);
});

Deno.test("Mailbox works between threads", async () => {
  const buf = createMailboxBuffer(256);
  const code = `
    import { Mailbox } from ${JSON.stringify(new URL("../../../src/io/mailbox.ts", import.meta.url).href)};
    self.onmessage = (e) => {
      const mb = new Mailbox(e.data);
      let got = [];
      while (got.length < 100) got = got.concat(mb.drain());
      self.postMessage(got);
    };`;
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  const result = new Promise<unknown[]>((resolve) => worker.onmessage = (e) => resolve(e.data));
  worker.postMessage(buf);
  const mb = new Mailbox(buf);
  for (let i = 0; i < 100;) if (mb.send(i)) i++;
  const got = await result;
  worker.terminate();
  URL.revokeObjectURL(url);
  assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
});

Deno.test("Mailbox carries keys and secrets as their own types", () => {
  const buf = createMailboxBuffer(4096);
  const key = new Uint8Array([1, 2, 3, 250]);
  new Mailbox(buf).send({ key, psk: new Secret(new Uint8Array([9, 9])), pwd: new Secret("hunter2"), n: 1 });
  const [m] = new Mailbox(buf).drain() as [
    { key: Uint8Array; psk: Secret<Uint8Array>; pwd: Secret<string>; n: number },
  ];
  assert.deepEqual(m.key, key);
  assert.ok(m.psk instanceof Secret && m.pwd instanceof Secret);
  assert.deepEqual(m.psk.expose(), new Uint8Array([9, 9]));
  assert.equal(m.pwd.expose(), "hunter2");
  assert.equal(String(m.pwd), "[redacted]");
  assert.equal(m.n, 1);
});
