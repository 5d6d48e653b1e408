/**
 * Subprocesses for the end-to-end test: Deno scripts (optionally inside a network namespace via a
 * command prefix such as `ip netns exec <ns>`) whose stdout is read as lines, with waits on a line
 * predicate, a JSON-lines stdin, and the collected output for failure messages.
 *
 * @module
 */

const ROOT = new URL("../../../", import.meta.url).pathname;

/** Options of {@link Proc.deno}. */
export interface ProcOptions {
  /** Shown in diagnostics. */
  readonly label: string;
  /** Arguments after `deno` (e.g. `["run", "-A", "main.ts", ...]`). */
  readonly args: readonly string[];
  /** Complete environment (PATH is added). */
  readonly env?: Readonly<Record<string, string>>;
  /** Command prefix, e.g. `["ip", "netns", "exec", "ns"]`. */
  readonly prefix?: readonly string[];
  /** Pipe stdin (for {@link Proc.send}). */
  readonly stdin?: boolean;
}

/** A running subprocess. */
export class Proc {
  readonly label: string;
  readonly lines: string[] = [];
  stderr = "";
  #stdout = "";
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array> | null;
  readonly #reading: Promise<void>;
  readonly #status: Promise<Deno.CommandStatus>;
  /** Set when the process has exited. */
  exitCode: number | null = null;
  /** Wall-clock time (ms) at which the exit was observed. */
  exitedAt: number | null = null;

  private constructor(options: ProcOptions) {
    this.label = options.label;
    const prefix = options.prefix ?? [];
    const argv = [...prefix, Deno.execPath(), ...options.args];
    const child = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      cwd: ROOT,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
        NO_COLOR: "1",
        // No upgrade check: nothing should leave the test namespaces.
        DENO_NO_UPDATE_CHECK: "1",
        ...(options.env ?? {}),
      },
      clearEnv: true,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#writer = options.stdin ? child.stdin.getWriter() : null;
    const decoder = new TextDecoder();
    const errDecoder = new TextDecoder();
    const out = (async () => {
      for await (const chunk of child.stdout) {
        this.#stdout += decoder.decode(chunk, { stream: true });
        for (let i = this.#stdout.indexOf("\n"); i >= 0; i = this.#stdout.indexOf("\n")) {
          this.lines.push(this.#stdout.slice(0, i));
          this.#stdout = this.#stdout.slice(i + 1);
        }
      }
    })();
    const err = (async () => {
      for await (const chunk of child.stderr) this.stderr += errDecoder.decode(chunk, { stream: true });
    })();
    this.#reading = Promise.all([out, err]).then(() => {});
    this.#status = child.status.then((s) => {
      this.exitCode = s.code;
      this.exitedAt = Date.now();
      return s;
    });
  }

  /** Starts `deno <args>`. */
  static deno(options: ProcOptions): Proc {
    return new Proc(options);
  }

  /** The first line (at or after index `from`) for which `match` returns a value; waits up to `timeoutMs`. */
  async waitFor<T>(
    match: (line: string) => T | null | undefined,
    what: string,
    timeoutMs = 10_000,
    from = 0,
  ): Promise<{ value: T; index: number }> {
    const deadline = Date.now() + timeoutMs;
    let i = from;
    for (;;) {
      for (; i < this.lines.length; i++) {
        const v = match(this.lines[i]!);
        if (v !== null && v !== undefined) return { value: v, index: i };
      }
      if (this.exitCode !== null) throw new Error(`${this.label}: exited (${this.exitCode}) before ${what}`);
      if (Date.now() > deadline) {
        throw new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Parsed JSON lines (lines that are not JSON objects are skipped). */
  jsonLines(from = 0): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.lines.slice(from)) {
      try {
        const v = JSON.parse(line);
        if (typeof v === "object" && v !== null) out.push(v);
      } catch { /* a log line */ }
    }
    return out;
  }

  /** Writes one JSON line to stdin. */
  async send(message: unknown): Promise<void> {
    if (this.#writer === null) throw new Error(`${this.label}: stdin is not piped`);
    await this.#writer.write(new TextEncoder().encode(`${JSON.stringify(message)}\n`));
  }

  kill(signal: Deno.Signal = "SIGKILL"): void {
    try {
      this.#child.kill(signal);
    } catch { /* already exited */ }
  }

  /** Waits for the exit (SIGKILL after `timeoutMs`) and returns the exit code. */
  async finish(timeoutMs: number): Promise<number> {
    if (this.#writer !== null) await this.#writer.close().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), timeoutMs));
    const first = await Promise.race([this.#status, timeout]);
    clearTimeout(timer);
    if (first === "timeout") {
      this.kill("SIGKILL");
      await this.#status;
      await this.#reading;
      throw new Error(`${this.label}: did not exit within ${timeoutMs} ms`);
    }
    await this.#reading;
    return first.code;
  }

  /** Everything the process printed (for failure messages). */
  dump(): string {
    return `----- ${this.label} stdout -----\n${this.lines.join("\n")}${this.#stdout}\n` +
      `----- ${this.label} stderr -----\n${this.stderr}`;
  }
}
