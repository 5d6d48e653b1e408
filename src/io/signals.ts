/**
 * SIGINT and SIGTERM handling: both mean "shut down gracefully" (upstream 1.4.16-release handles
 * SIGTERM too, spec §9). The first signal calls the handler; the listeners are removed by the
 * returned function.
 *
 * @module
 */

/** The signals that stop the gateway. */
export const SHUTDOWN_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** Calls `onSignal` once, for the first SIGINT or SIGTERM. Returns a function removing the listeners. */
export function onShutdownSignal(onSignal: (signal: Deno.Signal) => void): () => void {
  let fired = false;
  const listeners = SHUTDOWN_SIGNALS.map((signal) => {
    const listener = () => {
      if (fired) return;
      fired = true;
      onSignal(signal);
    };
    Deno.addSignalListener(signal, listener);
    return { signal, listener };
  });
  return () => {
    for (const { signal, listener } of listeners) Deno.removeSignalListener(signal, listener);
  };
}
