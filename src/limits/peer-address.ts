/**
 * The one check of an address a node is asked to dial (the `peers` option,
 * `network.connectTo`, the `peers` discovery mechanism): a host name or an
 * IP address, and a port from 1 to 65535. Anything else could never be
 * reached and was re-dialed forever (an outside check: port 70000, "abc",
 * host "not a host"), or dialed as ws://[ws://host]:port.
 */
import { ErrorCode, ToolDbError, describeValue } from "../base/errors.js";
import { addressRange } from "./address-range.js";

/** A port as tool-db 2.6.6 took it through Node's listen: a number, or a string of digits (`process.env.PORT`). */
export const portValue = (v: unknown): unknown => (typeof v === "string" && /^\d{1,5}$/.test(v) ? Number(v) : v);

/** A whole number from `min` to 65535. */
export const isPort = (v: unknown, min: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= min && v <= 65535;

const HOST_WANTED = "a host name or an IP address (not a URL, host:port or [IPv6])";
const PORT_WANTED = "a whole number from 1 to 65535";

/** Which part of host:port cannot be dialed and what it should be; undefined when both can. */
function refusal(host: unknown, port: unknown): { part: "host" | "port"; want: string; value: unknown } | undefined {
  if (typeof host !== "string" || host.length === 0) return { part: "host", want: "a non-empty string", value: host };
  // A URL or host:port pasted here made dials to ws://[ws://host]:port: refused by name.
  if (/[/\s@?#[\]]/.test(host) || (host.includes(":") && addressRange(host) === undefined)) return { part: "host", want: HOST_WANTED, value: host };
  if (!isPort(portValue(port), 1)) return { part: "port", want: PORT_WANTED, value: port };
  return undefined;
}

/** True when host:port is an address a node can dial. */
export function isDialableAddress(host: unknown, port: unknown): boolean {
  return refusal(host, port) === undefined;
}

/**
 * `{ host, port }` (a digit-string port as a number) when the address can be
 * dialed; else throws INVALID_ARGUMENT "`<name of the part>` must be …, got …",
 * the part named by `name("host")` or `name("port")`.
 */
export function checkPeerAddress(host: unknown, port: unknown, name: (part: "host" | "port") => string): { host: string; port: number } {
  const wrong = refusal(host, port);
  if (wrong) throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `${name(wrong.part)} must be ${wrong.want}, got ${describeValue(wrong.value)}`);
  return { host: host as string, port: portValue(port) as number };
}
