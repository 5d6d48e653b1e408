/**
 * Main-thread side of the packet worker: starts it, sends control messages (mailbox + eventfd),
 * receives its events, and stops it.
 *
 * @module
 */

import { EventFd } from "../../ffi/poll.ts";
import { logger } from "../log.ts";
import { createMailboxBuffer, Mailbox } from "./mailbox.ts";
import type { WorkerControl, WorkerEvent, WorkerReady, WorkerSetup, WorkerStats } from "./worker_protocol.ts";

const log = logger("fz_gateway::io::worker");

/** How long {@link PacketWorkerHost.stop} waits for the worker to close its devices. */
const STOP_TIMEOUT_MS = 3_000;

export class PacketWorkerHost {
  readonly info: WorkerReady;
  readonly #worker: Worker;
  readonly #mailbox: Mailbox;
  readonly #wake: EventFd;
  #stats: WorkerStats | null = null;
  #stopped: Promise<void>;
  #onExit: ((reason: string) => void) | null = null;
  #onEvent: ((event: WorkerEvent) => void) | null = null;
  readonly #early: WorkerEvent[] = [];
  #exited = false;
  #closed = false;

  /** Use {@link PacketWorkerHost.start}. */
  constructor(worker: Worker, mailbox: Mailbox, wake: EventFd, info: WorkerReady, stopped: Promise<void>) {
    this.#worker = worker;
    this.#mailbox = mailbox;
    this.#wake = wake;
    this.info = info;
    this.#stopped = stopped;
  }

  /**
   * Starts the worker and resolves once its devices are open and the loop runs. Rejects with the
   * worker's error message when set-up fails (bad config, no permission for TUN, ...).
   */
  static start(mode: WorkerSetup["mode"], options: Omit<WorkerSetup, "mode" | "mailbox" | "wakeFd">): Promise<
    PacketWorkerHost
  > {
    const buffer = createMailboxBuffer();
    const wake = EventFd.create();
    const worker = new Worker(new URL("./packet_worker.ts", import.meta.url).href, { type: "module" });
    let host: PacketWorkerHost | null = null;
    let resolveStopped!: () => void;
    const stopped = new Promise<void>((r) => resolveStopped = r);
    return new Promise((resolve, reject) => {
      worker.onerror = (e) => {
        e.preventDefault();
        const message = e.message ?? String(e);
        if (host === null) reject(new Error(message));
        else host.#exit(`worker crashed: ${message}`);
        resolveStopped();
      };
      worker.onmessage = (e: MessageEvent<WorkerEvent>) => {
        const ev = e.data;
        switch (ev.type) {
          case "ready":
            host = new PacketWorkerHost(worker, new Mailbox(buffer), wake, ev.info, stopped);
            resolve(host);
            break;
          case "error":
            resolveStopped();
            if (host === null) reject(new Error(ev.message));
            else host.#exit(ev.message);
            break;
          case "stats":
            if (host) host.#stats = ev.stats;
            break;
          case "stopped":
            resolveStopped();
            if (host !== null) host.#exit("stopped");
            break;
          default:
            if (host !== null) host.#dispatch(ev);
            break;
        }
      };
      const setup: WorkerSetup = { ...options, mode, mailbox: buffer, wakeFd: wake.fd };
      worker.postMessage(setup);
    });
  }

  /** The latest counters (posted by the worker about once a second). */
  get stats(): WorkerStats | null {
    return this.#stats;
  }

  /** Called once when the worker ends for any reason other than {@link stop}. */
  onExit(callback: (reason: string) => void): void {
    this.#onExit = callback;
  }

  /** Receives the mode-specific events (`reply`, `tunnel`, `resolve`). */
  onEvent(callback: (event: WorkerEvent) => void): void {
    this.#onEvent = callback;
    for (const ev of this.#early.splice(0)) callback(ev);
  }

  #dispatch(event: WorkerEvent): void {
    if (this.#onEvent) this.#onEvent(event);
    else this.#early.push(event);
  }

  /**
   * Sends a control message and wakes the worker. Returns false when it could not be delivered (the
   * worker stopped, or the message does not fit the mailbox); the caller must not wait for an answer.
   */
  send(message: WorkerControl): boolean {
    if (this.#closed) return false;
    if (!this.#mailbox.send(message)) {
      log.error("Packet worker mailbox full; control message dropped", {
        type: message.type,
        ...(message.type === "gateway" ? { op: message.op.op } : {}),
      });
      return false;
    }
    this.#wake.signal();
    return true;
  }

  /** Stops the loop, waits for the devices to close (bounded), then ends the worker. */
  async stop(): Promise<void> {
    this.#onExit = null;
    this.send({ type: "stop" });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((r) => timer = setTimeout(r, STOP_TIMEOUT_MS));
    await Promise.race([this.#stopped, timeout]);
    clearTimeout(timer);
    this.#closed = true;
    this.#worker.terminate();
    this.#wake.close();
  }

  #exit(reason: string): void {
    if (this.#exited) return;
    this.#exited = true;
    const cb = this.#onExit;
    this.#onExit = null;
    if (cb && reason !== "stopped") cb(reason);
  }
}
