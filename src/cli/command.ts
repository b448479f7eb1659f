import type { FlagSpecs, ParsedArgs } from "./args.js";

export type Out = (line: string) => void;

/** One `tooldb-dht <name>` command: its flags, its help, and what it does. */
export interface Command {
  name: string;
  /** One line for `tooldb-dht --help`. */
  summary: string;
  /** `tooldb-dht <name> --help`: the synopsis and every flag (printed after "tooldb-dht "). */
  usage: string;
  flags: FlagSpecs;
  /**
   * Resolves the exit code of a command that finishes, or undefined for one
   * that keeps running (a server) until a signal stops it. Throws to fail
   * (exit 1; UsageError: exit 2).
   */
  run(args: ParsedArgs, out: Out): Promise<number | undefined>;
}

export const str = { type: "string" } as const;
export const bool = { type: "boolean" } as const;
