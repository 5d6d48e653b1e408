/**
 * A stub Firezone portal: a Deno WebSocket server on 127.0.0.1 speaking Phoenix V1 JSON like the
 * portal's `/gateway/websocket` endpoint.
 *
 * - records every upgrade request (path, raw query, parameters in order, headers);
 * - can refuse upgrades with a scripted HTTP status (401, 403, 422, 429, 5xx, ...) and body;
 * - replies to `phx_join` on `gateway` (ok, an error reason, or not at all) and to heartbeats;
 * - pushes scripted events, sends raw (also malformed) frames, closes sockets;
 * - has an HTTP control API under `/_stub/` for use from another process (`scripts/stub_portal.ts`):
 *   `GET /_stub/state`, `POST /_stub/push` `{event, payload, topic?}`, `POST /_stub/raw` (body sent
 *   as one text frame), `POST /_stub/refuse` `{status, body?}`, `POST /_stub/close`.
 *
 * @module
 */

/** One recorded upgrade request. */
export interface RecordedUpgrade {
  readonly path: string;
  /** The query string exactly as received (without `?`). */
  readonly rawQuery: string;
  /** Decoded parameters in order. */
  readonly params: readonly [string, string][];
  /** Lower-cased header names (Deno joins repeated headers with ", "). */
  readonly headers: readonly [string, string][];
  /** What the stub answered: 101 or the refusal status. */
  readonly status: number;
}

/** One frame the stub received. */
export interface ReceivedFrame {
  readonly text: string;
  readonly topic: string | null;
  readonly event: string | null;
  readonly payload: unknown;
  readonly ref: unknown;
}

/** How the stub answers joins. */
export type JoinReply = "ok" | { readonly error: string } | "none";

/** Construction options. */
export interface StubPortalOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Address to listen on (default 127.0.0.1). */
  readonly hostname?: string;
  readonly joinReply?: JoinReply;
  /** Called after an ok join reply was sent (e.g. to push `init`). */
  readonly onJoin?: (conn: StubConnection) => void;
  /** Log every frame to this function (the standalone script prints them). */
  readonly log?: (line: string) => void;
  /** Serve `wss` with this certificate and key (PEM). */
  readonly tls?: { readonly cert: string; readonly key: string };
}

/** One accepted WebSocket. */
export class StubConnection {
  readonly received: ReceivedFrame[] = [];
  joined = false;
  open = false;
  closeCode: number | null = null;
  readonly #socket: WebSocket;

  constructor(socket: WebSocket) {
    this.#socket = socket;
  }

  /** Sends one text frame. */
  sendRaw(text: string): void {
    this.#socket.send(text);
  }

  /** Sends a binary frame. */
  sendBinary(bytes: Uint8Array): void {
    this.#socket.send(bytes);
  }

  /** Pushes an event the way the portal does (`event, payload, ref, topic`, ref null). */
  push(event: string, payload: unknown, topic = "gateway"): void {
    this.sendRaw(JSON.stringify({ event, payload, ref: null, topic }));
  }

  /** Replies to a ref. */
  reply(topic: string, ref: unknown, status: "ok" | "error", response: unknown): void {
    this.sendRaw(JSON.stringify({ event: "phx_reply", payload: { status, response }, ref, topic }));
  }

  /** Closes the socket. */
  close(code = 1000, reason = ""): void {
    try {
      this.#socket.close(code, reason);
    } catch { /* already closed */ }
  }
}

/** The stub server. */
export class StubPortal {
  readonly upgrades: RecordedUpgrade[] = [];
  readonly connections: StubConnection[] = [];
  joinReply: JoinReply;
  onJoin: ((conn: StubConnection) => void) | undefined;
  readonly #refusals: { status: number; body: string }[] = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #log: ((line: string) => void) | undefined;
  readonly #scheme: "ws" | "wss";
  readonly port: number;
  /** The address it listens on. */
  readonly hostname: string;

  private constructor(options: StubPortalOptions) {
    this.joinReply = options.joinReply ?? "ok";
    this.onJoin = options.onJoin;
    this.#log = options.log;
    this.#scheme = options.tls ? "wss" : "ws";
    this.#server = Deno.serve(
      {
        hostname: options.hostname ?? "127.0.0.1",
        port: options.port ?? 0,
        onListen: () => {},
        ...(options.tls ?? {}),
      },
      (req) => this.#handle(req),
    );
    this.port = this.#server.addr.port;
    this.hostname = options.hostname ?? "127.0.0.1";
  }

  /** Starts listening. */
  static start(options: StubPortalOptions = {}): StubPortal {
    return new StubPortal(options);
  }

  /** `ws://<hostname>:<port>` (or `wss://`; pass as `--api-url`). */
  get url(): string {
    return `${this.#scheme}://${this.hostname}:${this.port}`;
  }

  /** The most recent connection. */
  get last(): StubConnection | undefined {
    return this.connections[this.connections.length - 1];
  }

  /** Refuses the next upgrade with `status` (queued; one refusal per attempt). */
  refuseNext(status: number, body = ""): void {
    this.#refusals.push({ status, body });
  }

  /** Pushes an event on the most recent open connection. */
  push(event: string, payload: unknown, topic = "gateway"): void {
    this.#requireOpen().push(event, payload, topic);
  }

  /** Sends a raw text frame on the most recent open connection. */
  sendRaw(text: string): void {
    this.#requireOpen().sendRaw(text);
  }

  /** Closes every open connection. */
  closeAll(code = 1000): void {
    for (const c of this.connections) if (c.open) c.close(code);
  }

  /** Frames received on all connections, in order. */
  allReceived(): ReceivedFrame[] {
    return this.connections.flatMap((c) => c.received);
  }

  /** Resolves with the first truthy value of `probe`, polling every 10 ms; rejects after `timeoutMs`. */
  async waitFor<T>(
    probe: () => T | undefined | null | false,
    timeoutMs = 5_000,
    what = "condition",
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`stub portal: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Stops the server and closes all sockets. */
  async stop(): Promise<void> {
    this.closeAll();
    await this.#server.shutdown();
  }

  #requireOpen(): StubConnection {
    for (let i = this.connections.length - 1; i >= 0; i--) {
      const c = this.connections[i]!;
      if (c.open) return c;
    }
    throw new Error("stub portal: no open connection");
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname.startsWith("/_stub/")) return await this.#control(req, url);
    if (!url.pathname.endsWith("/gateway/websocket")) return new Response("Not Found", { status: 404 });
    const rawQuery = url.search.startsWith("?") ? url.search.slice(1) : url.search;
    const record = (status: number) =>
      this.upgrades.push({
        path: url.pathname,
        rawQuery,
        params: [...url.searchParams.entries()],
        headers: [...req.headers.entries()],
        status,
      });
    const refusal = this.#refusals.shift();
    if (refusal) {
      record(refusal.status);
      this.#log?.(`refused upgrade with HTTP ${refusal.status}`);
      return new Response(refusal.body, { status: refusal.status });
    }
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      record(400);
      return new Response("Expected a websocket upgrade", { status: 400 });
    }
    record(101);
    const { socket, response } = Deno.upgradeWebSocket(req);
    const conn = new StubConnection(socket);
    this.connections.push(conn);
    socket.onopen = () => {
      conn.open = true;
      this.#log?.("websocket open");
    };
    socket.onclose = (e) => {
      conn.open = false;
      conn.closeCode = e.code;
      this.#log?.(`websocket closed (${e.code})`);
    };
    socket.onerror = () => {};
    socket.onmessage = (e) => this.#onFrame(conn, typeof e.data === "string" ? e.data : "<binary>");
    return response;
  }

  #onFrame(conn: StubConnection, text: string): void {
    let frame: Record<string, unknown> = {};
    try {
      const v = JSON.parse(text);
      if (typeof v === "object" && v !== null) frame = v;
    } catch { /* recorded as is */ }
    const received: ReceivedFrame = {
      text,
      topic: typeof frame.topic === "string" ? frame.topic : null,
      event: typeof frame.event === "string" ? frame.event : null,
      payload: frame.payload,
      ref: frame.ref,
    };
    conn.received.push(received);
    this.#log?.(`received ${text}`);
    if (received.event === "phx_join" && received.topic === "gateway") {
      const reply = this.joinReply;
      if (reply === "none") return;
      if (reply === "ok") {
        conn.reply("gateway", received.ref, "ok", {});
        conn.joined = true;
        this.onJoin?.(conn);
      } else {
        conn.reply("gateway", received.ref, "error", { reason: reply.error });
      }
      return;
    }
    if (received.event === "heartbeat" && received.topic === "phoenix") {
      conn.reply("phoenix", received.ref, "ok", {});
      return;
    }
    if (received.event === "flow_authorized" || received.event === "connection_ready") {
      conn.reply(received.topic ?? "gateway", received.ref, "ok", {});
    }
  }

  async #control(req: Request, url: URL): Promise<Response> {
    try {
      switch (`${req.method} ${url.pathname}`) {
        case "GET /_stub/state":
          return Response.json({
            upgrades: this.upgrades,
            connections: this.connections.map((c) => ({
              open: c.open,
              joined: c.joined,
              received: c.received,
            })),
          });
        case "POST /_stub/push": {
          const body = await req.json();
          this.push(body.event, body.payload, body.topic ?? "gateway");
          return new Response(null, { status: 204 });
        }
        case "POST /_stub/raw":
          this.sendRaw(await req.text());
          return new Response(null, { status: 204 });
        case "POST /_stub/refuse": {
          const body = await req.json();
          this.refuseNext(Number(body.status), body.body ?? "");
          return new Response(null, { status: 204 });
        }
        case "POST /_stub/close":
          this.closeAll();
          return new Response(null, { status: 204 });
        default:
          return new Response("Not Found", { status: 404 });
      }
    } catch (e) {
      return new Response((e as Error).message, { status: 409 });
    }
  }
}
