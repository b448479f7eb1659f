/**
 * The loader hooks of module-log.ts, run on Node's hooks thread: each
 * module's URL is appended once it loaded, synchronously, so the line is
 * written before the importing code goes on (and before the process
 * exits).
 */
import { appendFileSync } from "node:fs";
import type { InitializeHook, LoadHook } from "node:module";

let file: string | undefined;

export const initialize: InitializeHook<{ file: string }> = (data) => {
  file = data.file;
};

export const load: LoadHook = async (url, context, next) => {
  const result = await next(url, context);
  if (file) appendFileSync(file, `${url}\n`);
  return result;
};
