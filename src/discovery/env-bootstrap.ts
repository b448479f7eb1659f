import { ErrorCode, ToolDbError } from "../base/errors.js";

/** `TOOLDB_DHT_BOOTSTRAP=host:port,...`: the default bootstrap of every Discovery, DHTServer, DHTClient and CLI command. */
export const BOOTSTRAP_ENV = "TOOLDB_DHT_BOOTSTRAP";

/**
 * The bootstrap list from the environment, or undefined when the variable is
 * unset or empty (or there is no `process`, as in a browser). An explicit
 * `bootstrap` option always wins over it.
 */
export function envBootstrap(): string[] | undefined {
  const raw = typeof process === "undefined" ? undefined : process.env?.[BOOTSTRAP_ENV];
  if (!raw || raw.trim() === "") return undefined;
  const list = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const entry of list) {
    const i = entry.lastIndexOf(":");
    const port = Number(entry.slice(i + 1));
    if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ToolDbError(ErrorCode.INVALID_ARGUMENT, `${BOOTSTRAP_ENV}: bad address '${entry}' (expected host:port,...)`);
    }
  }
  return list;
}
