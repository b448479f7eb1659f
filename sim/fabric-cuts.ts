/**
 * Which nodes of a simulation cannot reach each other: a network partition
 * (each node on one side; frames across it wait, as TCP retransmits them,
 * until it heals) and crashed nodes (a machine gone silent: nothing reaches
 * it and nothing leaves it, not even a reset, so its peers learn it only
 * from their heartbeats).
 */
export class FabricCuts<N extends object> {
  private sideOf: ((node: N) => number) | undefined;
  private readonly crashed = new WeakSet<N>();
  /** Partitions begun and healed, for the report. */
  partitions = 0;

  get partitioned(): boolean {
    return this.sideOf !== undefined;
  }

  /** Cuts the network in sides: `sideOf` is asked for every node, nodes started later included. */
  partition(sideOf: (node: N) => number): void {
    this.sideOf = sideOf;
    this.partitions++;
  }

  heal(): void {
    this.sideOf = undefined;
  }

  crash(node: N): void {
    this.crashed.add(node);
  }

  isCrashed(node: N): boolean {
    return this.crashed.has(node);
  }

  /** True when a frame from `a` cannot reach `b` now. */
  severed(a: N, b: N): boolean {
    if (this.crashed.has(a) || this.crashed.has(b)) return true;
    return this.sideOf !== undefined && this.sideOf(a) !== this.sideOf(b);
  }
}

/** Two random sides (from `random`), each node's drawn when first asked: nodes started later get one too. */
export function randomSides(random: () => number): (node: object) => number {
  const sides = new WeakMap<object, number>();
  return (node) => {
    let side = sides.get(node);
    if (side === undefined) sides.set(node, (side = random() < 0.5 ? 0 : 1));
    return side;
  };
}
