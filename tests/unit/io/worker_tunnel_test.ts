/**
 * Regression (review finding): a control message that does not fit the 1 MiB mailbox is dropped with a WARN, but
 * `WorkerTunnel.#call` still waits for its reply forever. For `init` (one entry per authorized
 * client/resource pair; ~9 000 pairs exceed 1 MiB) the portal work chain in GatewayApp awaits it,
 * so every later portal message is stuck behind it while heartbeats keep the channel "healthy".
 */
import assert from "node:assert/strict";
import { createMailboxBuffer, Mailbox } from "../../../src/io/mailbox.ts";
import type { PacketWorkerHost } from "../../../src/io/worker_host.ts";
import { WorkerTunnel } from "../../../src/io/worker_tunnel.ts";
import type { DnsForwarder } from "../../../src/io/dns_forwarder.ts";
import type { DnsResolver } from "../../../src/io/dns_resolver.ts";
import type { InitMessage } from "../../../src/portal/messages.ts";
import type { WorkerControl } from "../../../src/io/worker_protocol.ts";

function bigInit(pairs: number): InitMessage {
  const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
  const authorizations = [];
  for (let i = 0; i < pairs; i++) {
    authorizations.push({
      clientId: uuid(i),
      resourceId: uuid(1_000_000 + i),
      expiresAtUtcMs: 1_900_000_000_000,
    });
  }
  return {
    interface: { ipv4: "100.64.0.1", ipv6: "fd00:2021:1111::1" },
    config: { ipv4MasqueradeEnabled: true, ipv6MasqueradeEnabled: true },
    accountSlug: "acme",
    relays: [],
    authorizations,
  } as unknown as InitMessage;
}

Deno.test("WorkerTunnel.init() fails (instead of hanging) when the message does not fit the mailbox", async () => {
  const mailbox = new Mailbox(createMailboxBuffer(1 << 20)); // a small ring to force the overflow
  let refused = 0;
  const host = {
    stats: null,
    onEvent() {},
    onExit() {},
    send(message: WorkerControl) {
      const ok = mailbox.send(message);
      if (!ok) refused++;
      return ok;
    },
    async stop() {},
  } as unknown as PacketWorkerHost;
  const tunnel = new WorkerTunnel(host, {} as DnsResolver, {} as DnsForwarder);

  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    tunnel.init(bigInit(9_000)).then(() => "resolved", () => "rejected"),
    new Promise<string>((r) => timer = setTimeout(() => r("still pending"), 300)),
  ]);
  clearTimeout(timer);
  assert.equal(refused, 1, "the 9 000-pair init does not fit a 1 MiB mailbox");
  assert.equal(outcome, "rejected", "a refused control message must fail its call, not hang forever");
});

Deno.test("WorkerTunnel reports a fatal error when a fire-and-forget portal message cannot be delivered", () => {
  const host = {
    stats: null,
    onEvent() {},
    onExit() {},
    send: () => false,
    async stop() {},
  } as unknown as PacketWorkerHost;
  const tunnel = new WorkerTunnel(host, {} as DnsResolver, {} as DnsForwarder);
  const events: unknown[] = [];
  tunnel.setEventListener((e) => events.push(e));
  tunnel.rejectAccess({ clientId: "c", resourceId: "r" });
  assert.equal(events.length, 1);
  assert.match(
    (events[0] as { type: string; error: string }).error,
    /could not take the portal message "rejectAccess"/,
  );
});
