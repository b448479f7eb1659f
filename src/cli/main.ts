#!/usr/bin/env node
/**
 * The `tooldb-dht` command. This is the one place that prints for humans.
 *
 * Exit codes: 0 done (or a server stopped by a signal), 1 a failure (its
 * reason on stderr, one line), 2 a usage error (unknown flag, bad value).
 * A server whose stop a stalled disk holds ends by the signal itself
 * (signal-exit.ts: 130 SIGINT, 143 SIGTERM in a shell).
 * Every failure exits: no command waits on a socket after it gave up.
 */
import { errorText } from "../base/errors.js";
import { UsageError, closest, parseCommandArgs } from "./args.js";
import { COMMANDS, DEFAULT_BOOTSTRAP_TEXT } from "./commands.js";
import { exitAfterOutput, fail, guardStdio, out } from "./output.js";
import { version } from "./version.js";

// First, before any await: without a listener of its own, SIGUSR1 makes Node open its
// inspector on 127.0.0.1:9229 (serve prints a status line on it once it runs; until then it is ignored).
process.on("SIGUSR1", () => undefined);
// A reader of stdout or stderr that goes away (serve | head -1) must not crash a server.
guardStdio();

function usage(): string {
  return `tooldb-dht <command> [flags]      (tooldb-dht <command> --help for its flags)

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n")}
  version    Print the version.

${DEFAULT_BOOTSTRAP_TEXT}
Exit codes: 0 ok, 1 failed (reason on stderr), 2 bad command line.`;
}

async function main(argv: string[]): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    // `help serve` is `serve --help`; anything else after help is a mistake, as for every command.
    const topic = name === "help" ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    if (name === "help" && !topic && rest[0] !== undefined && !rest[0].startsWith("-")) {
      const near = closest(rest[0], COMMANDS.map((c) => c.name));
      throw new UsageError(`help: unknown command "${rest[0]}"${near ? ` (did you mean ${near}?)` : ""}`);
    }
    if (topic) parseCommandArgs("help", rest.slice(1), {});
    else if (name !== undefined) parseCommandArgs(name === "help" ? "help" : undefined, rest, {});
    out(topic ? `tooldb-dht ${topic.usage}` : usage());
    return 0;
  }
  if (name === "version" || name === "--version" || name === "-v") {
    if (parseCommandArgs("version", rest, {}).flags.get("help") === true) out("tooldb-dht version\n  Prints the version.");
    else out(version());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    const near = closest(name, [...COMMANDS.map((c) => c.name), "version", "help"]);
    throw new UsageError(`unknown command "${name}"${near ? ` (did you mean ${near}?)` : ""}`);
  }
  const args = parseCommandArgs(command.name, rest, command.flags);
  if (args.flags.get("help") === true) {
    out(`tooldb-dht ${command.usage}`);
    return 0;
  }
  return command.run(args, out);
}

main(process.argv.slice(2)).then(
  (code) => {
    // Long-running commands (serve, bootstrap) resolve undefined and keep running until a signal.
    if (code !== undefined) exitAfterOutput(code);
  },
  (err: unknown) => {
    const usageError = err instanceof UsageError;
    fail(`tooldb-dht: ${errorText(err)}${usageError ? " (see --help)" : ""}`);
    exitAfterOutput(usageError ? 2 : 1);
  },
);
