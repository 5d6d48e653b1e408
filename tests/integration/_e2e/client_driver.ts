/**
 * A Firezone client for the end-to-end test, built from our own {@link P2pNode} in the "client"
 * role (ICE controlling, nominates, initiates the WireGuard handshake) on one real UDP socket.
 *
 * `deno run -A client_driver.ts '<config JSON>'` (see {@link DriverConfig}), run inside the client's
 * network namespace. It adds the relay, creates the connection to the gateway at once, and then
 * speaks JSON lines:
 *
 * - stdin (commands): `{"cmd":"candidates","candidates":[..]}` (the gateway's, as the portal relays
 *   them), `{"cmd":"send","packet":"<base64 IP packet>"}` (encrypted to the gateway),
 *   `{"cmd":"info"}`.
 * - stdout (events): `ready`, `candidate` (ours, for the portal to push to the gateway),
 *   `established`, `failed`, `closed`, `packet` (a decrypted IP packet, base64), `sent` (the
 *   result of a `send`), `info` (the nominated socket).
 *
 * Logs (RUST_LOG syntax) go to stderr.
 *
 * @module
 */

import dgram from "node:dgram";
import { createNobleBackend } from "../../../src/crypto/mod.ts";
import { CryptoRng } from "../../../src/io/crypto_rng.ts";
import { createStdoutSink } from "../../../src/io/log_sink.ts";
import { configureLogging } from "../../../src/log.ts";
import { buildLogFilter } from "../../../src/log_filter.ts";
import { P2pNode } from "../../../src/p2p/node.ts";
import { PeerAddrView } from "../../../src/p2p/peer_addr.ts";
import {
  ENCAPSULATE_HEADROOM,
  ENCAPSULATE_TAILROOM,
  NodeOut,
  P2P_DROP_NAMES,
  P2pResult,
} from "../../../src/p2p/transmit.ts";
import { formatSocketAddr, parseSocketAddr, socketAddr } from "../../../src/wire/ip_addr.ts";
import { anchoredWallClock } from "../../../src/wireguard/handshake.ts";

/** The driver's command-line configuration (one JSON argument). */
export interface DriverConfig {
  /** Local IP to bind (the client namespace's address); the port is chosen by the kernel. */
  readonly bindIp: string;
  /** Our X25519 private key (base64). */
  readonly privateKey: string;
  readonly gatewayId: string;
  /** The gateway's public key (base64), as sent in the login URL. */
  readonly gatewayPublicKey: string;
  /** The WireGuard PSK (base64). */
  readonly presharedKey: string;
  readonly clientIce: { readonly ufrag: string; readonly pwd: string };
  readonly gatewayIce: { readonly ufrag: string; readonly pwd: string };
  readonly relay: {
    readonly id: string;
    readonly addr: string;
    readonly username: string;
    readonly password: string;
  };
}

const config = JSON.parse(Deno.args[0] ?? "{}") as DriverConfig;
const encoder = new TextEncoder();
const stderrWrite = (bytes: Uint8Array) => {
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
};
configureLogging({
  sink: createStdoutSink({ format: "human", ansi: false, write: stderrWrite }),
  filter: buildLogFilter({ RUST_LOG: Deno.env.get("RUST_LOG") ?? "info" }).filter,
});

function emit(event: Record<string, unknown>): void {
  const bytes = encoder.encode(`${JSON.stringify(event)}\n`);
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

function b64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function toB64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function now(): number {
  return Math.floor(performance.now());
}

const relayAddr = parseSocketAddr(config.relay.addr);
if (relayAddr === null) throw new TypeError(`bad relay address ${config.relay.addr}`);

const socket = dgram.createSocket({ type: "udp4" });
await new Promise<void>((resolve) => socket.bind(0, config.bindIp, () => resolve()));
const localAddr = socketAddr(config.bindIp, socket.address().port);
const local = PeerAddrView.fromSocketAddr(localAddr);
const from = new PeerAddrView();
const out = new NodeOut();
const rx = new Uint8Array(2048);
const tx = new Uint8Array(2048);

const start = now();
const node = new P2pNode({
  role: "client",
  privateKey: b64(config.privateKey),
  backend: createNobleBackend(),
  rng: new CryptoRng(),
  now: start,
  wallClock: anchoredWallClock(Date.now(), start),
});
const cid = config.gatewayId;

function sendTo(payload: Uint8Array, ip: string, port: number): void {
  socket.send(payload, port, ip);
}

let timer: ReturnType<typeof setTimeout> | undefined;

/** Drains transmits and events, and re-arms the timer. */
function afterStep(): void {
  for (let t = node.pollTransmit(); t !== undefined; t = node.pollTransmit()) {
    sendTo(t.payload, t.dst.ip, t.dst.port);
  }
  for (let e = node.pollEvent(); e !== undefined; e = node.pollEvent()) {
    switch (e.type) {
      case "NewIceCandidate":
        emit({ event: "candidate", candidate: e.candidate });
        break;
      case "InvalidateIceCandidate":
        emit({ event: "invalidated", candidate: e.candidate });
        break;
      case "ConnectionEstablished":
        emit({ event: "established" });
        break;
      case "ConnectionFailed":
        emit({ event: "failed", reason: e.reason });
        break;
      case "ConnectionClosed":
        emit({ event: "closed" });
        break;
    }
  }
  if (timer !== undefined) clearTimeout(timer);
  const deadline = node.pollTimeout();
  const delay = deadline === Infinity ? 1_000 : Math.max(0, Math.min(1_000, deadline - now()));
  timer = setTimeout(() => {
    timer = undefined;
    const t = now();
    if (node.pollTimeout() <= t) node.handleTimeout(t);
    afterStep();
  }, delay);
}

socket.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
  if (msg.length > rx.length) return;
  rx.set(msg, 0);
  from.setSocketAddr(socketAddr(rinfo.address, rinfo.port));
  const r = node.decapsulate(rx, 0, msg.length, from, local, now(), out);
  // decapsulate never returns WriteToNetwork: replies (handshakes, ICE) come out of pollTransmit.
  if (r === P2pResult.WriteToTunnel) {
    emit({ event: "packet", at: Date.now(), data: toB64(out.buf.slice(out.off, out.off + out.len)) });
  }
  afterStep();
});

function send(packet: Uint8Array): void {
  if (ENCAPSULATE_HEADROOM + packet.length + ENCAPSULATE_TAILROOM > tx.length) {
    emit({ event: "sent", result: "too_big" });
    return;
  }
  tx.set(packet, ENCAPSULATE_HEADROOM);
  const r = node.encapsulate(cid, tx, ENCAPSULATE_HEADROOM, packet.length, now(), out);
  if (r === P2pResult.WriteToNetwork) {
    sendTo(out.buf.slice(out.off, out.off + out.len), out.dst!.toSocketAddr().ip, out.dst!.port);
    emit({ event: "sent", result: "network" });
  } else if (r === P2pResult.Drop) {
    emit({ event: "sent", result: "drop", reason: P2P_DROP_NAMES[out.dropReason] });
  } else {
    emit({ event: "sent", result: "queued" });
  }
}

function handleCommand(line: string): void {
  const cmd = JSON.parse(line) as { cmd: string; candidates?: string[]; packet?: string };
  const t = now();
  switch (cmd.cmd) {
    case "candidates":
      for (const c of cmd.candidates ?? []) node.addRemoteCandidate(cid, c, t);
      break;
    case "send":
      send(b64(cmd.packet ?? ""));
      break;
    case "info": {
      const info = node.connectionInfo(cid);
      const s = info?.peerSocket ?? null;
      emit({
        event: "info",
        state: info?.state ?? "gone",
        established: info?.established ?? false,
        peerSocket: s === null
          ? null
          : s.kind === "direct"
          ? { kind: "direct", src: formatSocketAddr(s.src), dst: formatSocketAddr(s.dst) }
          : { kind: "relay", relayId: s.relayId, peer: formatSocketAddr(s.peer) },
      });
      break;
    }
    default:
      throw new TypeError(`unknown command ${line}`);
  }
  afterStep();
}

node.updateRelays([], [{
  id: config.relay.id,
  v4: relayAddr,
  username: config.relay.username,
  password: config.relay.password,
}], start);
node.upsertConnection(
  cid,
  b64(config.gatewayPublicKey),
  b64(config.presharedKey),
  config.clientIce,
  config.gatewayIce,
  start,
);
emit({ event: "ready", local: formatSocketAddr(localAddr) });
afterStep();

Deno.addSignalListener("SIGTERM", () => {
  socket.close();
  Deno.exit(0);
});

let pending = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  pending += chunk;
  for (let i = pending.indexOf("\n"); i >= 0; i = pending.indexOf("\n")) {
    const line = pending.slice(0, i).trim();
    pending = pending.slice(i + 1);
    if (line !== "") handleCommand(line);
  }
}
// stdin closed: the test is done with us.
if (timer !== undefined) clearTimeout(timer);
socket.close();
