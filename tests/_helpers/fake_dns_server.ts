/**
 * A scripted DNS server for tests: UDP (`node:dgram`, since `Deno.listenDatagram` needs
 * `--unstable-net`) and TCP (`Deno.listen`) on one address and port. Every query is recorded; the
 * handler decides the answer (null = stay silent).
 *
 * @module
 */

import dgram from "node:dgram";

export type Transport = "udp" | "tcp";

/** Returns the response bytes, or null to not answer. */
export type DnsHandler = (
  query: Uint8Array,
  transport: Transport,
) => Uint8Array | null | Promise<Uint8Array | null>;

/** One received query. */
export interface ReceivedQuery {
  transport: Transport;
  bytes: Uint8Array;
}

export class FakeDnsServer {
  readonly ip: string;
  readonly port: number;
  readonly received: ReceivedQuery[] = [];
  handler: DnsHandler;
  readonly #udp: dgram.Socket;
  readonly #tcp: Deno.TcpListener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();

  private constructor(ip: string, udp: dgram.Socket, tcp: Deno.TcpListener, handler: DnsHandler) {
    this.ip = ip;
    this.#udp = udp;
    this.#tcp = tcp;
    this.port = udp.address().port;
    this.handler = handler;
    udp.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
      const bytes = Uint8Array.from(msg);
      this.received.push({ transport: "udp", bytes });
      this.#track((async () => {
        const response = await this.handler(bytes, "udp");
        if (response) {
          try {
            udp.send(response, rinfo.port, rinfo.address);
          } catch {
            // closed meanwhile
          }
        }
      })());
    });
    this.#track(this.#accept());
  }

  /**
   * Starts a server on `ip` (UDP and TCP on the same port). With `port` 0 a port free for both is
   * picked.
   */
  static async start(ip: string, port: number, handler: DnsHandler): Promise<FakeDnsServer> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const udp = dgram.createSocket(ip.includes(":") ? "udp6" : "udp4");
      await new Promise<void>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(port, ip, () => resolve());
      });
      try {
        const tcp = Deno.listen({ hostname: ip, port: udp.address().port, transport: "tcp" });
        return new FakeDnsServer(ip, udp, tcp, handler);
      } catch (e) {
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        if (port !== 0 || !(e instanceof Deno.errors.AddrInUse)) throw e;
      }
    }
    throw new Error("no port free for both UDP and TCP");
  }

  /** Queries received over `transport`. */
  queries(transport: Transport): Uint8Array[] {
    return this.received.filter((q) => q.transport === transport).map((q) => q.bytes);
  }

  async close(): Promise<void> {
    this.#tcp.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
    await new Promise<void>((resolve) => this.#udp.close(() => resolve()));
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#tcp.accept();
      } catch {
        return;
      }
      this.#track(this.#serve(conn));
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    try {
      for (;;) {
        const head = await readExact(conn, 2);
        if (!head) break;
        const bytes = await readExact(conn, (head[0]! << 8) | head[1]!);
        if (!bytes) break;
        this.received.push({ transport: "tcp", bytes });
        const response = await this.handler(bytes, "tcp");
        if (!response) continue;
        const framed = new Uint8Array(2 + response.length);
        framed[0] = response.length >> 8;
        framed[1] = response.length & 0xff;
        framed.set(response, 2);
        let off = 0;
        while (off < framed.length) off += await conn.write(framed.subarray(off));
      }
    } catch {
      // closed by the client or by close()
    } finally {
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  }

  #track(task: Promise<void>): void {
    const t = task.catch(() => {});
    this.#tasks.add(t);
    t.finally(() => this.#tasks.delete(t));
  }
}

async function readExact(conn: Deno.Conn, n: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(n);
  let filled = 0;
  while (filled < n) {
    const r = await conn.read(out.subarray(filled));
    if (r === null) return null;
    filled += r;
  }
  return out;
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
