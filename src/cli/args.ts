/**
 * Command-line flags, parsed by Node's own `util.parseArgs` against each
 * command's declared flags. A flag a command does not know, a flag without
 * its value and a value out of range are usage errors (exit code 2), each
 * said in one line; an unknown flag comes with the closest known one, so a
 * typo such as `--boostrap` never silently falls back to a default.
 */
import { isIP } from "node:net";
import { parseArgs as nodeParseArgs } from "node:util";

export interface FlagSpec {
  /** "string" takes a value (`--port 9000` or `--port=9000`); "boolean" is a switch. */
  type: "string" | "boolean";
  /** Throws UsageError when the value is not of the flag's kind (checked while parsing, before any command code loads). */
  check?: (value: string, flag: string) => void;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export interface ParsedArgs {
  command: string | undefined;
  flags: Map<string, string | true>;
}

/** A mistake in the command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Every command knows -h/--help. */
const HELP: FlagSpecs = { help: { type: "boolean" } };

/**
 * Parses `argv` (the words after the command) against `specs`. Throws
 * UsageError for unknown flags (naming the closest known one), positional
 * words, string flags without a value and switches given one (`--web=false`).
 */
export function parseCommandArgs(command: string | undefined, argv: string[], specs: FlagSpecs): ParsedArgs {
  const all = { ...specs, ...HELP };
  const where = command ? `${command}: ` : "";
  const options = Object.fromEntries(Object.entries(all).map(([name, spec]) => [name, name === "help" ? { type: "boolean" as const, short: "h" } : { type: spec.type }]));
  // A first pass that accepts anything, to name the first unknown flag or stray word ourselves.
  const { tokens } = nodeParseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === "positional") throw new UsageError(`${where}unexpected argument "${token.value}" (flags are --name value)`);
    if (token.kind !== "option" || token.name === "h") continue;
    if (token.name in all) {
      if (all[token.name]!.type === "boolean" && token.value !== undefined) {
        throw new UsageError(`${where}${token.rawName} is a switch and takes no value (got ${token.rawName}=${token.value}; leave the flag out to turn it off)`);
      }
      continue;
    }
    const near = closest(token.name, Object.keys(all));
    throw new UsageError(`${where}unknown flag ${token.rawName}${near ? ` (did you mean --${near}?)` : ""}`);
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = nodeParseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    const name = /'(--?[\w-]+)/.exec(String((err as Error).message))?.[1] ?? "a flag";
    throw new UsageError(`${where}${name} needs a value (${name} VALUE, or ${name}=VALUE for a value that starts with "-")`);
  }
  const flags = new Map<string, string | true>();
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "string") all[name]?.check?.(value, `--${name}`);
    flags.set(name, value);
  }
  return { command, flags };
}

/** The known name nearest to `name` by edit distance, when near enough to be a typo. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  if (best !== undefined && (bestDistance <= Math.max(2, Math.floor(name.length / 3)) || best.startsWith(name))) return best;
  return undefined;
}

/** Levenshtein distance (insertions, deletions, substitutions), two rows. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length]!;
}

/** Flag value kinds, for FlagSpec.check. */
export const isPort = (value: string, flag: string): void => {
  const port = Number(value);
  if (value.trim() === "" || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`${flag} must be a port number 0..65535 (got ${value})`);
};

export const isSeconds = (value: string, flag: string): void => {
  const seconds = Number(value);
  if (value.trim() === "" || !Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`${flag} must be a number of seconds > 0 (got ${value})`);
};

/** The number a limit flag gives: a decimal, or Infinity (no limit); NaN for anything else. */
export function limitNumber(value: string): number {
  if (value === "Infinity") return Infinity;
  return value.trim() === "" ? NaN : Number(value);
}

/** A number >= 0, or Infinity. */
export const isAmount = (value: string, flag: string): void => {
  const n = limitNumber(value);
  if (Number.isNaN(n) || n < 0) throw new UsageError(`${flag} must be a number >= 0 (got ${value})`);
};

/** A number > 0, or Infinity: 0 would stop what it meters (a rate). */
export const isRate = (value: string, flag: string): void => {
  const n = limitNumber(value);
  if (Number.isNaN(n) || n <= 0) throw new UsageError(`${flag} must be a number > 0, or Infinity (got ${value})`);
};

/** A whole number >= 1, or Infinity: a count or size that 0 (or a fraction of one) would jam. */
export const isCount = (value: string, flag: string): void => {
  const n = limitNumber(value);
  if (!(n === Infinity || (Number.isInteger(n) && n >= 1))) throw new UsageError(`${flag} must be a whole number >= 1, or Infinity (got ${value})`);
};

/** A whole number >= 0, or Infinity: a quota, where 0 refuses all of its kind. */
export const isQuota = (value: string, flag: string): void => {
  const n = limitNumber(value);
  if (!(n === Infinity || (Number.isInteger(n) && n >= 0))) throw new UsageError(`${flag} must be a whole number >= 0, or Infinity (got ${value})`);
};

/** A share from 0 to 1. */
export const isShare = (value: string, flag: string): void => {
  const n = limitNumber(value);
  if (Number.isNaN(n) || n < 0 || n > 1) throw new UsageError(`${flag} must be a share from 0 to 1 (got ${value})`);
};

/** A file or directory name: an empty one (an unset shell variable) would mean the working directory. */
export const isPath = (value: string, flag: string): void => {
  if (value.trim() === "") throw new UsageError(`${flag} needs a file or directory name (got an empty value: an unset shell variable?)`);
};

/** `ip,...`: IPv4 or IPv6 addresses as a peer's address is written (no names, no ranges). */
export const isIpList = (value: string, flag: string): void => {
  const entries = value.split(",").map((s) => s.trim()).filter(Boolean);
  if (entries.length === 0) throw new UsageError(`${flag} takes ip,... (got "${value}")`);
  const bad = entries.find((ip) => isIP(ip) === 0);
  if (bad !== undefined) throw new UsageError(`${flag} takes IP addresses ip,... (got "${bad}": not an IPv4 or IPv6 address)`);
};

export const isHostPortList = (value: string, flag: string): void => {
  hostPortList(value.split(",").map((s) => s.trim()).filter(Boolean), flag);
};

export function stringFlag(args: ParsedArgs, name: string, env?: string, fallback?: string): string | undefined {
  const v = args.flags.get(name);
  if (typeof v === "string") return v;
  if (env && process.env[env]) return process.env[env];
  return fallback;
}

export function booleanFlag(args: ParsedArgs, name: string): boolean {
  return args.flags.get(name) === true;
}

export function portFlag(args: ParsedArgs, name: string, env?: string, fallback?: number): number {
  const raw = stringFlag(args, name, env, fallback === undefined ? undefined : String(fallback));
  if (raw === undefined) throw new UsageError(`--${name} needs a port number`);
  isPort(raw, args.flags.has(name) || !env ? `--${name}` : `${env} (or --${name})`);
  return Number(raw);
}

/** A number of seconds > 0 (fractions allowed). */
export function secondsFlag(args: ParsedArgs, name: string, fallback: number): number {
  const raw = stringFlag(args, name, undefined, String(fallback))!;
  isSeconds(raw, `--${name}`);
  return Number(raw);
}

export function listFlag(args: ParsedArgs, name: string): string[] | undefined {
  const v = stringFlag(args, name);
  return v ? v.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
}

/** `host:port,...` ([v6]:port too), each with a port 1..65535; `source` names the flag or variable in errors. */
export function hostPortList(entries: string[], source: string): string[] {
  for (const entry of entries) {
    const match = /^(\[[^\]]+\]|[^:\s]+):(\d+)$/.exec(entry);
    const port = match ? Number(match[2]) : NaN;
    if (!match || port < 1 || port > 65535) {
      throw new UsageError(`${source} takes host:port,... with a port 1..65535 (got "${entry}"${match || entry.includes(":") ? "" : ": no port"})`);
    }
  }
  return entries;
}
