/** Minimal `--flag value` parser for the CLI (no dependency). */
export interface ParsedArgs {
  command: string | undefined;
  flags: Map<string, string | true>;
}

export function parseArgs(argv: string[]): ParsedArgs {
  const [command, ...rest] = argv;
  const flags = new Map<string, string | true>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (!arg.startsWith("--")) throw new Error(`unexpected argument: ${arg}`);
    const [name, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
    if (inline !== undefined) flags.set(name, inline);
    else if (rest[i + 1] !== undefined && !rest[i + 1]!.startsWith("--")) flags.set(name, rest[++i]!);
    else flags.set(name, true);
  }
  return { command, flags };
}

export function stringFlag(args: ParsedArgs, name: string, env?: string, fallback?: string): string | undefined {
  const v = args.flags.get(name);
  if (typeof v === "string") return v;
  if (env && process.env[env]) return process.env[env];
  return fallback;
}

export function portFlag(args: ParsedArgs, name: string, env?: string, fallback?: number): number {
  const raw = stringFlag(args, name, env, fallback === undefined ? undefined : String(fallback));
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--${name} must be a port number (got ${raw})`);
  return port;
}

export function listFlag(args: ParsedArgs, name: string): string[] | undefined {
  const v = stringFlag(args, name);
  return v ? v.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
}
