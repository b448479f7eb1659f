/** Items grouped by `key`, groups in order of their first item, items in their order. */
export function groupBy<T>(items: Iterable<T>, key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** The first item of each list, then the second of each, … up to `max` items. */
export function interleave<T>(lists: readonly T[][], max = Infinity): T[] {
  const out: T[] = [];
  let longest = 0;
  for (const l of lists) longest = Math.max(longest, l.length);
  for (let i = 0; i < longest && out.length < max; i++) {
    for (const list of lists) if (i < list.length && out.length < max) out.push(list[i]!);
  }
  return out;
}
