/**
 * Sans-IO Phoenix channel client (V1 JSON serializer) for the portal's `gateway` topic (spec
 * §2.3–2.5, with the §9 fixes: re-join after `phx_error`, backoff on HTTP 429).
 *
 * The driver (`src/io/portal_socket.ts`) owns the WebSocket. It executes the commands from
 * {@link PhoenixChannel.pollCommand} (`connect`, `close`), sends every frame from
 * {@link PhoenixChannel.pollFrame}, feeds socket events in through the `handle*` methods, and
 * calls {@link PhoenixChannel.handleTimeout} at {@link PhoenixChannel.pollTimeout}.
 *
 * @module
 */

import { Level, logger } from "../log.ts";
import type { Rng } from "../rng.ts";
import { RingQueue } from "../util/ring_queue.ts";
import { ExponentialBackoff } from "./backoff.ts";

const log = logger("fz_gateway::portal");
const wireSend = logger("wire::api::send");
const wireRecv = logger("wire::api::recv");

/** Heartbeat period; the portal closes sockets idle for 37 s. */
export const HEARTBEAT_INTERVAL_MS = 30_000;
/** A join not answered within this time is a transient error. */
export const JOIN_TIMEOUT_MS = 5_000;
/**
 * Upper bound for opening a connection (TCP, TLS and the HTTP upgrade). Upstream bounds the TCP
 * connect by 5 s and the rest not at all; a hung TLS handshake would stall it forever.
 */
export const OPEN_TIMEOUT_MS = 15_000;
/** More queued messages than this and the next send clears the queue first (upstream quirk). */
export const MAX_BUFFERED_MESSAGES = 32;
/** Topic of heartbeats. */
export const PHOENIX_TOPIC = "phoenix";

/** Why the channel gave up; `message` tells the operator what to do. */
export type PortalErrorKind =
  | "unauthorized"
  | "forbidden"
  | "invalid_params"
  | "client_error"
  | "tls_certificate"
  | "login_failed"
  | "token_expired"
  | "max_retries";

/** A fatal portal error (the gateway exits with code 1). */
export class PortalError extends Error {
  override name = "PortalError";
  readonly kind: PortalErrorKind;
  /** HTTP status of a refused upgrade, if that was the cause. */
  readonly status: number | null;

  constructor(kind: PortalErrorKind, message: string, status: number | null = null) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** What the channel reports to its owner. */
export type ChannelEvent<M> =
  /** The WebSocket is open; the join was queued. */
  | { readonly type: "connected" }
  /** The portal accepted the join: application messages flow now. */
  | { readonly type: "joined"; readonly topic: string }
  /** A typed application message. */
  | { readonly type: "message"; readonly topic: string; readonly message: M }
  /** A reply to one of our messages (empty ok replies, e.g. to heartbeats, are not reported). */
  | {
    readonly type: "reply";
    readonly topic: string;
    readonly ref: number;
    readonly ok: boolean;
    readonly response: unknown;
    /** For error replies: the portal's `reason`. */
    readonly reason: string | null;
  }
  /** The connection broke; the channel reconnects after `backoffMs`. */
  | {
    readonly type: "hiccup";
    readonly backoffMs: number;
    readonly maxElapsedMs: number;
    readonly error: string;
  }
  /** Unrecoverable: stop the gateway. */
  | { readonly type: "fatal"; readonly error: PortalError }
  /** {@link PhoenixChannel.close} was called: the channel is done. */
  | { readonly type: "closed" };

/** What the driver must do with its socket. */
export type ChannelCommand =
  /** Open a new WebSocket (drop any old one first). */
  | { readonly type: "connect" }
  /** Close (or abort) the current WebSocket. */
  | { readonly type: "close"; readonly code: number; readonly reason: string };

/** How a socket ended, as far as the driver knows. */
export interface CloseInfo {
  readonly code?: number;
  readonly reason?: string;
  /** A network/TLS/protocol error text, when the socket failed rather than closed. */
  readonly error?: string;
}

/** Construction options. */
export interface PhoenixChannelOptions<M> {
  /** The channel topic to join (`gateway`). */
  readonly topic: string;
  /** Typed parser for application events; throwing means "skip with a WARN". */
  readonly parseMessage: (event: string, payload: unknown) => M;
  /** Jitter for the reconnect backoff. */
  readonly rng: Rng;
  /** Reconnect budget (`FIREZONE_MAX_PARTITION_TIME`); default 15 min. */
  readonly maxPartitionTimeMs?: number;
}

type State = "idle" | "waiting" | "connecting" | "open" | "closed" | "failed";

/**
 * The channel state machine.
 *
 * @example
 * ```ts
 * const channel = new PhoenixChannel({ topic: "gateway", parseMessage: parseIngressMessage, rng });
 * channel.connect(now);                       // -> pollCommand(): { type: "connect" }
 * channel.handleOpen(now);                    // -> pollFrame(): the phx_join frame
 * channel.handleFrame('{"event":"phx_reply","payload":{"status":"ok","response":{}},"ref":0,"topic":"gateway"}', now);
 * channel.pollEvent();                        // { type: "connected" }, then { type: "joined", ... }
 * channel.send("gateway", flowAuthorized(ref)); // queued, sent by pollFrame()
 * ```
 */
export class PhoenixChannel<M> {
  readonly topic: string;
  readonly #parseMessage: (event: string, payload: unknown) => M;
  readonly #rng: Rng;
  readonly #maxPartitionTimeMs: number | undefined;

  readonly #queue = new RingQueue<string>(64);
  readonly #events = new RingQueue<ChannelEvent<M>>(16);
  readonly #commands = new RingQueue<ChannelCommand>(4);

  #state: State = "idle";
  #nextRef = 0;
  #lastNow = 0;
  #backoff: ExponentialBackoff | null = null;

  #connectAt = Infinity;
  #openDeadline = Infinity;
  #heartbeatAt = Infinity;

  #pendingJoin: string | null = null;
  #joinRef: number | null = null;
  #joinDeadline = Infinity;
  #joined = false;

  constructor(options: PhoenixChannelOptions<M>) {
    this.topic = options.topic;
    this.#parseMessage = options.parseMessage;
    this.#rng = options.rng;
    this.#maxPartitionTimeMs = options.maxPartitionTimeMs;
  }

  /** True while the topic is joined on an open socket (application messages flow). */
  get isJoined(): boolean {
    return this.#state === "open" && this.#joined;
  }

  /** True once the channel gave up or was closed. */
  get isFinished(): boolean {
    return this.#state === "failed" || this.#state === "closed";
  }

  /** Starts connecting (first connect of the process). No-op unless idle. */
  connect(now: number): void {
    this.#lastNow = now;
    if (this.#state !== "idle") return;
    this.#startConnecting(now);
  }

  /**
   * Forces a fresh connection (same URL), e.g. to get a new `init` when there are no relays. Ignored
   * while a connection attempt is already under way.
   */
  reconnect(now: number, reason: string): void {
    this.#lastNow = now;
    if (this.#state !== "open") {
      log.debug("Not reconnecting: already connecting", { reason });
      return;
    }
    log.info("Reconnecting to portal", { reason });
    this.#commands.push({ type: "close", code: 1000, reason: "reconnect" });
    this.#dropConnection();
    this.#backoff = null;
    this.#startConnecting(now);
  }

  /**
   * Closes the connection for good (shutdown). A `close` command and a `closed` event follow at once;
   * the driver flushes the close frame on its own.
   */
  close(now: number): void {
    this.#lastNow = now;
    if (this.#state === "failed" || this.#state === "closed") return;
    if (this.#state === "open" || this.#state === "connecting") {
      if (this.#state === "open") log.info("Closing connection to portal");
      this.#commands.push({ type: "close", code: 1000, reason: "goodbye" });
    }
    this.#dropConnection();
    this.#state = "closed";
    this.#events.push({ type: "closed" });
  }

  /**
   * Queues an application message; returns its ref. Messages wait until the join is answered and
   * survive reconnects; when more than {@link MAX_BUFFERED_MESSAGES} are waiting, the queue is
   * cleared first.
   */
  send(topic: string, message: { readonly event: string; readonly payload?: unknown }): number {
    if (this.#queue.length > MAX_BUFFERED_MESSAGES) {
      log.debug(
        `Dropping pending messages to portal because we exceeded the maximum of ${MAX_BUFFERED_MESSAGES}`,
      );
      this.#queue.clear();
    }
    const ref = this.#nextRef++;
    this.#queue.push(encodeFrame(topic, message.event, message.payload, ref));
    return ref;
  }

  /** The socket opened. */
  handleOpen(now: number): void {
    this.#lastNow = now;
    if (this.#state !== "connecting") return;
    this.#state = "open";
    this.#openDeadline = Infinity;
    this.#backoff = null; // the budget starts over once a connection is established
    this.#heartbeatAt = now + HEARTBEAT_INTERVAL_MS;
    this.#events.push({ type: "connected" });
    this.#queueJoin(now);
  }

  /** The upgrade was refused with an HTTP status. */
  handleUpgradeError(status: number, now: number, body = ""): void {
    this.#lastNow = now;
    if (this.#state !== "connecting") return;
    const detail = `HTTP ${status}${body.trim() === "" ? "" : ` - ${body.trim()}`}`;
    if (status === 429) {
      this.#hiccup(now, `the portal is rate-limiting connections (${detail})`, false);
      return;
    }
    if (status >= 400 && status < 500) {
      this.#fail(upgradeError(status, detail));
      return;
    }
    this.#hiccup(now, `websocket upgrade failed (${detail})`);
  }

  /** TLS refused the portal's certificate: fatal, as upstream ("invalid peer certificate"). */
  handleCertificateError(now: number, detail: string): void {
    this.#lastNow = now;
    if (this.#state !== "connecting") return;
    this.#fail(
      new PortalError(
        "tls_certificate",
        `The portal's TLS certificate was rejected (${detail}). Check FIREZONE_API_URL and the system clock; ` +
          "for a private CA add it with DENO_CERT=<file> or use the OS store with DENO_TLS_CA_STORE=system.",
      ),
    );
  }

  /** The socket closed or failed (before or after opening). */
  handleClosed(now: number, info: CloseInfo = {}): void {
    this.#lastNow = now;
    switch (this.#state) {
      case "connecting":
        this.#hiccup(now, `failed to connect to the portal: ${describeClose(info)}`);
        return;
      case "open":
        this.#commands.push({ type: "close", code: 1000, reason: "closed" });
        this.#hiccup(now, `websocket connection closed: ${describeClose(info)}`);
        return;
      default:
        return;
    }
  }

  /** A text frame arrived. Malformed frames are logged (WARN) and skipped. */
  handleFrame(text: string, now: number): void {
    this.#lastNow = now;
    if (this.#state !== "open") return;
    if (wireRecv.traceEnabled) wireRecv.trace(text);
    let frame: { topic: string; event: string; payload: unknown; ref: number | null };
    try {
      frame = parseFrame(text);
    } catch (e) {
      log.warn(`Failed to deserialize message: ${(e as Error).message}`);
      return;
    }
    switch (frame.event) {
      case "phx_reply":
        this.#handleReply(frame);
        return;
      case "phx_error":
        if (frame.topic === this.topic) {
          log.warn(`The portal reported an error on the ${this.topic} channel; joining it again`);
          this.#queueJoin(now);
        } else {
          log.debug("Received empty error response", { topic: frame.topic, ref: frame.ref });
        }
        return;
      case "phx_close":
        this.#commands.push({ type: "close", code: 1000, reason: "phx_close" });
        this.#hiccup(now, "portal closed the channel (phx_close)");
        return;
      case "disconnect": {
        const reason = isObject(frame.payload) ? frame.payload.reason : undefined;
        if (reason === "token_expired") {
          this.#fail(
            new PortalError(
              "token_expired",
              "The portal disconnected the gateway because its token expired. Create a new token for this " +
                "site in the admin portal and set it in FIREZONE_TOKEN.",
            ),
          );
        } else {
          log.warn(`Failed to deserialize message: unknown disconnect reason ${JSON.stringify(reason)}`);
        }
        return;
      }
      default:
        try {
          const message = this.#parseMessage(frame.event, frame.payload);
          this.#events.push({ type: "message", topic: frame.topic, message });
        } catch (e) {
          log.warn(`Failed to deserialize message: ${(e as Error).message}`, { event: frame.event });
        }
    }
  }

  /** Fires every due timer: reconnect, open/join/close timeouts, heartbeat. */
  handleTimeout(now: number): void {
    this.#lastNow = now;
    switch (this.#state) {
      case "waiting":
        if (now >= this.#connectAt) this.#startConnecting(now);
        return;
      case "connecting":
        if (now >= this.#openDeadline) {
          this.#commands.push({ type: "close", code: 1000, reason: "timeout" });
          this.#hiccup(now, `operation timed out after ${OPEN_TIMEOUT_MS / 1000}s`);
        }
        return;
      case "open":
        if (this.#joinRef !== null && now >= this.#joinDeadline) {
          this.#commands.push({ type: "close", code: 1000, reason: "join timeout" });
          this.#hiccup(now, `the portal did not answer the join within ${JOIN_TIMEOUT_MS / 1000}s`);
          return;
        }
        if (now >= this.#heartbeatAt) {
          this.send(PHOENIX_TOPIC, { event: "heartbeat", payload: {} });
          this.#heartbeatAt = now + HEARTBEAT_INTERVAL_MS;
        }
        return;
      default:
        return;
    }
  }

  /** The earliest instant {@link handleTimeout} has work; `Infinity` if none. */
  pollTimeout(): number {
    switch (this.#state) {
      case "waiting":
        return this.#connectAt;
      case "connecting":
        return this.#openDeadline;
      case "open":
        return this.#joinRef !== null ? Math.min(this.#joinDeadline, this.#heartbeatAt) : this.#heartbeatAt;
      default:
        return Infinity;
    }
  }

  /**
   * The next text frame to write to the socket. The join goes first; nothing else is released until
   * the portal answered it. Handing out a frame postpones the heartbeat (measured from the last
   * `now` the channel saw).
   */
  pollFrame(): string | undefined {
    if (this.#state !== "open") return undefined;
    let frame: string | undefined;
    if (this.#pendingJoin !== null) {
      frame = this.#pendingJoin;
      this.#pendingJoin = null;
    } else if (this.#joinRef === null) {
      frame = this.#queue.shift();
    }
    if (frame !== undefined) {
      this.#heartbeatAt = this.#lastNow + HEARTBEAT_INTERVAL_MS;
      if (wireSend.traceEnabled) wireSend.trace(frame);
    }
    return frame;
  }

  /** The next socket command for the driver. */
  pollCommand(): ChannelCommand | undefined {
    return this.#commands.shift();
  }

  /** The next event for the owner. */
  pollEvent(): ChannelEvent<M> | undefined {
    return this.#events.shift();
  }

  #startConnecting(now: number): void {
    this.#state = "connecting";
    this.#connectAt = Infinity;
    this.#openDeadline = now + OPEN_TIMEOUT_MS;
    this.#commands.push({ type: "connect" });
  }

  #queueJoin(now: number): void {
    const ref = this.#nextRef++;
    this.#pendingJoin = encodeFrame(this.topic, "phx_join", null, ref);
    this.#joinRef = ref;
    this.#joinDeadline = now + JOIN_TIMEOUT_MS;
    this.#joined = false;
  }

  #handleReply(frame: { topic: string; payload: unknown; ref: number | null }): void {
    const payload = frame.payload;
    if (!isObject(payload) || (payload.status !== "ok" && payload.status !== "error")) {
      log.warn("Failed to deserialize message: phx_reply without a valid status");
      return;
    }
    if (frame.ref === null) {
      log.warn("Discarding reply because server omitted reference");
      return;
    }
    const isJoinReply = frame.ref === this.#joinRef && frame.topic === this.topic;
    if (payload.status === "error") {
      const reason = errorReason(payload.response);
      if (isJoinReply) {
        this.#fail(
          new PortalError(
            "login_failed",
            `The portal refused to let this gateway join the "${this.topic}" channel (reason: ${reason}). ` +
              "Check that the gateway version is supported and that the account is enabled.",
          ),
        );
        return;
      }
      log.warn(`Request failed: ${reason}`, { topic: frame.topic, ref: frame.ref });
      this.#events.push({
        type: "reply",
        topic: frame.topic,
        ref: frame.ref,
        ok: false,
        response: payload.response,
        reason,
      });
      return;
    }
    if (isJoinReply) {
      this.#joinRef = null;
      this.#joinDeadline = Infinity;
      this.#joined = true;
      log.info(`Joined ${this.topic} room on portal`);
      this.#events.push({ type: "joined", topic: this.topic });
      return;
    }
    if (isObject(payload.response) && Object.keys(payload.response).length === 0) {
      if (log.enabled(Level.Trace)) log.trace(`Received empty reply for request ${frame.ref}`);
      return;
    }
    this.#events.push({
      type: "reply",
      topic: frame.topic,
      ref: frame.ref,
      ok: true,
      response: payload.response,
      reason: null,
    });
  }

  /** A transient error: schedule a reconnect or give up when the budget is spent. */
  #hiccup(now: number, error: string, allowImmediate = true): void {
    this.#dropConnection();
    let delay: number | null;
    if (this.#backoff === null) {
      this.#backoff = new ExponentialBackoff(now, this.#rng, this.#maxPartitionTimeMs);
      delay = allowImmediate ? 0 : this.#backoff.next(now);
    } else {
      delay = this.#backoff.next(now);
    }
    if (delay === null) {
      const budget = formatDuration(this.#backoff.maxElapsedMs);
      this.#fail(
        new PortalError(
          "max_retries",
          `Could not reach the portal for ${budget}; giving up. Last error: ${error}. Check the network path ` +
            "to FIREZONE_API_URL, or raise FIREZONE_MAX_PARTITION_TIME.",
        ),
      );
      return;
    }
    this.#state = "waiting";
    this.#connectAt = now + delay;
    log.info(`Hiccup in portal connection: ${error}`, { backoff: `${delay}ms` });
    this.#events.push({ type: "hiccup", backoffMs: delay, maxElapsedMs: this.#backoff.maxElapsedMs, error });
  }

  #fail(error: PortalError): void {
    if (this.#state === "open" || this.#state === "connecting") {
      this.#commands.push({ type: "close", code: 1000, reason: "fatal" });
    }
    this.#dropConnection();
    this.#state = "failed";
    this.#events.push({ type: "fatal", error });
  }

  /** Forgets per-connection state; queued application messages survive. */
  #dropConnection(): void {
    this.#pendingJoin = null;
    this.#joinRef = null;
    this.#joinDeadline = Infinity;
    this.#joined = false;
    this.#heartbeatAt = Infinity;
    this.#openDeadline = Infinity;
    this.#connectAt = Infinity;
  }
}

/**
 * One egress frame with the field order `topic, event, payload, ref`; an `undefined` payload (a
 * unit variant upstream) omits the key.
 */
export function encodeFrame(topic: string, event: string, payload: unknown, ref: number): string {
  if (payload === undefined) return JSON.stringify({ topic, event, ref });
  return JSON.stringify({ topic, event, payload, ref });
}

/**
 * Parses an ingress frame: an object with string `topic` and `event`, any `payload` (absent →
 * null), an integer or null/absent `ref`; `join_ref` and unknown keys are ignored.
 * @throws SyntaxError when the text is not such a frame
 */
export function parseFrame(
  text: string,
): { topic: string; event: string; payload: unknown; ref: number | null } {
  const v: unknown = JSON.parse(text);
  if (!isObject(v)) throw new SyntaxError("frame is not a JSON object");
  if (typeof v.topic !== "string") throw new SyntaxError("frame has no string `topic`");
  if (typeof v.event !== "string") throw new SyntaxError("frame has no string `event`");
  const ref = v.ref;
  if (
    ref !== undefined && ref !== null && !(typeof ref === "number" && Number.isSafeInteger(ref) && ref >= 0)
  ) {
    throw new SyntaxError(`frame \`ref\` must be a non-negative integer or null, got ${JSON.stringify(ref)}`);
  }
  return {
    topic: v.topic,
    event: v.event,
    payload: v.payload === undefined ? null : v.payload,
    ref: ref ?? null,
  };
}

/**
 * The `reason` of an error reply, named like upstream's `ErrorReply`: `unmatched topic`,
 * `invalid_version`, `disabled`, or the portal's own text for anything else.
 */
export function errorReason(response: unknown): string {
  if (isObject(response) && typeof response.reason === "string") return response.reason;
  return "other";
}

function upgradeError(status: number, detail: string): PortalError {
  switch (status) {
    case 401:
      return new PortalError(
        "unauthorized",
        `The portal rejected the token (${detail}). Check FIREZONE_TOKEN: it must be the current token of ` +
          "this gateway's site, as shown in the admin portal when the gateway was added.",
        status,
      );
    case 403:
      return new PortalError(
        "forbidden",
        `The portal refused this gateway (${detail}). The account may be disabled or the token not allowed ` +
          "to connect gateways; check the account and FIREZONE_TOKEN in the admin portal.",
        status,
      );
    case 422:
      return new PortalError(
        "invalid_params",
        `The portal rejected the connection parameters (${detail}). Check FIREZONE_NAME and FIREZONE_ID.`,
        status,
      );
    default:
      return new PortalError(
        "client_error",
        `The portal refused the connection (${detail}). Check FIREZONE_API_URL and FIREZONE_TOKEN.`,
        status,
      );
  }
}

function describeClose(info: CloseInfo): string {
  if (info.error !== undefined && info.error !== "") return info.error;
  if (info.code !== undefined) {
    return `code ${info.code}${info.reason !== undefined && info.reason !== "" ? ` (${info.reason})` : ""}`;
  }
  return "websocket stream was closed";
}

function formatDuration(ms: number): string {
  if (ms === Infinity) return "ever";
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
