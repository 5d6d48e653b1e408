/**
 * Portal mode's {@link TunnelControl}: the main-thread proxy of the gateway core running in the
 * packet worker. Portal messages go to the worker through the mailbox; answers, ICE candidates and
 * DNS resolution requests come back as worker events. DNS resolution (for DNS resources) and the
 * user-space DNS forwarder on the tunnel address run here, on the main thread.
 *
 * @module
 */

import { logger } from "../log.ts";
import { logFilterEnv } from "../log_filter.ts";
import type {
  AllowAccessMessage,
  AuthorizeFlowMessage,
  ExpiryUpdatedMessage,
  IceCandidatesMessage,
  InitMessage,
  InterfaceConfig,
  RejectAccessMessage,
  RelaysPresenceMessage,
  RequestConnectionMessage,
  ResourceDescription,
} from "../portal/messages.ts";
import type {
  AuthorizeFlowResult,
  RequestConnectionResult,
  TunnelControl,
  TunnelEventListener,
  TunnelOptions,
} from "../portal/tunnel_control.ts";
import { DnsForwarder } from "./dns_forwarder.ts";
import { DnsResolver, ResolutionLimitError } from "./dns_resolver.ts";
import { PacketWorkerHost } from "./worker_host.ts";
import type { GatewayOp, WorkerEvent } from "./worker_protocol.ts";

const log = logger("fz_gateway::tunnel");

/** Options beyond {@link TunnelOptions}, for tests. */
export interface WorkerTunnelExtras {
  readonly resolver?: DnsResolver;
  readonly forwarder?: DnsForwarder;
  readonly offload?: boolean;
  readonly logFormat?: "human" | "json";
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** Starts the packet worker in gateway mode and returns its control proxy. */
export async function startWorkerTunnel(
  options: TunnelOptions,
  extras: WorkerTunnelExtras = {},
): Promise<WorkerTunnel> {
  const host = await PacketWorkerHost.start(
    { mode: "gateway", privateKey: options.privateKey, validateChecksums: options.validateChecksums },
    {
      logFormat: extras.logFormat ?? options.logFormat ?? "human",
      logFilter: logFilterEnv(Deno.env.toObject()),
      offload: extras.offload ?? true,
    },
  );
  log.info("Data plane started", {
    interface: host.info.tunName,
    udp_v4: host.info.udpPorts.v4 ?? "none",
    udp_v6: host.info.udpPorts.v6 ?? "none",
    crypto: host.info.crypto,
    offloads: host.info.offloads,
  });
  return new WorkerTunnel(
    host,
    extras.resolver ?? new DnsResolver(),
    extras.forwarder ?? new DnsForwarder(options.nameservers),
  );
}

export class WorkerTunnel implements TunnelControl {
  readonly #host: PacketWorkerHost;
  readonly #resolver: DnsResolver;
  readonly #forwarder: DnsForwarder;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #listener: TunnelEventListener = () => {};
  #tunUp = false;
  #stopped = false;

  constructor(host: PacketWorkerHost, resolver: DnsResolver, forwarder: DnsForwarder) {
    this.#host = host;
    this.#resolver = resolver;
    this.#forwarder = forwarder;
    host.onEvent((e) => this.#onEvent(e));
    host.onExit((reason) => {
      this.#failPending(new Error(`packet worker stopped: ${reason}`));
      this.#listener({ type: "fatal", error: `The packet worker stopped: ${reason}` });
    });
  }

  /** Data-path counters (for `/metrics`), posted by the worker about once a second. */
  stats(): unknown {
    return this.#host.stats;
  }

  setEventListener(listener: TunnelEventListener): void {
    this.#listener = listener;
  }

  async init(message: InitMessage): Promise<void> {
    await this.#call({ op: "init", id: this.#id(), msg: message });
  }

  async configureTun(config: InterfaceConfig): Promise<void> {
    await this.#call({ op: "configureTun", id: this.#id(), config });
    this.#tunUp = true;
    // §2.6.1 step 7: (re)bind the DNS forwarder on <ip>:53535; both binds failing is fatal (throws).
    await this.#forwarder.rebind([config.ipv4, config.ipv6]);
  }

  isTunUp(): boolean {
    return this.#tunUp;
  }

  async authorizeFlow(message: AuthorizeFlowMessage): Promise<AuthorizeFlowResult> {
    return await this.#call({ op: "authorizeFlow", id: this.#id(), msg: message }) as AuthorizeFlowResult;
  }

  async requestConnection(message: RequestConnectionMessage): Promise<RequestConnectionResult> {
    const domain = message.client.domain;
    let resolved: string[] | null = null;
    if (domain) {
      try {
        resolved = await this.#resolver.resolve(domain.name);
      } catch (e) {
        return { type: "failed", reason: `Cannot resolve ${domain.name}: ${(e as Error).message}` };
      }
    }
    return await this.#call({
      op: "requestConnection",
      id: this.#id(),
      msg: message,
      resolved,
    }) as RequestConnectionResult;
  }

  async allowAccess(message: AllowAccessMessage): Promise<void> {
    let resolved: string[] | null = null;
    if (message.payload) {
      try {
        resolved = await this.#resolver.resolve(message.payload.name);
      } catch (e) {
        // §2.6.4: continue with an empty resolved set.
        log.debug("Failed to resolve the domain of allow_access", { error: (e as Error).message });
        resolved = [];
      }
    }
    await this.#call({ op: "allowAccess", id: this.#id(), msg: message, resolved });
  }

  rejectAccess(message: RejectAccessMessage): void {
    this.#send({ op: "rejectAccess", msg: message });
  }

  addIceCandidates(message: IceCandidatesMessage): void {
    this.#send({ op: "addIceCandidates", msg: message });
  }

  removeIceCandidates(message: IceCandidatesMessage): void {
    this.#send({ op: "removeIceCandidates", msg: message });
  }

  updateRelays(message: RelaysPresenceMessage): void {
    this.#send({ op: "updateRelays", msg: message });
  }

  updateResource(resource: ResourceDescription): void {
    this.#send({ op: "updateResource", resource });
  }

  updateExpiry(message: ExpiryUpdatedMessage): void {
    this.#send({ op: "updateExpiry", msg: message });
  }

  async shutdown(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      await Promise.race([
        this.#call({ op: "goodbye", id: this.#id() }),
        new Promise((r) => setTimeout(r, 1_000)),
      ]);
    } catch (e) {
      log.debug("Goodbye failed", { error: (e as Error).message });
    }
    await this.#forwarder.close();
    await this.#host.stop();
    this.#failPending(new Error("tunnel shut down"));
  }

  #id(): number {
    return this.#nextId++;
  }

  /**
   * Fire-and-forget ops (reject_access, candidates, ...). Losing one would leave the data plane out
   * of step with the portal (e.g. access not revoked), so a failed delivery is fatal.
   */
  #send(op: GatewayOp): void {
    if (this.#host.send({ type: "gateway", op }) || this.#stopped) return;
    this.#listener({
      type: "fatal",
      error:
        `The data plane could not take the portal message "${op.op}" (packet worker gone or message too large)`,
    });
  }

  #call(op: GatewayOp & { id: number }): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#pending.set(op.id, { resolve, reject });
      if (!this.#host.send({ type: "gateway", op })) {
        this.#pending.delete(op.id);
        reject(
          new Error(`the data plane could not take "${op.op}" (packet worker gone or message too large)`),
        );
      }
    });
  }

  #onEvent(event: WorkerEvent): void {
    switch (event.type) {
      case "reply": {
        const p = this.#pending.get(event.id);
        if (!p) return;
        this.#pending.delete(event.id);
        if (event.error !== undefined) p.reject(new Error(event.error));
        else p.resolve(event.result);
        break;
      }
      case "tunnel":
        this.#listener(event.event);
        break;
      case "resolve":
        this.#resolve(event.requestId, event.domain);
        break;
    }
  }

  async #resolve(requestId: number, domain: string): Promise<void> {
    let ips: string[] | null = null;
    let dropped = false;
    try {
      ips = await this.#resolver.resolve(domain);
    } catch (e) {
      // Over the concurrency cap upstream drops the request unanswered (the client asks again).
      dropped = e instanceof ResolutionLimitError;
      if (!dropped) {
        log.debug("DNS resolution for a DNS resource failed", { domain, error: (e as Error).message });
      }
    }
    if (!this.#stopped) this.#send({ op: "dnsResolved", requestId, ips, dropped });
  }

  #failPending(error: Error): void {
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }
}
