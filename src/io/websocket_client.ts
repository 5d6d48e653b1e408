/**
 * A minimal RFC 6455 client over `Deno.connect` / `Deno.startTls` that sends exactly the upgrade
 * headers upstream sends (see `src/portal/websocket_codec.ts` for why Deno's `WebSocket` cannot).
 *
 * TLS uses Deno's root store (Mozilla's, like upstream's webpki roots; `DENO_TLS_CA_STORE=system`
 * switches to the OS store, `DENO_CERT` adds a CA file).
 *
 * @module
 */

import {
  buildUpgradeRequest,
  checkHandshake,
  closePayload,
  encodeClientFrame,
  FrameDecoder,
  Opcode,
  parseResponseHead,
  type ResponseHead,
} from "../portal/websocket_codec.ts";
import type { Secret } from "../log.ts";

/** Upstream's TCP connect timeout. */
export const TCP_CONNECT_TIMEOUT_MS = 5_000;
/** How long we wait for the body of a refused upgrade (for the error message). */
const ERROR_BODY_TIMEOUT_MS = 1_000;
const MAX_ERROR_BODY_BYTES = 1_024;

/** The server answered the upgrade with a status other than 101. */
export class UpgradeError extends Error {
  override name = "UpgradeError";
  readonly status: number;
  readonly body: string;

  constructor(status: number, reason: string, body: string) {
    super(`http error: ${status} ${reason}${body === "" ? "" : ` - ${body}`}`);
    this.status = status;
    this.body = body;
  }
}

/** The server's TLS certificate was rejected (upstream treats this as fatal). */
export class CertificateError extends Error {
  override name = "CertificateError";
}

/** Where and how to connect. */
export interface WebSocketConnectOptions {
  readonly hostname: string;
  readonly port: number;
  readonly tls: boolean;
  /** `Host` header value (no port, as upstream). */
  readonly hostHeader: string;
  /** `/path?query`; secret because it carries the token. */
  readonly target: Secret<string>;
  readonly userAgent: string;
  /** Extra trusted CA certificates (PEM) for `wss`, on top of the default root store. */
  readonly caCerts?: readonly string[];
  /** Aborts the connection attempt. */
  readonly signal?: AbortSignal;
}

/** Callbacks of an open connection; exactly one `onClose` ends it. */
export interface WebSocketHandlers {
  onText(text: string): void;
  onBinary(data: Uint8Array): void;
  onClose(info: { code?: number; reason?: string; error?: string }): void;
}

/** An open client WebSocket. */
export class WebSocketConnection {
  readonly #conn: Deno.Conn;
  readonly #decoder = new FrameDecoder();
  #pending: Uint8Array;
  #writes: Promise<void> = Promise.resolve();
  #closed = false;
  #closeSent = false;
  #resolveClosed!: () => void;
  /** Resolves once the socket is closed (after pending writes were flushed). */
  readonly closed: Promise<void> = new Promise((resolve) => this.#resolveClosed = resolve);

  private constructor(conn: Deno.Conn, leftover: Uint8Array) {
    this.#conn = conn;
    this.#pending = leftover;
  }

  /**
   * Connects, upgrades and returns the open connection.
   * @throws UpgradeError when the server refused the upgrade with an HTTP status
   * @throws Error for network, TLS and handshake failures
   */
  static async connect(options: WebSocketConnectOptions): Promise<WebSocketConnection> {
    const timeout = AbortSignal.timeout(TCP_CONNECT_TIMEOUT_MS);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let conn: Deno.Conn;
    try {
      conn = await Deno.connect({ hostname: options.hostname, port: options.port, signal });
    } catch (e) {
      if (timeout.aborted) throw new Error(`operation timed out after ${TCP_CONNECT_TIMEOUT_MS / 1000}s`);
      throw new Error(`failed to connect socket: [${options.hostname}:${options.port}: ${errorText(e)}]`);
    }
    const abortHandshake = () => {
      try {
        conn.close();
      } catch { /* already closed */ }
    };
    options.signal?.addEventListener("abort", abortHandshake, { once: true });
    try {
      if (options.tls) {
        conn = await Deno.startTls(conn as Deno.TcpConn, {
          hostname: options.hostname,
          ...(options.caCerts ? { caCerts: [...options.caCerts] } : {}),
        });
      }
      const keyBytes = new Uint8Array(16);
      crypto.getRandomValues(keyBytes);
      const key = btoa(String.fromCharCode(...keyBytes));
      const request = buildUpgradeRequest({
        target: options.target.expose(),
        host: options.hostHeader,
        key,
        userAgent: options.userAgent,
      });
      await writeAll(conn, new TextEncoder().encode(request));
      const { head, rest } = await readHead(conn);
      if (head.status !== 101) {
        const body = await readErrorBody(conn, head, rest);
        throw new UpgradeError(head.status, head.reason, body);
      }
      const problem = checkHandshake(head, key);
      if (problem !== null) throw new Error(`websocket handshake failed: ${problem}`);
      return new WebSocketConnection(conn, rest);
    } catch (e) {
      abortHandshake();
      if (options.signal?.aborted) throw new Error("connection attempt aborted");
      if (e instanceof Deno.errors.InvalidData && /invalid peer certificate/i.test(e.message)) {
        throw new CertificateError(e.message);
      }
      throw e;
    } finally {
      options.signal?.removeEventListener("abort", abortHandshake);
    }
  }

  /** Reads until the connection ends, dispatching messages; answers pings and close frames. */
  async run(handlers: WebSocketHandlers): Promise<void> {
    let info: { code?: number; reason?: string; error?: string } = {};
    try {
      let chunk = this.#pending;
      this.#pending = new Uint8Array(0);
      const buf = new Uint8Array(64 * 1024);
      for (;;) {
        for (const msg of this.#decoder.push(chunk)) {
          if (msg.type === "text") handlers.onText(msg.data);
          else if (msg.type === "binary") handlers.onBinary(msg.data);
          else if (msg.type === "ping") this.#write(Opcode.Pong, msg.data);
          else if (msg.type === "close") {
            info = msg.code === null ? { code: 1005 } : { code: msg.code, reason: msg.reason };
            if (!this.#closeSent) {
              this.#write(Opcode.Close, msg.code === null ? new Uint8Array(0) : closePayload(msg.code, ""));
            }
            this.#closeSent = true;
            return;
          }
        }
        if (this.#closed) return;
        const n = await this.#conn.read(buf);
        if (n === null) {
          info = this.#closed ? { code: 1000 } : { error: "websocket stream was closed" };
          return;
        }
        chunk = buf.slice(0, n);
      }
    } catch (e) {
      info = this.#closed && this.#closeSent ? { code: 1000 } : { error: errorText(e) };
    } finally {
      await this.#writes.catch(() => {});
      this.#shutdown();
      handlers.onClose(info);
    }
  }

  /** Sends a text message (writes are serialized). */
  sendText(text: string): Promise<void> {
    return this.#write(Opcode.Text, new TextEncoder().encode(text));
  }

  /** Sends a close frame and closes the socket shortly after. */
  close(code = 1000, reason = ""): void {
    if (this.#closed) return;
    if (!this.#closeSent) {
      this.#closeSent = true;
      void this.#write(Opcode.Close, closePayload(code, reason));
    }
    this.#closed = true;
    void this.#writes.finally(() => this.#shutdown());
  }

  #write(opcode: Opcode, payload: Uint8Array): Promise<void> {
    const mask = new Uint8Array(4);
    crypto.getRandomValues(mask);
    const frame = encodeClientFrame(opcode, payload, mask);
    this.#writes = this.#writes.then(() => writeAll(this.#conn, frame));
    return this.#writes;
  }

  #shutdown(): void {
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.#resolveClosed();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

async function readHead(conn: Deno.Conn): Promise<{ head: ResponseHead; rest: Uint8Array }> {
  let acc = new Uint8Array(0);
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("connection closed during the websocket handshake");
    const merged = new Uint8Array(acc.length + n);
    merged.set(acc);
    merged.set(buf.subarray(0, n), acc.length);
    acc = merged;
    const head = parseResponseHead(acc);
    if (head !== null) return { head, rest: acc.slice(head.length) };
  }
}

/** Up to 1 KiB of the response body (by Content-Length, or until EOF), waiting at most 1 s. */
async function readErrorBody(conn: Deno.Conn, head: ResponseHead, rest: Uint8Array): Promise<string> {
  const declared = Number(head.headers.get("content-length") ?? NaN);
  const want = Math.min(Number.isFinite(declared) ? declared : MAX_ERROR_BODY_BYTES, MAX_ERROR_BODY_BYTES);
  let body = rest.slice(0, want);
  const deadline = Date.now() + ERROR_BODY_TIMEOUT_MS;
  const buf = new Uint8Array(1024);
  while (body.length < want && Date.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), deadline - Date.now())),
    ]);
    clearTimeout(timer);
    if (n === null) break;
    const merged = new Uint8Array(body.length + n);
    merged.set(body);
    merged.set(buf.subarray(0, n), body.length);
    body = merged.slice(0, want);
  }
  return new TextDecoder().decode(body).trim();
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
