/**
 * The CLI's lines for humans, on stdout and stderr. Their reader may go
 * away while a server runs (`serve | head -1`, a log pipe that dies): a
 * write then fails with EPIPE, which Node emits as an 'error' event that
 * would crash the process. Here a stream that failed is dropped quietly
 * and the command goes on (a server keeps serving and still stops cleanly
 * on SIGTERM); nothing else in the CLI writes to stdout or stderr.
 */
import type { Out } from "./command.js";

type Stdio = NodeJS.WriteStream;

/** Streams whose reader went away (or that failed otherwise): nothing is written to them any more. */
const gone = new Set<Stdio>();

/** Installs the 'error' listeners on stdout and stderr; call once, first thing. */
export function guardStdio(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (gone.has(stream)) return;
      gone.add(stream);
      // A reader that left (EPIPE) needs no word; any other failure is said once on the other stream, if it still works.
      if (err.code !== "EPIPE" && stream === process.stdout) line(process.stderr, `tooldb-dht: stdout failed (${err.code ?? err.message}); its lines are dropped from now on`);
    });
  }
}

function line(stream: Stdio, text: string): void {
  if (gone.has(stream) || stream.destroyed) return;
  stream.write(`${text}\n`);
}

/** A line on stdout (what commands print). */
export const out: Out = (text) => line(process.stdout, text);

/** A line on stderr (a failure's reason). */
export const fail: Out = (text) => line(process.stderr, text);

/** Exits once stdout and stderr are written out (or gone), whatever sockets or timers are still open. */
export function exitAfterOutput(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const done = () => --pending === 0 && process.exit(code);
  for (const stream of [process.stdout, process.stderr]) {
    if (gone.has(stream) || stream.destroyed) done();
    else stream.write("", done);
  }
}
