/**
 * Thin driver around the sans-IO {@link PhoenixChannel}: executes its socket commands with
 * {@link WebSocketConnection}, writes its frames, feeds socket events back, and keeps one timer at
 * `pollTimeout()`. Events go to the owner's callback. Callbacks of sockets the channel already
 * dropped are ignored (each connection attempt has a generation number).
 *
 * @module
 */

import { logger } from "../log.ts";
import type { ChannelEvent, PhoenixChannel } from "../portal/phoenix_channel.ts";
import {
  CertificateError,
  UpgradeError,
  WebSocketConnection,
  type WebSocketConnectOptions,
} from "./websocket_client.ts";

const log = logger("fz_gateway::portal");

/** Construction options. */
export interface PortalSocketOptions<M> {
  readonly channel: PhoenixChannel<M>;
  /** Where to connect; called for every attempt. */
  readonly connectOptions: () => Omit<WebSocketConnectOptions, "signal">;
  /** Receives every channel event, in order. */
  readonly onEvent: (event: ChannelEvent<M>) => void;
  /** Monotonic milliseconds; `performance.now` by default. */
  readonly clock?: () => number;
}

/** Runs one {@link PhoenixChannel} over real WebSockets. */
export class PortalSocket<M> {
  readonly channel: PhoenixChannel<M>;
  readonly #connectOptions: () => Omit<WebSocketConnectOptions, "signal">;
  readonly #onEvent: (event: ChannelEvent<M>) => void;
  readonly #clock: () => number;

  #generation = 0;
  #conn: WebSocketConnection | null = null;
  #connecting: AbortController | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #pumping = false;
  #stopped = false;

  constructor(options: PortalSocketOptions<M>) {
    this.channel = options.channel;
    this.#connectOptions = options.connectOptions;
    this.#onEvent = options.onEvent;
    this.#clock = options.clock ?? (() => performance.now());
  }

  /** Starts connecting. */
  start(): void {
    this.channel.connect(this.#clock());
    this.#pump();
  }

  /** Queues an application message (see {@link PhoenixChannel.send}); returns its ref. */
  send(topic: string, message: { readonly event: string; readonly payload?: unknown }): number {
    const ref = this.channel.send(topic, message);
    this.#pump();
    return ref;
  }

  /** Forces a reconnect (see {@link PhoenixChannel.reconnect}). */
  reconnect(reason: string): void {
    this.channel.reconnect(this.#clock(), reason);
    this.#pump();
  }

  /** Closes the channel and socket; resolves once the close frame is flushed (at most `timeoutMs`). */
  async close(timeoutMs = 1_000): Promise<void> {
    const conn = this.#conn;
    this.channel.close(this.#clock());
    this.#pump();
    this.#stop();
    if (conn !== null) await Promise.race([conn.closed, new Promise((r) => setTimeout(r, timeoutMs))]);
  }

  /** Stops timers and drops the socket without a close handshake (after a fatal error). */
  abort(): void {
    this.#dropSocket(1000, "fatal");
    this.#stop();
  }

  #stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Drains commands, frames and events until the channel is quiet, then re-arms the timer. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        let progressed = false;
        for (let cmd = this.channel.pollCommand(); cmd; cmd = this.channel.pollCommand()) {
          progressed = true;
          if (cmd.type === "connect") this.#openSocket();
          else this.#dropSocket(cmd.code, cmd.reason);
        }
        for (let frame = this.channel.pollFrame(); frame !== undefined; frame = this.channel.pollFrame()) {
          progressed = true;
          this.#conn?.sendText(frame).catch(() => {}); // a failed write surfaces through the read side
        }
        for (let ev = this.channel.pollEvent(); ev; ev = this.channel.pollEvent()) {
          progressed = true;
          this.#onEvent(ev);
        }
        if (!progressed) break;
      }
    } finally {
      this.#pumping = false;
    }
    this.#armTimer();
  }

  #armTimer(): void {
    if (this.#stopped) return;
    const at = this.channel.pollTimeout();
    if (at === this.#timerAt && this.#timer !== undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.channel.handleTimeout(this.#clock());
      this.#pump();
    }, Math.max(0, Math.ceil(at - this.#clock())));
  }

  #openSocket(): void {
    this.#dropSocket(1000, "reconnect");
    const generation = ++this.#generation;
    const abort = new AbortController();
    this.#connecting = abort;
    const options = this.#connectOptions();
    log.debug("Connecting to portal", {
      host: options.hostHeader,
      port: options.port,
      user_agent: options.userAgent,
    });
    WebSocketConnection.connect({ ...options, signal: abort.signal }).then((conn) => {
      if (generation !== this.#generation) {
        conn.close(1000, "stale");
        return;
      }
      this.#connecting = null;
      this.#conn = conn;
      this.channel.handleOpen(this.#clock());
      this.#pump();
      void conn.run({
        onText: (text) => {
          if (generation !== this.#generation) return;
          this.channel.handleFrame(text, this.#clock());
          this.#pump();
        },
        onBinary: () => {
          if (generation === this.#generation) log.warn("Received non-text message from portal");
        },
        onClose: (info) => {
          if (generation !== this.#generation) return;
          this.#conn = null;
          this.channel.handleClosed(this.#clock(), info);
          this.#pump();
        },
      });
    }, (e: unknown) => {
      if (generation !== this.#generation) return;
      this.#connecting = null;
      if (e instanceof UpgradeError) this.channel.handleUpgradeError(e.status, this.#clock(), e.body);
      else if (e instanceof CertificateError) this.channel.handleCertificateError(this.#clock(), e.message);
      else this.channel.handleClosed(this.#clock(), { error: e instanceof Error ? e.message : String(e) });
      this.#pump();
    });
  }

  #dropSocket(code: number, reason: string): void {
    this.#generation++;
    this.#connecting?.abort();
    this.#connecting = null;
    this.#conn?.close(code, reason);
    this.#conn = null;
  }
}
