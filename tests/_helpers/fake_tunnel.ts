/**
 * A recording {@link TunnelControl} for control-plane tests: records every call, answers with
 * scripted results, and can emit tunnel events.
 *
 * @module
 */

import type {
  AuthorizeFlowResult,
  RequestConnectionResult,
  TunnelControl,
  TunnelEvent,
  TunnelEventListener,
  TunnelOptions,
} from "../../src/portal/tunnel_control.ts";
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
} from "../../src/portal/messages.ts";

/** One recorded call: method name and its argument. */
export interface RecordedCall {
  readonly method: string;
  readonly arg: unknown;
}

/** The fake. Set the `next*` fields to script answers. */
export class RecordingTunnel implements TunnelControl {
  readonly calls: RecordedCall[] = [];
  options: TunnelOptions | null = null;
  tunUp = false;
  nextAuthorizeFlow: AuthorizeFlowResult = "accepted";
  nextRequestConnection: RequestConnectionResult = {
    type: "accepted",
    iceCredentials: { username: "gwufrag", password: "gwpassword0123456789ab" },
  };
  /** When set, `configureTun` rejects with this error. */
  configureTunError: Error | null = null;
  #listener: TunnelEventListener | null = null;

  /** A factory returning this instance (and recording the options). */
  factory = (options: TunnelOptions): Promise<TunnelControl> => {
    this.options = options;
    return Promise.resolve(this);
  };

  /** Emits an event to the gateway app. */
  emit(event: TunnelEvent): void {
    this.#listener?.(event);
  }

  /** Names of the recorded calls, in order. */
  methods(): string[] {
    return this.calls.map((c) => c.method);
  }

  setEventListener(listener: TunnelEventListener): void {
    this.#listener = listener;
  }

  init(message: InitMessage): Promise<void> {
    this.#record("init", message);
    return Promise.resolve();
  }

  configureTun(config: InterfaceConfig): Promise<void> {
    this.#record("configureTun", config);
    if (this.configureTunError) return Promise.reject(this.configureTunError);
    this.tunUp = true;
    return Promise.resolve();
  }

  stats(): unknown {
    return { fake: true };
  }

  isTunUp(): boolean {
    return this.tunUp;
  }

  authorizeFlow(message: AuthorizeFlowMessage): Promise<AuthorizeFlowResult> {
    this.#record("authorizeFlow", message);
    return Promise.resolve(this.nextAuthorizeFlow);
  }

  requestConnection(message: RequestConnectionMessage): Promise<RequestConnectionResult> {
    this.#record("requestConnection", message);
    return Promise.resolve(this.nextRequestConnection);
  }

  allowAccess(message: AllowAccessMessage): Promise<void> {
    this.#record("allowAccess", message);
    return Promise.resolve();
  }

  rejectAccess(message: RejectAccessMessage): void {
    this.#record("rejectAccess", message);
  }

  addIceCandidates(message: IceCandidatesMessage): void {
    this.#record("addIceCandidates", message);
  }

  removeIceCandidates(message: IceCandidatesMessage): void {
    this.#record("removeIceCandidates", message);
  }

  updateRelays(message: RelaysPresenceMessage): void {
    this.#record("updateRelays", message);
  }

  updateResource(resource: ResourceDescription): void {
    this.#record("updateResource", resource);
  }

  updateExpiry(message: ExpiryUpdatedMessage): void {
    this.#record("updateExpiry", message);
  }

  shutdown(): Promise<void> {
    this.#record("shutdown", null);
    this.tunUp = false;
    return Promise.resolve();
  }

  #record(method: string, arg: unknown): void {
    this.calls.push({ method, arg });
  }
}
