import { LIMITS } from "./messages.js";

/**
 * `to` with `hop` appended (once), cut to the latest `LIMITS.maxHops`
 * entries. `to` only keeps a message from going straight back to where it
 * came from; loops end by record hash (a relayed record that changes nothing
 * is not relayed again), so cutting it limits no path: no mesh is too deep
 * for a relay.
 */
export function boundHops(to: readonly string[], hop: string): string[] {
  const hops = to.filter((x) => x !== hop);
  hops.push(hop);
  return hops.length > LIMITS.maxHops ? hops.slice(-LIMITS.maxHops) : hops;
}
