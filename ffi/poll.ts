/**
 * `poll(2)` over a fixed set of descriptors, and eventfd wake-ups.
 *
 * The packet worker blocks in {@link PollSet.poll} (a synchronous FFI call: the worker thread
 * sleeps in the kernel, JavaScript on that thread does not run meanwhile). The main thread wakes
 * it with {@link EventFd.signal} after putting a control message in the shared mailbox.
 *
 * @module
 */
import { EAGAIN, EINTR, Errno } from "./errno.ts";
import { addressOf, closeFd, lastErrno, libc, pointerTo } from "./libc.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, POLLFD } from "./structs.ts";

export { POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI } from "./structs.ts";

const MAX_TIMEOUT_MS = 0x7fffffff;

/**
 * A `struct pollfd` array. Register descriptors once with {@link add}; then call {@link poll} as
 * often as needed: it allocates nothing.
 */
export class PollSet {
  readonly #bytes: Uint8Array<ArrayBuffer>;
  readonly #view: DataView;
  readonly #ptr: Deno.PointerObject;
  readonly #capacity: number;
  #count = 0;
  #nfds = 0n;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1024) {
      throw new RangeError(`PollSet capacity must be an integer from 1 to 1024, got ${capacity}`);
    }
    this.#capacity = capacity;
    this.#bytes = new Uint8Array(capacity * POLLFD.SIZE);
    this.#view = new DataView(this.#bytes.buffer);
    this.#ptr = pointerTo(addressOf(this.#bytes));
  }

  /** Number of registered descriptors. */
  get count(): number {
    return this.#count;
  }

  /** Registers `fd` for `events` (POLLIN/POLLOUT) and returns its index. */
  add(fd: number, events: number): number {
    if (this.#count === this.#capacity) throw new RangeError(`PollSet is full (${this.#capacity} fds)`);
    const index = this.#count++;
    this.#nfds = BigInt(this.#count);
    this.setFd(index, fd);
    this.setEvents(index, events);
    return index;
  }

  /** Replaces the descriptor at `index`; a negative fd makes poll ignore the entry. */
  setFd(index: number, fd: number): void {
    this.#view.setInt32(index * POLLFD.SIZE + POLLFD.FD, fd, true);
  }

  /** Changes the requested events at `index` (e.g. add POLLOUT while a send queue is blocked). */
  setEvents(index: number, events: number): void {
    this.#view.setInt16(index * POLLFD.SIZE + POLLFD.EVENTS, events, true);
  }

  /** The events the kernel reported for `index` in the last {@link poll}. */
  revents(index: number): number {
    return this.#view.getUint16(index * POLLFD.SIZE + POLLFD.REVENTS, true);
  }

  /**
   * Waits until a descriptor is ready or `timeoutMs` passes (`Infinity` or negative: forever; 0:
   * just check; fractions round up so a deadline is never reported early). Returns the number of
   * ready descriptors, 0 on timeout or EINTR. Throws {@link Errno} only for programming errors
   * (EFAULT, EINVAL) or ENOMEM.
   */
  poll(timeoutMs: number): number {
    const timeout = timeoutMs < 0 || timeoutMs === Infinity
      ? -1
      : timeoutMs > MAX_TIMEOUT_MS
      ? MAX_TIMEOUT_MS
      : Math.ceil(timeoutMs);
    for (let i = 0; i < this.#count; i++) this.#view.setInt16(i * POLLFD.SIZE + POLLFD.REVENTS, 0, true);
    const n = libc().poll(this.#ptr, this.#nfds, timeout);
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno === EINTR) return 0;
    throw new Errno(errno, "poll");
  }
}

/**
 * An eventfd counter: a cheap cross-thread wake-up. Non-blocking: {@link drain} returns 0 when
 * nothing was signalled. The fd number can be handed to another Worker and wrapped there with
 * {@link EventFd.fromFd}.
 */
export class EventFd {
  readonly fd: number;
  readonly #bytes = new Uint8Array(8);
  readonly #view = new DataView(this.#bytes.buffer);
  readonly #ptr: Deno.PointerObject;
  readonly #owned: boolean;

  /** Wraps `fd`; `owned` decides whether {@link close} closes it. Prefer {@link create}/{@link fromFd}. */
  constructor(fd: number, owned: boolean) {
    this.fd = fd;
    this.#owned = owned;
    this.#ptr = pointerTo(addressOf(this.#bytes));
  }

  /** Creates a new non-blocking, close-on-exec eventfd. */
  static create(initial = 0): EventFd {
    const fd = libc().eventfd(initial, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) throw new Errno(lastErrno(), "eventfd");
    return new EventFd(fd, true);
  }

  /** Wraps an eventfd created elsewhere (e.g. by the main thread). {@link close} will not close it. */
  static fromFd(fd: number): EventFd {
    libc();
    return new EventFd(fd, false);
  }

  /** Adds `n` (default 1) to the counter, waking any poller. False if the counter would overflow. */
  signal(n = 1): boolean {
    this.#view.setUint32(0, n % 4294967296, true);
    this.#view.setUint32(4, Math.floor(n / 4294967296), true);
    const r = libc().write(this.fd, this.#ptr, 8n);
    if (r === 8) return true;
    const errno = lastErrno();
    if (errno === EAGAIN) return false;
    throw new Errno(errno, "write(eventfd)");
  }

  /** Reads and resets the counter; 0 if it was not signalled. */
  drain(): number {
    const r = libc().read(this.fd, this.#ptr, 8n);
    if (r === 8) return this.#view.getUint32(4, true) * 4294967296 + this.#view.getUint32(0, true);
    const errno = lastErrno();
    if (errno === EAGAIN) return 0;
    throw new Errno(errno, "read(eventfd)");
  }

  /** Closes the fd if this object created it. */
  close(): void {
    if (this.#owned) closeFd(this.fd);
  }
}
