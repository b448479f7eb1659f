/**
 * The one check of a ToolDb's resolved options: a wrong option is a
 * ToolDbError INVALID_ARGUMENT that names it, thrown by the constructor,
 * never a TypeError or RangeError later (or a server listening on a Unix
 * socket named after a port string), before any store or socket is
 * opened. Limits are checked by resolveLimits, the client intake's by
 * resolveClientIntake.
 */
import { ErrorCode, ToolDbError, describeValue } from "../base/errors.js";
import { checkPublicUrl } from "../limits/peer-url.js";
import { checkPeerAddress, isPort, portValue } from "../limits/peer-address.js";
import { resolveClientIntake } from "../network/client-intake.js";
import { DEFAULT_OPTIONS, type ToolDbOptions } from "./options.js";
import { adaptersFor } from "./platform-defaults.js";

function refuse(name: string, want: string, value: unknown): never {
  throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `option ${name} must be ${want}, got ${describeValue(value)}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Option names by what they hold. */
const STRINGS = ["topic", "host", "storageName"] as const;
const OPTIONAL_STRINGS = ["publicHost", "publicUrl"] as const;
const BOOLEANS = ["server", "ssl", "debug", "legacyRecords", "serverSync"] as const;
/** Durations in ms: finite, >= 0. */
const DURATIONS = ["wait", "maxReconnectDelay", "handshakeTimeout", "heartbeatInterval", "getGraceMs", "outboxRetryInterval", "serverListInterval"] as const;
/** Counts: whole numbers (or Infinity) >= the minimum. */
const COUNTS: ReadonlyArray<[keyof ToolDbOptions, number]> = [
  ["maxRetries", 0], ["maxMessageBytes", 1], ["maxSyncKeys", 0], ["dedupCapacity", 1], ["maxSubscriptionsPerPeer", 0],
  ["maxPendingRequests", 1], ["outboxCapacity", 1], ["maxRecordBytes", 1],
];
/** Option objects whose fields are numbers (their own checks refine them). */
const NUMBER_OBJECTS = ["rangeSync", "broadcast", "limits", "clientIntake"] as const;

function checkCount(name: string, value: unknown, min: number): void {
  const ok = typeof value === "number" && (Number.isInteger(value) || value === Infinity) && value >= min;
  if (!ok) refuse(name, `a whole number >= ${min}`, value);
}

/** The peers, each port a number; refuses a list that is not one of { host, port }. */
function checkedPeers(peers: unknown): ToolDbOptions["peers"] {
  if (!Array.isArray(peers)) refuse("peers", "an array of { host, port }", peers);
  return peers.map((peer: unknown, i) => {
    if (!isObject(peer)) refuse(`peers[${i}]`, "an object { host, port }", peer);
    return { ...peer, ...checkPeerAddress(peer.host, peer.port, (part) => `option peers[${i}].${part}`) };
  });
}

function checkAdapters(options: ToolDbOptions): void {
  for (const name of ["storageAdapter", "userAdapter"] as const) {
    if (typeof options[name] !== "function") refuse(name, "a class", options[name]);
  }
  const network: unknown = options.networkAdapter;
  const list = Array.isArray(network) ? (network as unknown[]) : [network];
  if (list.length === 0 || !list.every((a) => typeof a === "function")) refuse("networkAdapter", "a class or a non-empty array of classes", network);
}

/** rangeSync.budget: shares and durations finite and >= 0, counts whole (a NaN bucket would refuse or allow everything). */
function checkSyncBudget(budget: unknown): void {
  if (!isObject(budget)) refuse("rangeSync.budget", "an object", budget);
  for (const name of ["windowMs", "repeatWindowMs", "scansPerItem", "servesPerItem", "pushesPerItem", "rangeShare", "slack"]) {
    const value = budget[name];
    if (value !== undefined && !(typeof value === "number" && Number.isFinite(value) && value >= 0)) refuse(`rangeSync.budget.${name}`, "a finite number >= 0", value);
  }
  if (budget.windowMs === 0) refuse("rangeSync.budget.windowMs", "a finite number of ms > 0", budget.windowMs);
  for (const name of ["rounds", "maxPeers"]) {
    if (budget[name] !== undefined) checkCount(`rangeSync.budget.${name}`, budget[name], name === "maxPeers" ? 1 : 0);
  }
}

function checkNested(options: ToolDbOptions): void {
  for (const name of NUMBER_OBJECTS) {
    if (options[name] !== undefined && !isObject(options[name])) refuse(name, "an object", options[name]);
  }
  resolveClientIntake(options.clientIntake);
  const sync = options.rangeSync;
  if (sync?.maxRounds !== undefined) checkCount("rangeSync.maxRounds", sync.maxRounds, 1);
  if (sync?.readsPerMessage !== undefined) checkCount("rangeSync.readsPerMessage", sync.readsPerMessage, 1);
  if (sync?.leafIds !== undefined && !(Number.isInteger(sync.leafIds) && sync.leafIds >= 2 && sync.leafIds <= 32)) refuse("rangeSync.leafIds", "a whole number from 2 to 32", sync.leafIds);
  const refresh = sync?.refreshMs;
  if (refresh !== undefined && !(typeof refresh === "number" && Number.isFinite(refresh) && refresh >= 0)) refuse("rangeSync.refreshMs", "a finite number of ms >= 0", refresh);
  if (sync?.budget !== undefined) checkSyncBudget(sync.budget);
  const mode = options.broadcast?.mode;
  if (mode !== undefined && mode !== "tree" && mode !== "flood") refuse("broadcast.mode", '"tree" or "flood"', mode);
  const selection = options.serverSelection;
  if (selection !== undefined && selection !== false && !isObject(selection)) refuse("serverSelection", "false or an object", selection);
  if (options.clock !== undefined && typeof options.clock?.now !== "function") refuse("clock", "an object with now()", options.clock);
  if (options.random !== undefined && typeof options.random !== "function") refuse("random", "a function", options.random);
  if (options.httpServer !== undefined && !isObject(options.httpServer)) refuse("httpServer", "an http.Server", options.httpServer);
}

/**
 * The constructor's argument: an object of options; `undefined` and `null`
 * are no options (tool-db 2.6.6 took both). Anything else (a topic string, a
 * number, an array) is INVALID_ARGUMENT, not a TypeError from deep inside.
 */
export function optionsObject(options: unknown): Partial<ToolDbOptions> {
  if (options === undefined || options === null) return {};
  if (!isObject(options)) refuse("options", "an object", options);
  return options as Partial<ToolDbOptions>;
}

/** A node's options: those given (an undefined one is not given) over the defaults and the platform's adapters, checked. */
export function nodeOptions(options: unknown): ToolDbOptions {
  const defined = Object.fromEntries(Object.entries(optionsObject(options)).filter(([, v]) => v !== undefined));
  return checkOptions({ ...DEFAULT_OPTIONS, ...defined, ...adaptersFor(defined) } as ToolDbOptions);
}

/** `options` (a fresh object: ports given as digit strings become numbers) once every option has the type and range it needs; else throws INVALID_ARGUMENT naming the option. */
export function checkOptions(options: ToolDbOptions): ToolDbOptions {
  for (const name of STRINGS) {
    if (typeof options[name] !== "string" || options[name].length === 0) refuse(name, "a non-empty string", options[name]);
  }
  for (const name of OPTIONAL_STRINGS) {
    if (options[name] !== undefined && typeof options[name] !== "string") refuse(name, "a string", options[name]);
  }
  for (const name of BOOLEANS) {
    if (typeof options[name] !== "boolean") refuse(name, "true or false", options[name]);
  }
  if (options.rememberUser !== undefined && typeof options.rememberUser !== "boolean") refuse("rememberUser", "true or false", options.rememberUser);
  if (options.publicUrl !== undefined) checkPublicUrl(options.publicUrl);
  // Any other string would make Node listen on a Unix socket file of that name.
  options.port = portValue(options.port) as number;
  if (!isPort(options.port, 0)) refuse("port", "a whole number from 0 to 65535", options.port);
  for (const name of DURATIONS) {
    const value = options[name];
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) refuse(name, "a finite number of ms >= 0", value);
  }
  for (const name of ["unresponsiveTimeout", "serverProbeInterval", "unresponsiveRecovery"] as const) {
    const ms = options[name];
    if (ms !== undefined && (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0)) refuse(name, "a finite number of ms >= 0", ms);
  }
  const penalty = options.unresponsivePenalty;
  if (penalty !== undefined && (typeof penalty !== "number" || !Number.isFinite(penalty) || penalty <= 0)) refuse("unresponsivePenalty", "a finite number of ms > 0", penalty);
  for (const [name, min] of COUNTS) {
    if (options[name] !== undefined) checkCount(name, options[name], min);
  }
  if (!(Number.isInteger(options.pow) && options.pow >= 0 && options.pow <= 64)) refuse("pow", "a whole number from 0 to 64", options.pow);
  options.peers = checkedPeers(options.peers);
  checkAdapters(options);
  checkNested(options);
  return options;
}
