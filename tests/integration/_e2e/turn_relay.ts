/**
 * A TURN relay for the end-to-end test: the sans-IO {@link SimTurnServer} ("firezone" dialect:
 * long-term credentials, realm `firezone`, ChannelData only) behind real UDP sockets.
 *
 * `deno run -A turn_relay.ts <ip> <username> <password>`: listens on `<ip>:3478`; every allocation
 * gets a real socket on `<ip>:<relayed port>` (ports from 49152). Prints one JSON line per event on
 * stdout: `{"event":"ready"}`, `{"event":"allocation","client":..,"relay":..}`, and on SIGTERM
 * `{"event":"stats",...}` before exiting 0.
 *
 * @module
 */

import dgram from "node:dgram";
import { SeededRng } from "../../../src/rng.ts";
import { formatSocketAddr, type SocketAddr, socketAddr } from "../../../src/wire/ip_addr.ts";
import { SimTurnServer } from "../../_helpers/sim_turn_server.ts";

const TURN_PORT = 3478;
const [ip, username, password] = Deno.args;
if (ip === undefined || username === undefined || password === undefined) {
  throw new TypeError("usage: turn_relay.ts <ip> <username> <password>");
}

const listen = socketAddr(ip, TURN_PORT);
const server = new SimTurnServer({
  listen: { v4: listen },
  users: { [username]: password },
  rng: new SeededRng(Deno.pid),
  software: "fz-e2e-relay",
});
const sockets = new Map<number, dgram.Socket>();
const known = new Set<string>();

function emit(event: Record<string, unknown>): void {
  Deno.stdout.writeSync(new TextEncoder().encode(`${JSON.stringify(event)}\n`));
}

function now(): number {
  return Math.floor(performance.now());
}

function flush(): void {
  for (let t = server.pollTransmit(); t !== undefined; t = server.pollTransmit()) {
    const socket = sockets.get(t.source.port);
    if (socket === undefined) continue;
    socket.send(t.payload, t.destination.port, t.destination.ip);
  }
}

function open(port: number, onMessage: (from: SocketAddr, bytes: Uint8Array) => void): Promise<void> {
  const socket = dgram.createSocket({ type: "udp4" });
  sockets.set(port, socket);
  socket.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
    onMessage(socketAddr(rinfo.address, rinfo.port), new Uint8Array(msg));
    flush();
  });
  return new Promise((resolve) => socket.bind(port, ip, () => resolve()));
}

/** Binds the relayed port of the client's allocation when it is new. */
function bindRelayed(client: SocketAddr): void {
  const relay = server.allocationOf(client)?.relay4;
  if (!relay || sockets.has(relay.port)) return;
  const key = formatSocketAddr(relay);
  if (!known.has(key)) {
    known.add(key);
    emit({ event: "allocation", client: formatSocketAddr(client), relay: key });
  }
  void open(relay.port, (from, bytes) => server.handlePeerInput(from, relay, bytes, now()));
}

await open(TURN_PORT, (from, bytes) => {
  server.handleClientInput(from, listen, bytes, now());
  bindRelayed(from);
});
const timer = setInterval(() => {
  server.handleTimeout(now());
  flush();
}, 1_000);

Deno.addSignalListener("SIGTERM", () => {
  clearInterval(timer);
  emit({
    event: "stats",
    allocations: server.allocationCount,
    relayedToPeers: server.relayedToPeers,
    relayedToClients: server.relayedToClients,
    errors: server.errorsSent,
  });
  for (const s of sockets.values()) s.close();
  Deno.exit(0);
});
emit({ event: "ready", listen: formatSocketAddr(listen) });
