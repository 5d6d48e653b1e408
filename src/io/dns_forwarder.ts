/**
 * The user-space DNS forwarder on the TUN addresses (spec §4.8), on the main thread.
 *
 * - Listens on `<tun ipv4>:53535` and `[<tun ipv6>]:53535`, UDP and TCP, with ordinary sockets bound
 *   to the TUN addresses: client queries reach them through the kernel after the packet worker
 *   writes the decrypted packets to TUN, and the replies go back the same way.
 * - Each query is forwarded unmodified to the fastest nameserver on port 53, UDP over UDP and TCP
 *   over TCP, with a 5 s timeout. No answer, a timeout or no usable nameserver → SERVFAIL. Answers
 *   sent over UDP are cut to 1200 bytes at a record boundary with TC set.
 * - "Fastest": every 60 s (the first round when the forwarder is first bound, see {@link rebind})
 *   each nameserver is probed with `A firezone.dev` over UDP and over TCP (2 s timeout). RTTs are
 *   measured from the start of the round; the lowest with NOERROR wins. Until the first round has
 *   finished, the first nameserver is used; after a round without any NOERROR answer, queries get
 *   SERVFAIL (as upstream) until a later round finds one.
 * - {@link rebind} is called on every `init`; if no address could be bound it throws
 *   {@link DnsForwarderBindError} so the caller can treat it as fatal (spec §1.6).
 *
 * UDP uses `node:dgram`, because `Deno.listenDatagram` needs `--unstable-net`; TCP uses `Deno.listen`
 * and `Deno.connect`. Our sockets carry no `SO_MARK` (upstream's do): the TUN routing table only
 * holds the tunnel ranges, so traffic to nameservers outside them is routed normally either way.
 *
 * @module
 */

import dgram from "node:dgram";
import {
  buildProbeQuery,
  buildServfail,
  DNS_HEADER_BYTES,
  DnsRcode,
  isResponse,
  MAX_UDP_RESPONSE_BYTES,
  messageId,
  responseCode,
  truncateForUdp,
} from "../dns/message.ts";
import { nameserverHost, parseNameserverAddress } from "../dns/resolv_conf.ts";
import { logger } from "../log.ts";
import type { Rng } from "../rng.ts";
import type { Instant, Millis } from "../time.ts";
import { canonicalIp, type IpFamily, type SocketAddr, socketAddr } from "../wire/ip_addr.ts";
import { CryptoRng } from "./crypto_rng.ts";

const log = logger("fz_gateway::dns::forwarder");

/** Port of the forwarder on the TUN addresses (spec §4.8). */
export const DNS_FORWARDER_PORT = 53535;
/** Port queries are forwarded to. */
export const DNS_UPSTREAM_PORT = 53;
/** A forwarded query gets SERVFAIL after this long without an answer. */
export const DNS_FORWARD_TIMEOUT_MS: Millis = 5_000;
/** Timeout of each nameserver probe. */
export const NAMESERVER_PROBE_TIMEOUT_MS: Millis = 2_000;
/** Interval between probe rounds. */
export const NAMESERVER_PROBE_INTERVAL_MS: Millis = 60_000;

// Implementation limits.
/** Upstream probes at most 20 queries per round: 10 nameservers over UDP and TCP. */
const MAX_PROBED_NAMESERVERS = 10;
/** Queries forwarded at once; beyond this, queries get SERVFAIL without being forwarded. */
const MAX_IN_FLIGHT_QUERIES = 1_000;
/** A client TCP connection that does not send a whole query for this long is closed. */
const TCP_IDLE_TIMEOUT_MS: Millis = 10_000;
/** How long a bind is retried while the address is not (yet) available (IPv6 DAD, racing `init`). */
const BIND_RETRY_MS: Millis = 2_000;
const BIND_RETRY_INTERVAL_MS: Millis = 100;
/** Pause after a failed `accept()` before the next one. */
const ACCEPT_RETRY_MS: Millis = 100;
/** Attempts at finding a port free for both UDP and TCP when port 0 is requested (tests). */
const EPHEMERAL_PORT_ATTEMPTS = 8;

/** Options for {@link DnsForwarder}; every default is the spec's. */
export interface DnsForwarderOptions {
  /** Listening port; defaults to 53535. `0` picks one port free for both UDP and TCP (tests). */
  readonly port?: number;
  /** Nameserver port; defaults to 53. */
  readonly upstreamPort?: number;
  /** Defaults to 5 s. */
  readonly queryTimeoutMs?: Millis;
  /** Defaults to 2 s. */
  readonly probeTimeoutMs?: Millis;
  /** Defaults to 60 s; `0` disables periodic probing ({@link DnsForwarder.probe} still works). */
  readonly probeIntervalMs?: Millis;
  /** Defaults to 1200 bytes. */
  readonly maxUdpResponseBytes?: number;
  /** Defaults to 10 s. */
  readonly tcpIdleTimeoutMs?: Millis;
  /** How long to retry binding an address that is not available yet; defaults to 2 s. */
  readonly bindRetryMs?: Millis;
  /** Probe query ids; defaults to a {@link CryptoRng}. */
  readonly rng?: Rng;
  /** Monotonic clock for RTTs; defaults to `performance.now`. */
  readonly clock?: () => Instant;
}

/** What {@link DnsForwarder.rebind} bound. */
export interface DnsForwarderBindResult {
  /** Addresses listening on UDP and TCP. */
  readonly bound: readonly SocketAddr[];
  /** Addresses that could not be bound (logged at WARN). */
  readonly failed: readonly DnsForwarderBindFailure[];
}

/** One address that could not be bound. */
export interface DnsForwarderBindFailure {
  readonly address: string;
  readonly error: Error;
}

/** No address could be bound: fatal for the gateway (spec §1.6). */
export class DnsForwarderBindError extends Error {
  readonly failures: readonly DnsForwarderBindFailure[];

  constructor(failures: readonly DnsForwarderBindFailure[], port: number) {
    super(
      failures.length === 0
        ? "Failed to bind the DNS forwarder: no address given"
        : `Failed to bind the DNS forwarder on port ${port}: ` +
          failures.map((f) => `${f.address}: ${f.error.message}`).join("; "),
    );
    this.name = "DnsForwarderBindError";
    this.failures = failures;
  }
}

interface Upstream {
  /** `ip` or `ip%zone`, for sockets. */
  readonly host: string;
  /** Canonical, without zone: compared with datagram sources. */
  readonly ip: string;
  readonly family: IpFamily;
}

interface Listener {
  readonly address: SocketAddr;
  readonly udp: dgram.Socket;
  readonly tcp: Deno.TcpListener;
  closed: boolean;
}

type Transport = "udp" | "tcp";

/** The DNS forwarder (see the module documentation). */
export class DnsForwarder {
  readonly #port: number;
  readonly #upstreamPort: number;
  readonly #queryTimeoutMs: Millis;
  readonly #probeTimeoutMs: Millis;
  readonly #probeIntervalMs: Millis;
  readonly #maxUdpResponseBytes: number;
  readonly #tcpIdleTimeoutMs: Millis;
  readonly #bindRetryMs: Millis;
  readonly #rng: Rng;
  readonly #clock: () => Instant;

  #nameservers: Upstream[] = [];
  #generation = 0;
  #fastest: Upstream | undefined;
  #probed = false;
  #probing: Promise<string | undefined> | null = null;
  #probeTimer: ReturnType<typeof setInterval> | undefined;
  /** Set by the first successful bind: probing runs from then on. */
  #started = false;

  #listeners: Listener[] = [];
  #rebinding: Promise<unknown> = Promise.resolve();
  #inFlight = 0;
  #closed = false;
  readonly #tasks = new Set<Promise<unknown>>();
  readonly #cancels = new Set<() => void>();
  readonly #tcpConns = new Set<Deno.Conn>();

  /**
   * @param nameservers addresses from resolv.conf (`1.2.3.4`, `2001:db8::53`, `fe80::1%eth0`),
   *   in order; only the first 10 are probed
   * @throws TypeError when an entry is not an IP address
   */
  constructor(nameservers: readonly string[], options: DnsForwarderOptions = {}) {
    this.#port = options.port ?? DNS_FORWARDER_PORT;
    this.#upstreamPort = options.upstreamPort ?? DNS_UPSTREAM_PORT;
    this.#queryTimeoutMs = options.queryTimeoutMs ?? DNS_FORWARD_TIMEOUT_MS;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? NAMESERVER_PROBE_TIMEOUT_MS;
    this.#probeIntervalMs = options.probeIntervalMs ?? NAMESERVER_PROBE_INTERVAL_MS;
    this.#maxUdpResponseBytes = options.maxUdpResponseBytes ?? MAX_UDP_RESPONSE_BYTES;
    this.#tcpIdleTimeoutMs = options.tcpIdleTimeoutMs ?? TCP_IDLE_TIMEOUT_MS;
    this.#bindRetryMs = options.bindRetryMs ?? BIND_RETRY_MS;
    this.#rng = options.rng ?? new CryptoRng();
    this.#clock = options.clock ?? (() => performance.now());
    if (!Number.isInteger(this.#port) || this.#port < 0 || this.#port > 65535) {
      throw new RangeError(`Invalid DNS forwarder port ${this.#port}: expected 0..65535`);
    }
    if (this.#maxUdpResponseBytes < DNS_HEADER_BYTES) {
      throw new RangeError(`maxUdpResponseBytes must be at least ${DNS_HEADER_BYTES}`);
    }
    this.setNameservers(nameservers);
  }

  /** The configured nameservers (`ip` or `ip%zone`), in order. */
  get nameservers(): string[] {
    return this.#nameservers.map((n) => n.host);
  }

  /** The nameserver queries currently go to, if any. */
  get upstream(): string | undefined {
    return this.#currentUpstream()?.host;
  }

  /** The winner of the last probe round (undefined before the first round or if none answered). */
  get fastestNameserver(): string | undefined {
    return this.#fastest?.host;
  }

  /** Addresses currently listening (UDP and TCP). */
  get boundAddresses(): SocketAddr[] {
    return this.#listeners.map((l) => l.address);
  }

  /**
   * Replaces the nameserver set; the fastest is chosen again by the next probe round (started at
   * once when the forwarder is running).
   * @throws TypeError when an entry is not an IP address
   */
  setNameservers(nameservers: readonly string[]): void {
    const out: Upstream[] = [];
    for (const text of nameservers) {
      let ns;
      try {
        ns = parseNameserverAddress(text);
      } catch (e) {
        throw new TypeError(`Invalid nameserver "${text}": ${(e as Error).message}`);
      }
      const host = nameserverHost(ns);
      if (!out.some((u) => u.host === host)) out.push({ host, ip: ns.ip, family: ns.family });
    }
    this.#nameservers = out;
    this.#generation++;
    this.#fastest = undefined;
    this.#probed = false;
    if (this.#started) {
      // A round in progress probes the old set: start a fresh one after it.
      const running = this.#probing ?? Promise.resolve(undefined);
      this.#track(running.then(() => this.probe()));
    }
  }

  /**
   * Closes the current listeners and binds UDP and TCP on each address (the gateway's TUN IPv4 and
   * IPv6) at the forwarder port. An address that fails is logged at WARN and reported in the
   * result. The first successful call also starts the probe rounds.
   * @throws DnsForwarderBindError when no address could be bound (fatal upstream)
   */
  rebind(addresses: readonly string[]): Promise<DnsForwarderBindResult> {
    const run = this.#rebinding.then(() => this.#rebind(addresses));
    this.#rebinding = run.catch(() => {});
    return run;
  }

  /**
   * Runs a probe round now (or joins the one running) and resolves with the winner's address, or
   * undefined when no nameserver answered NOERROR.
   */
  probe(): Promise<string | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    if (!this.#probing) {
      this.#probing = this.#probeRound().finally(() => {
        this.#probing = null;
      });
    }
    return this.#probing;
  }

  /** Stops probing, closes every socket and connection, and waits for the work in progress. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#probeTimer);
    this.#probeTimer = undefined;
    await this.#rebinding;
    await this.#closeListeners();
    for (const cancel of [...this.#cancels]) cancel();
    for (const conn of this.#tcpConns) closeQuietly(conn);
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  // --- binding ----------------------------------------------------------------------------------

  async #rebind(addresses: readonly string[]): Promise<DnsForwarderBindResult> {
    if (this.#closed) throw new Error("DnsForwarder is closed");
    await this.#closeListeners();
    const bound: SocketAddr[] = [];
    const failed: DnsForwarderBindFailure[] = [];
    for (const text of addresses) {
      const ip = canonicalIp(text);
      if (ip === null) {
        failed.push({ address: text, error: new TypeError(`"${text}" is not an IP address`) });
        continue;
      }
      try {
        const listener = await this.#bindWithRetry(ip);
        this.#listeners.push(listener);
        bound.push(listener.address);
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        failed.push({ address: ip, error });
        log.warn("Failed to bind DNS forwarder", { address: ip, port: this.#port, error: error.message });
      }
    }
    if (bound.length === 0) throw new DnsForwarderBindError(failed, this.#port);
    log.info("DNS forwarder listening", { addresses: bound.map(formatAddr).join(",") });
    if (!this.#started) {
      // The first round starts now, then one every interval.
      this.#started = true;
      if (this.#probeIntervalMs > 0) {
        this.#probeTimer = setInterval(() => this.#track(this.probe()), this.#probeIntervalMs);
      }
      this.#track(this.probe());
    }
    return { bound, failed };
  }

  async #bindWithRetry(ip: string): Promise<Listener> {
    const deadline = this.#clock() + this.#bindRetryMs;
    for (;;) {
      try {
        return await this.#bindPair(ip);
      } catch (e) {
        if (!isAddrNotAvailable(e) || this.#clock() >= deadline || this.#closed) throw e;
        await sleep(BIND_RETRY_INTERVAL_MS);
      }
    }
  }

  async #bindPair(ip: string): Promise<Listener> {
    const family: IpFamily = ip.includes(":") ? 6 : 4;
    const attempts = this.#port === 0 ? EPHEMERAL_PORT_ATTEMPTS : 1;
    for (let attempt = 1;; attempt++) {
      const udp = await bindUdp(ip, family, this.#port);
      const port = udp.address().port;
      let tcp: Deno.TcpListener;
      try {
        tcp = Deno.listen({ hostname: ip, port, transport: "tcp" });
      } catch (e) {
        await closeUdp(udp);
        if (attempt < attempts && e instanceof Deno.errors.AddrInUse) continue;
        throw e;
      }
      const listener: Listener = { address: socketAddr(ip, port), udp, tcp, closed: false };
      udp.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => this.#onUdpQuery(listener, msg, rinfo));
      udp.on("error", (e: Error) => log.debug("DNS forwarder UDP socket error", { error: e.message }));
      this.#track(this.#acceptLoop(listener));
      return listener;
    }
  }

  async #closeListeners(): Promise<void> {
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const l of listeners) {
      l.closed = true;
      closeQuietly(l.tcp);
      await closeUdp(l.udp);
    }
  }

  // --- serving ----------------------------------------------------------------------------------

  #onUdpQuery(listener: Listener, msg: Uint8Array, rinfo: dgram.RemoteInfo): void {
    if (msg.length < DNS_HEADER_BYTES || isResponse(msg)) {
      if (log.debugEnabled) {
        log.debug("Ignoring non-query datagram", { from: rinfo.address, len: msg.length });
      }
      return;
    }
    const query = Uint8Array.from(msg);
    this.#track(
      this.#answer(query, "udp").then((response) => {
        if (listener.closed || response === null) return;
        try {
          listener.udp.send(response, rinfo.port, rinfo.address, (err: Error | null) => {
            if (err) log.debug("Failed to send DNS response", { to: rinfo.address, error: err.message });
          });
        } catch (e) {
          log.debug("Failed to send DNS response", { to: rinfo.address, error: String(e) });
        }
      }),
    );
  }

  async #acceptLoop(listener: Listener): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.tcp.accept();
      } catch (e) {
        if (this.#closed || listener.closed) return;
        // E.g. EMFILE: keep the listener, try again shortly.
        log.warn("Failed to accept a DNS-over-TCP connection", { error: String(e) });
        await sleep(ACCEPT_RETRY_MS);
        continue;
      }
      if (this.#closed || listener.closed) {
        closeQuietly(conn);
        return;
      }
      this.#track(this.#serveTcp(conn));
    }
  }

  /** One client connection: length-prefixed queries answered one at a time (RFC 1035 §4.2.2). */
  async #serveTcp(conn: Deno.TcpConn): Promise<void> {
    this.#tcpConns.add(conn);
    let idle: ReturnType<typeof setTimeout> | undefined;
    try {
      while (!this.#closed) {
        idle = setTimeout(() => closeQuietly(conn), this.#tcpIdleTimeoutMs);
        const head = await readExact(conn, 2);
        if (head === null) break;
        const query = await readExact(conn, (head[0]! << 8) | head[1]!);
        clearTimeout(idle);
        if (query === null || query.length < DNS_HEADER_BYTES || isResponse(query)) break;
        const response = await this.#answer(query, "tcp");
        if (response === null) break;
        const framed = new Uint8Array(2 + response.length);
        framed[0] = response.length >>> 8;
        framed[1] = response.length & 0xff;
        framed.set(response, 2);
        await writeAll(conn, framed);
      }
    } catch (e) {
      if (log.debugEnabled) log.debug("DNS-over-TCP client connection ended", { error: String(e) });
    } finally {
      clearTimeout(idle);
      this.#tcpConns.delete(conn);
      closeQuietly(conn);
    }
  }

  /** The answer to one client query: the nameserver's response, or SERVFAIL. */
  async #answer(query: Uint8Array, transport: Transport): Promise<Uint8Array | null> {
    const upstream = this.#currentUpstream();
    let response: Uint8Array | null = null;
    if (!upstream) {
      if (log.debugEnabled) log.debug("No nameserver available, answering SERVFAIL");
    } else if (this.#inFlight >= MAX_IN_FLIGHT_QUERIES) {
      log.debug("Too many DNS queries in flight, answering SERVFAIL", { limit: MAX_IN_FLIGHT_QUERIES });
    } else {
      this.#inFlight++;
      try {
        response = await this.#exchange(upstream, query, transport, this.#queryTimeoutMs);
      } finally {
        this.#inFlight--;
      }
      if (response === null && log.debugEnabled) {
        log.debug("No answer from nameserver, answering SERVFAIL", { nameserver: upstream.host, transport });
      }
    }
    response ??= buildServfail(query);
    if (response !== null && transport === "udp") {
      response = truncateForUdp(response, this.#maxUdpResponseBytes);
    }
    return response;
  }

  #currentUpstream(): Upstream | undefined {
    if (this.#fastest) return this.#fastest;
    return this.#probed ? undefined : this.#nameservers[0];
  }

  // --- probing ----------------------------------------------------------------------------------

  async #probeRound(): Promise<string | undefined> {
    const generation = this.#generation;
    const candidates = this.#nameservers.slice(0, MAX_PROBED_NAMESERVERS);
    const start = this.#clock();
    let best: { upstream: Upstream; rttMs: number } | undefined;
    await Promise.all(candidates.flatMap((upstream) =>
      (["udp", "tcp"] as const).map(async (transport) => {
        const response = await this.#exchange(
          upstream,
          buildProbeQuery(this.#rng.nextU32() & 0xffff),
          transport,
          this.#probeTimeoutMs,
        );
        const rttMs = this.#clock() - start;
        const rcode = response === null ? -1 : responseCode(response);
        if (rcode !== DnsRcode.NoError) {
          if (log.debugEnabled) {
            log.debug("Nameserver probe failed", {
              nameserver: upstream.host,
              transport,
              result: response === null ? "no answer" : `rcode ${rcode}`,
            });
          }
          return;
        }
        if (!best || rttMs < best.rttMs) best = { upstream, rttMs };
      })
    ));
    if (generation !== this.#generation || this.#closed) return this.#fastest?.host;
    const winner: { upstream: Upstream; rttMs: number } | undefined = best;
    this.#fastest = winner?.upstream;
    this.#probed = true;
    if (winner) {
      log.info("Evaluated fastest nameserver", {
        fastest: winner.upstream.host,
        rttMs: Math.round(winner.rttMs),
      });
    } else if (candidates.length > 0) {
      log.warn("No nameserver answered the probe with NOERROR; DNS queries will get SERVFAIL", {
        nameservers: candidates.map((c) => c.host).join(","),
      });
    }
    return winner?.upstream.host;
  }

  // --- upstream exchanges -----------------------------------------------------------------------

  /** Sends `query` to `upstream` and resolves with its response, or null on error/timeout. */
  #exchange(
    upstream: Upstream,
    query: Uint8Array,
    transport: Transport,
    timeoutMs: Millis,
  ): Promise<Uint8Array | null> {
    if (this.#closed) return Promise.resolve(null);
    return transport === "udp"
      ? this.#exchangeUdp(upstream, query, timeoutMs)
      : this.#exchangeTcp(upstream, query, timeoutMs);
  }

  #exchangeUdp(upstream: Upstream, query: Uint8Array, timeoutMs: Millis): Promise<Uint8Array | null> {
    return new Promise((resolve) => {
      const id = messageId(query);
      const socket = dgram.createSocket(upstream.family === 6 ? "udp6" : "udp4");
      let done = false;
      const finish = (response: Uint8Array | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#cancels.delete(cancel);
        closeUdp(socket).then(() => resolve(response));
      };
      const cancel = () => finish(null);
      const timer = setTimeout(cancel, timeoutMs);
      this.#cancels.add(cancel);
      socket.on("error", (e: Error) => {
        log.debug("DNS upstream UDP error", { nameserver: upstream.host, error: e.message });
        finish(null);
      });
      socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
        // Only the nameserver's answer to this query counts (anti-spoofing, stray datagrams).
        if (rinfo.port !== this.#upstreamPort || canonicalIp(stripZone(rinfo.address)) !== upstream.ip) {
          return;
        }
        if (msg.length < DNS_HEADER_BYTES || !isResponse(msg) || messageId(msg) !== id) return;
        finish(Uint8Array.from(msg));
      });
      try {
        socket.send(query, this.#upstreamPort, upstream.host, (err: Error | null) => {
          if (err) {
            log.debug("Failed to send DNS query upstream", { nameserver: upstream.host, error: err.message });
            finish(null);
          }
        });
      } catch (e) {
        log.debug("Failed to send DNS query upstream", { nameserver: upstream.host, error: String(e) });
        finish(null);
      }
    });
  }

  async #exchangeTcp(upstream: Upstream, query: Uint8Array, timeoutMs: Millis): Promise<Uint8Array | null> {
    const abort = new AbortController();
    let conn: Deno.TcpConn | undefined;
    const cancel = () => {
      abort.abort();
      if (conn) closeQuietly(conn);
    };
    const timer = setTimeout(cancel, timeoutMs);
    this.#cancels.add(cancel);
    try {
      conn = await Deno.connect({
        hostname: upstream.host,
        port: this.#upstreamPort,
        transport: "tcp",
        signal: abort.signal,
      });
      if (abort.signal.aborted) return null;
      const framed = new Uint8Array(2 + query.length);
      framed[0] = query.length >>> 8;
      framed[1] = query.length & 0xff;
      framed.set(query, 2);
      await writeAll(conn, framed);
      const head = await readExact(conn, 2);
      if (head === null) return null;
      const response = await readExact(conn, (head[0]! << 8) | head[1]!);
      if (response === null || response.length < DNS_HEADER_BYTES) return null;
      if (!isResponse(response) || messageId(response) !== messageId(query)) return null;
      return response;
    } catch (e) {
      if (log.debugEnabled) {
        log.debug("DNS upstream TCP exchange failed", { nameserver: upstream.host, error: String(e) });
      }
      return null;
    } finally {
      clearTimeout(timer);
      this.#cancels.delete(cancel);
      if (conn) closeQuietly(conn);
    }
  }

  #track(task: Promise<unknown>): void {
    const tracked = task.catch((e) => log.debug("DNS forwarder task failed", { error: String(e) }));
    this.#tasks.add(tracked);
    tracked.finally(() => this.#tasks.delete(tracked));
  }
}

// --- socket helpers ---------------------------------------------------------------------------

function bindUdp(ip: string, family: IpFamily, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type: family === 6 ? "udp6" : "udp4", ipv6Only: family === 6 });
    const onError = (e: Error) => {
      closeUdp(socket).then(() => reject(e));
    };
    socket.once("error", onError);
    socket.bind({ address: ip, port, exclusive: true }, () => {
      socket.off("error", onError);
      resolve(socket);
    });
  });
}

/** Closes a dgram socket and resolves once it is closed (at once if it is not open). */
function closeUdp(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // not running (never bound, or already closed)
    }
  });
}

function closeQuietly(closer: { close(): void }): void {
  try {
    closer.close();
  } catch {
    // already closed
  }
}

/** Reads exactly `n` bytes; null on EOF before the first byte; throws on EOF in the middle. */
async function readExact(conn: Deno.Conn, n: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(n);
  let filled = 0;
  while (filled < n) {
    const r = await conn.read(out.subarray(filled));
    if (r === null) {
      if (filled === 0) return null;
      throw new Error(`Connection closed after ${filled} of ${n} bytes`);
    }
    filled += r;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

function isAddrNotAvailable(e: unknown): boolean {
  return e instanceof Deno.errors.AddrNotAvailable ||
    (e as { code?: unknown } | null)?.code === "EADDRNOTAVAIL";
}

function stripZone(address: string): string {
  const pct = address.indexOf("%");
  return pct < 0 ? address : address.slice(0, pct);
}

function formatAddr(a: SocketAddr): string {
  return a.family === 6 ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}

function sleep(ms: Millis): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
