/**
 * A Node built-in module when running on Node (≥ 20.12), found through
 * process.getBuiltinModule so that no import of "node:…" reaches browser
 * bundles; undefined in browsers. Callers keep a portable path beside it.
 */
export function nodeBuiltin<T>(id: string): T | undefined {
  const getBuiltin = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  return getBuiltin?.(id) as T | undefined;
}
