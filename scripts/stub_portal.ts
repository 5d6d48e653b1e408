/**
 * Runs the stub portal (`tests/_helpers/stub_portal.ts`) on 127.0.0.1 for manual runs and the
 * start-up test.
 *
 *   ./scripts/deno run -A scripts/stub_portal.ts [--port N] [--hostname IP] [--join ok|none|error:REASON]
 *       [--init FILE] [--refuse STATUS]... [--quiet]
 *
 * The first stdout line is JSON `{"listening":<port>,"url":"ws://127.0.0.1:<port>"}`; then one line
 * per event (upgrade refused, frame received, ...) unless `--quiet`. `--init FILE` pushes the frame
 * in FILE (a full Phoenix frame, e.g. a portal fixture) after every successful join. Control it from
 * elsewhere through `/_stub/state`, `/_stub/push`, `/_stub/raw`, `/_stub/refuse`, `/_stub/close`.
 * Stops on SIGINT/SIGTERM.
 *
 * @module
 */

import { type JoinReply, StubPortal } from "../tests/_helpers/stub_portal.ts";

function usage(message: string): never {
  Deno.stderr.writeSync(new TextEncoder().encode(`stub_portal: ${message}\n`));
  Deno.exit(2);
}

const args = [...Deno.args];
let port = 0;
let hostname = "127.0.0.1";
let joinReply: JoinReply = "ok";
let initFrame: { event: string; payload: unknown; topic?: string } | null = null;
let quiet = false;
const refusals: number[] = [];
while (args.length > 0) {
  const arg = args.shift()!;
  const value = () => args.shift() ?? usage(`${arg} needs a value`);
  switch (arg) {
    case "--port":
      port = Number(value());
      break;
    case "--hostname":
      hostname = value();
      break;
    case "--join": {
      const v = value();
      joinReply = v === "ok" || v === "none"
        ? v
        : v.startsWith("error:")
        ? { error: v.slice(6) }
        : usage(`bad --join ${v}`);
      break;
    }
    case "--init":
      initFrame = JSON.parse(Deno.readTextFileSync(value()));
      break;
    case "--refuse":
      refusals.push(Number(value()));
      break;
    case "--quiet":
      quiet = true;
      break;
    default:
      usage(`unknown argument ${arg}`);
  }
}

const encoder = new TextEncoder();
const print = (line: string) => Deno.stdout.writeSync(encoder.encode(`${line}\n`));
const portal = StubPortal.start({
  port,
  hostname,
  joinReply,
  ...(quiet ? {} : { log: print }),
  onJoin: (conn) => {
    if (initFrame) conn.push(initFrame.event, initFrame.payload, initFrame.topic ?? "gateway");
  },
});
for (const status of refusals) portal.refuseNext(status, `refused by stub (${status})`);
print(JSON.stringify({ listening: portal.port, url: portal.url }));

const stop = async () => {
  await portal.stop();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
