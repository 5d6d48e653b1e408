/**
 * The resource host's services for the end-to-end test: a UDP echo server, a TCP listener, and a
 * DNS server (the gateway's nameserver).
 *
 * `deno run -A resource_server.ts <udp port> <tcp port> <dns ip> <dns answer ip>`: echoes every UDP
 * datagram back to its sender, accepts TCP connections (and closes them), and answers every DNS
 * query on `<dns ip>:53` (UDP and TCP) with NOERROR: one A record `<dns answer ip>` for A questions,
 * no records otherwise. Prints `{"event":"ready"}`, then one line per datagram echoed
 * (`{"event":"udp","from":..}`), per TCP connection accepted and per DNS query (`{"event":"dns",..}`).
 *
 * @module
 */

import dgram from "node:dgram";
import { DnsType, parseQuestions } from "../../../src/dns/message.ts";
import { buildAResponse } from "../../_helpers/dns_messages.ts";
import { FakeDnsServer } from "../../_helpers/fake_dns_server.ts";

const udpPort = Number(Deno.args[0] ?? "7777");
const tcpPort = Number(Deno.args[1] ?? "8080");
const dnsIp = Deno.args[2] ?? "127.0.0.1";
const dnsAnswer = Deno.args[3] ?? "127.0.0.1";

function emit(event: Record<string, unknown>): void {
  Deno.stdout.writeSync(new TextEncoder().encode(`${JSON.stringify(event)}\n`));
}

const udp = dgram.createSocket({ type: "udp4" });
udp.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
  emit({ event: "udp", from: `${rinfo.address}:${rinfo.port}`, len: msg.length });
  udp.send(msg, rinfo.port, rinfo.address);
});
await new Promise<void>((resolve) => udp.bind(udpPort, "0.0.0.0", () => resolve()));

const dns = await FakeDnsServer.start(dnsIp, 53, (query, transport) => {
  const q = parseQuestions(query)?.questions[0];
  emit({ event: "dns", transport, name: q?.name ?? null, type: q?.type ?? null });
  return buildAResponse(query, q?.type === DnsType.A ? [dnsAnswer] : []);
});

const listener = Deno.listen({ hostname: "0.0.0.0", port: tcpPort });
Deno.addSignalListener("SIGTERM", () => {
  void dns.close();
  udp.close();
  listener.close();
  Deno.exit(0);
});
emit({ event: "ready" });
for await (const conn of listener) {
  emit({ event: "tcp", from: `${(conn.remoteAddr as Deno.NetAddr).hostname}` });
  conn.close();
}
