/**
 * The one `Deno.dlopen` symbol table for libc, opened lazily on first use.
 *
 * Parameter types are chosen for Deno's fast FFI path (measured on x86_64, Deno 2.9):
 * - `"pointer"` parameters take `Deno.PointerObject`s computed once at start-up (about 8 ns a call).
 * - 64-bit integer parameters (`"usize"`, `"u64"`) are only fast when given a **BigInt**; a JS number
 *   falls back to the slow path (about 130 ns). Hot-path callers pass preallocated BigInt constants
 *   (e.g. a fixed buffer length) or use calls whose variable lengths live in memory (`readv`,
 *   `writev`, `recvmmsg`, `sendmmsg`, where an iovec carries the length).
 * - `ssize_t` results are declared `i32`: 64-bit results would come back as BigInt. Every value we
 *   read or write fits in 32 bits, and -1 stays -1.
 * - `"buffer"` parameters (a `Uint8Array`) are for control-path calls only.
 *
 * errno is thread-local: {@link lastErrno} reads it through a view onto this thread's
 * `__errno_location()`, created when the library is first used on that thread (each Deno Worker
 * loads its own copy of this module, so each gets its own view). Read it right after the failing
 * call, before anything else can run a syscall.
 *
 * `poll` is synchronous here: the packet worker blocks in it. No symbol on this table is
 * `nonblocking: true` (such calls cost 21-45 µs and run on another thread, where errno is lost).
 *
 * @module
 */

const SYMBOLS = {
  // Files and descriptors.
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "pointer", "usize"], result: "i32" },
  write: { parameters: ["i32", "pointer", "usize"], result: "i32" },
  readv: { parameters: ["i32", "pointer", "i32"], result: "i32" },
  writev: { parameters: ["i32", "pointer", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** `ioctl(fd, request, void *arg)`. */
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  /** `ioctl(fd, request, unsigned long value)` for requests that take a value (TUNSETOFFLOAD). */
  ioctl_value: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" },
  mkdir: { parameters: ["buffer", "u32"], result: "i32" },
  chmod: { parameters: ["buffer", "u32"], result: "i32" },
  // Sockets.
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "i32" },
  recvmsg: { parameters: ["i32", "pointer", "i32"], result: "i32" },
  sendmsg: { parameters: ["i32", "pointer", "i32"], result: "i32" },
  recvmmsg: { parameters: ["i32", "pointer", "u32", "i32", "pointer"], result: "i32" },
  sendmmsg: { parameters: ["i32", "pointer", "u32", "i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  // Readiness and wake-ups.
  poll: { parameters: ["pointer", "u64", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  // errno.
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The typed libc symbols. */
export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let library: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;
let errnoCell: Int32Array = new Int32Array(1);

/**
 * The libc symbols, opening the library on first use. Throws a clear error off Linux/glibc or
 * without `--allow-ffi`.
 */
export function libc(): LibcSymbols {
  if (library !== null) return library.symbols;
  if (Deno.build.os !== "linux") {
    throw new Error(`The FFI layer supports Linux only; this is ${Deno.build.os}`);
  }
  if (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64") {
    throw new Error(`The FFI struct layouts cover x86_64 and aarch64 only; this is ${Deno.build.arch}`);
  }
  try {
    library = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch (error) {
    throw new Error(
      `Cannot load libc.so.6 through FFI (${
        error instanceof Error ? error.message : String(error)
      }). Run with --allow-ffi on a glibc-based Linux`,
    );
  }
  const cell = library.symbols.__errno_location();
  if (cell === null) throw new Error("__errno_location() returned NULL");
  errnoCell = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(cell, 4));
  return library.symbols;
}

/** This thread's errno. Valid right after a libc call that returned -1. */
export function lastErrno(): number {
  return errnoCell[0]!;
}

/** The address of the first byte of a typed array's (or ArrayBuffer's) memory, as a number. */
export function addressOf(buffer: ArrayBufferView<ArrayBuffer> | ArrayBuffer): number {
  const ptr = Deno.UnsafePointer.of(buffer);
  if (ptr === null) throw new RangeError("Cannot take the address of an empty buffer");
  return Number(Deno.UnsafePointer.value(ptr));
}

/** A pointer object for an address from {@link addressOf} (plus an offset). Start-up use only. */
export function pointerTo(address: number): Deno.PointerObject {
  const ptr = Deno.UnsafePointer.create(BigInt(address));
  if (ptr === null) throw new RangeError("Cannot make a pointer to address 0");
  return ptr;
}

/** Closes a descriptor, ignoring errors (EBADF on an already closed fd is a caller bug, not fatal). */
export function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd);
}
