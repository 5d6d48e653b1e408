/**
 * Portal mode: wires configuration → identity → login URL → tunnel → health → portal channel →
 * message handlers → signals → exit code, in upstream's start-up order (spec §1.2):
 *
 * 1. log "`gateway` started logging"; 2. resolve the Firezone ID (§1.3); 3. telemetry/metrics
 * (accepted, not implemented: logged); 4. build the login URL (§2.1); 5. read `/etc/resolv.conf`;
 * 6. generate the X25519 key and create the tunnel through the injected {@link TunnelFactory};
 * 7. serve `/healthz` and `/readyz`; 8. connect to the portal and handle its messages (§2.6) one at
 * a time, in order; 9. run until a fatal error (exit 1) or SIGINT/SIGTERM (goodbye, exit 0).

 *
 * @module
 */

import { x25519 } from "@noble/curves/ed25519.js";
import type { Config } from "../config.ts";
import { createHealthApp, type Readiness } from "../health/app.ts";
import { type HealthServer, startHealthServer } from "../health/server.ts";
import { externalIdFor } from "../identity.ts";
import { logger } from "../log.ts";
import { LoopLagMonitor } from "./loop_lag.ts";
import { LoginUrl } from "../portal/login_url.ts";
import {
  broadcastIceCandidates,
  broadcastInvalidatedIceCandidates,
  connectionReady,
  encodeBase64,
  flowAuthorized,
  type IngressMessage,
  parseIngressMessage,
} from "../portal/messages.ts";
import { type ChannelEvent, PhoenixChannel } from "../portal/phoenix_channel.ts";
import type { TunnelControl, TunnelEvent, TunnelFactory } from "../portal/tunnel_control.ts";
import { formatUserAgent, type OsInfo } from "../portal/user_agent.ts";
import { randomBytes, type Rng } from "../rng.ts";
import { resolveFirezoneId } from "./identity_store.ts";
import { PortalSocket } from "./portal_socket.ts";
import { readNameservers, readUptimeSeconds } from "./system_info.ts";

const log = logger("fz_gateway::gateway_app");

/** The portal topic of gateways. */
export const GATEWAY_TOPIC = "gateway";
/** Hard limit for a graceful shutdown. */
export const SHUTDOWN_TIMEOUT_MS = 5_000;

/** Everything portal mode needs; I/O pieces are injectable for tests. */
export interface GatewayAppOptions {
  readonly config: Config;
  readonly createTunnel: TunnelFactory;
  readonly rng: Rng;
  readonly osInfo: OsInfo;
  /** Our own version (deno.json), for the start-up log line. */
  readonly version: string;
  /** Directory of `gateway_id`; `/var/lib/firezone` by default. */
  readonly stateDir?: string;
  /** `/etc/resolv.conf` by default. */
  readonly resolvConfPath?: string;
  /** Installs the shutdown-signal handler and returns its remover; none by default. */
  readonly onShutdownSignal?: (handler: (signal: string) => void) => () => void;
  readonly shutdownTimeoutMs?: number;
}

/** One run of portal mode. */
export class GatewayApp {
  readonly #options: GatewayAppOptions;
  #tunnel: TunnelControl | null = null;
  /** Main-thread responsiveness for `GET /metrics/loop-lag`. */
  readonly #lag = new LoopLagMonitor();
  #portal: PortalSocket<IngressMessage> | null = null;
  #health: HealthServer | null = null;
  #removeSignals: () => void = () => {};
  #work: Promise<void> = Promise.resolve();
  #finished = false;
  #resolveExit!: (code: number) => void;
  readonly #exit = new Promise<number>((resolve) => this.#resolveExit = resolve);

  constructor(options: GatewayAppOptions) {
    this.#options = options;
  }

  /** The port the health server listens on (null when it could not bind or has not started). */
  get healthPort(): number | null {
    return this.#health?.port ?? null;
  }

  /** What `/readyz` reports: joined to the portal and TUN up, else the reasons. */
  readiness(): Readiness {
    const reasons: string[] = [];
    if (!this.#portal?.channel.isJoined) reasons.push("portal channel not joined");
    if (this.#tunnel === null) reasons.push("tunnel not created yet");
    else if (!this.#tunnel.isTunUp()) {
      reasons.push("TUN device not configured yet (waiting for init from the portal)");
    }
    return reasons.length === 0 ? { ready: true } : { ready: false, reason: reasons.join("; ") };
  }

  /** Starts everything and resolves with the process exit code. */
  async run(): Promise<number> {
    const { config, osInfo } = this.#options;
    log.info("`gateway` started logging", {
      arch: osInfo.arch ?? "unknown",
      os: "linux",
      version: this.#options.version,
      system_uptime: readUptimeSeconds() ?? undefined,
    });
    log.debug("Configuration", { config: JSON.stringify(config) });
    this.#removeSignals = this.#options.onShutdownSignal?.((signal) => void this.shutdown(signal)) ??
      (() => {});

    try {
      await this.#start();
    } catch (e) {
      await this.#fail(errorText(e));
    }
    return await this.#exit;
  }

  /** Graceful stop (signals): goodbye to clients, leave the portal, exit 0 within the time limit. */
  async shutdown(signal: string): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    log.info(signal === "SIGTERM" ? "Received SIGTERM, goodbye!" : "Received CTRL+C, goodbye!");
    await this.#teardown();
    this.#resolveExit(0);
  }

  async #start(): Promise<void> {
    const { config, rng } = this.#options;
    const firezoneId = await resolveFirezoneId(config.firezoneId, {
      rng,
      ...(this.#options.stateDir === undefined ? {} : { stateDir: this.#options.stateDir }),
    });
    if (!config.noTelemetry) {
      log.debug("Telemetry (Sentry, PostHog) is not implemented in fz-gateway: nothing is sent");
    }
    if (config.metrics !== null) {
      log.warn("Metrics export is not implemented in this build; --metrics is ignored", {
        exporter: config.metrics,
      });
    }

    const login = new LoginUrl(config.apiUrl, {
      token: config.token,
      externalId: externalIdFor(firezoneId),
      name: config.firezoneName,
    });
    const nameservers = readNameservers(this.#options.resolvConfPath);

    const privateKey = randomBytes(rng, 32);
    const publicKey = encodeBase64(x25519.getPublicKey(privateKey));
    try {
      this.#tunnel = await this.#options.createTunnel({
        privateKey,
        nameservers,
        validateChecksums: config.validateChecksums,
        logFormat: this.#options.config.logFormat,
      });
      this.#tunnel.setEventListener((event) => this.#onTunnelEvent(event));
    } catch (e) {
      throw new Error(`Failed to create tunnel: ${errorText(e)}`);
    }
    if (this.#finished) {
      // A signal arrived while the tunnel was being created: teardown already ran without it.
      await this.#tunnel?.shutdown().catch(() => {});
      return;
    }

    this.#lag.start();
    this.#health = startHealthServer(
      config.healthCheckAddr,
      createHealthApp(() => this.readiness(), {
        metrics: () => this.#tunnel?.stats() ?? null,
        loopLag: () => this.#lag.read(),
      }),
    );

    const userAgent = formatUserAgent(this.#options.osInfo);
    const channel = new PhoenixChannel<IngressMessage>({
      topic: GATEWAY_TOPIC,
      parseMessage: parseIngressMessage,
      rng,
      maxPartitionTimeMs: config.maxPartitionTimeMs,
    });
    this.#portal = new PortalSocket({
      channel,
      connectOptions: () => ({
        hostname: config.apiUrl.hostname,
        port: config.apiUrl.port,
        tls: config.apiUrl.scheme === "wss",
        hostHeader: config.apiUrl.hostHeader,
        target: login.requestTarget(publicKey),
        userAgent,
      }),
      onEvent: (event) => this.#onChannelEvent(event),
    });
    log.info("Connecting to portal", { url: login.redacted(publicKey), user_agent: userAgent });
    this.#portal.start();
  }

  #onChannelEvent(event: ChannelEvent<IngressMessage>): void {
    switch (event.type) {
      case "connected":
        log.info("Connected to portal", { host: this.#options.config.apiUrl.hostHeader });
        return;
      case "message": {
        const message = event.message;
        this.#work = this.#work.then(() => this.#finished ? undefined : this.#handle(message)).catch(
          (e) => this.#fail(errorText(e)),
        );
        return;
      }
      case "fatal":
        void this.#fail(event.error.message);
        return;
      default:
        return;
    }
  }

  /** Handles one portal message (spec §2.6); a thrown error is fatal. */
  async #handle(message: IngressMessage): Promise<void> {
    if (message.event === "init") {
      const init = message.payload;
      log.info("Received init from portal", {
        ipv4: init.interface.ipv4,
        ipv6: init.interface.ipv6,
        relays: init.relays.length,
        authorizations: init.authorizations.length,
      });
    }
    const tunnel = this.#requireTunnel(message.event);
    switch (message.event) {
      case "init": {
        const init = message.payload;
        await tunnel.init(init);
        try {
          await tunnel.configureTun(init.interface);
        } catch (e) {
          throw new Error(`Failed to set up TUN device: ${errorText(e)}`);
        }
        return;
      }
      case "authorize_flow": {
        const flow = message.payload;
        const result = await this.#nonFatal("authorize flow", () => tunnel.authorizeFlow(flow), {
          client: flow.client.id,
          resource: flow.resource.id,
        });
        if (result === "accepted") this.#send(flowAuthorized(flow.ref));
        else if (result === "no_relays") this.#reconnectForRelays();
        return;
      }
      case "request_connection": {
        const req = message.payload;
        const result = await this.#nonFatal("accept connection", () => tunnel.requestConnection(req), {
          client: req.client.id,
          resource: req.resource.id,
        });
        if (result?.type === "accepted") this.#send(connectionReady(req.ref, result.iceCredentials));
        else if (result?.type === "no_relays") this.#reconnectForRelays();
        else if (result?.type === "failed") {
          log.debug("Failed to accept connection", { client: req.client.id, reason: result.reason });
        }
        return;
      }
      case "allow_access": {
        const p = message.payload;
        await this.#nonFatal("allow access", () => tunnel.allowAccess(p), {
          client: p.clientId,
          resource: p.resource.id,
        });
        return;
      }
      case "reject_access":
        await this.#nonFatal("reject access", () => tunnel.rejectAccess(message.payload));
        return;
      case "ice_candidates":
        await this.#nonFatal("add ICE candidates", () => tunnel.addIceCandidates(message.payload));
        return;
      case "invalidate_ice_candidates":
        await this.#nonFatal("remove ICE candidates", () => tunnel.removeIceCandidates(message.payload));
        return;
      case "relays_presence":
        await this.#nonFatal("update relays", () => tunnel.updateRelays(message.payload));
        return;
      case "resource_updated":
        await this.#nonFatal("update resource", () => tunnel.updateResource(message.payload));
        return;
      case "access_authorization_expiry_updated":
        await this.#nonFatal("update expiry", () => tunnel.updateExpiry(message.payload), {
          client: message.payload.clientId,
          resource: message.payload.resourceId,
        });
        return;
    }
  }

  #requireTunnel(event: string): TunnelControl {
    if (this.#tunnel !== null) return this.#tunnel;
    throw new Error(`Cannot handle "${event}" from the portal: no tunnel`);
  }

  async #nonFatal<T>(
    what: string,
    f: () => T | Promise<T>,
    fields: Record<string, unknown> = {},
  ): Promise<T | null> {
    try {
      return await f();
    } catch (e) {
      log.warn(`Failed to ${what}`, { ...fields, error: errorText(e) });
      return null;
    }
  }

  #reconnectForRelays(): void {
    log.info("No TURN servers available; reconnecting to the portal to get fresh relays");
    this.#portal?.reconnect("no TURN servers");
  }

  #send(message: { readonly event: string; readonly payload?: unknown }): void {
    this.#portal?.send(GATEWAY_TOPIC, message);
  }

  #onTunnelEvent(event: TunnelEvent): void {
    if (this.#finished) return;
    switch (event.type) {
      case "new_ice_candidates":
        this.#send(broadcastIceCandidates([event.clientId], event.candidates));
        return;
      case "invalidated_ice_candidates":
        this.#send(broadcastInvalidatedIceCandidates([event.clientId], event.candidates));
        return;
      case "fatal":
        void this.#fail(`Tunnel failed: ${event.error}`);
        return;
    }
  }

  /** A fatal error: tell the operator, stop everything, exit 1. */
  async #fail(message: string): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    log.error(`Failed to start Gateway: ${message}`);
    await this.#teardown();
    this.#resolveExit(1);
  }

  async #teardown(): Promise<void> {
    this.#removeSignals();
    const limit = this.#options.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), limit));
    const steps = (async () => {
      if (this.#tunnel !== null) {
        await this.#tunnel.shutdown().catch((e) =>
          log.warn("Tunnel shutdown failed", { error: errorText(e) })
        );
      }
      await this.#portal?.close();
      await this.#health?.shutdown();
      this.#lag.stop();
    })();
    const outcome = await Promise.race([steps.then(() => "done" as const), deadline]);
    clearTimeout(timer);
    if (outcome === "timeout") log.warn(`Shutdown did not finish within ${limit / 1000}s; exiting anyway`);
  }
}

/** Runs portal mode and resolves with the exit code. */
export function runGateway(options: GatewayAppOptions): Promise<number> {
  return new GatewayApp(options).run();
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
