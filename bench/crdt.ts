/**
 * CRDT merge rates: documents of 10,000 changes (map and list) merged into a
 * replica that holds another 10,000, in memory, beside tool-db 2.6.6's own
 * CRDT classes on the same changes and beside this node's plain put rate,
 * all measured in this run. Plus the stored-document merge a node does when
 * a 10,000-change list arrives (signed record, heads, canonical ids).
 */
import t from "tool-db";
import { ToolDb } from "../src/index.js";
import { ListCrdt, MapCrdt, type ListChange, type MapChange } from "../src/crdt/index.js";
import { fmt } from "./stats.js";

export interface CrdtFigures {
  changes: number;
  plainPutsPerSecond: number;
  map: { ours: number; theirs: number };
  list: { ours: number; theirs: number };
  /** Stored-document merges per second of a signed 10,000-change map (putCrdt on one node). */
  documentPutsPerSecond: number;
}

const KEYS = 1000;

/** Two concurrent authors' map changes: `n` each, spread over KEYS keys. */
function mapChanges(author: string, n: number): MapChange<number>[] {
  return Array.from({ length: n }, (_, j) => ({ t: j % 10 === 9 ? "DEL" : "SET", k: `key-${j % KEYS}`, a: author, v: j, i: 1 + Math.floor(j / KEYS) }) as MapChange<number>);
}

/** An author's list: pushes, each after its own previous element, starting after `after` (another author's element). */
function listChanges(author: string, n: number, after?: string): ListChange<number>[] {
  const id = (j: number) => `${author}-${String(j).padStart(8, "0")}`;
  return Array.from({ length: n }, (_, j) => ({ t: "INS", p: j === 0 ? after : id(j - 1), v: j, i: id(j) }) as ListChange<number>);
}

/** Merges per second of `merge` (each builds a replica from `own`, merges `other`, reads the value), over at least `minMs`. */
function rate(merge: () => unknown, minMs = 1000, maxRuns = 50): number {
  merge(); // warm-up
  let runs = 0;
  const start = performance.now();
  while (runs < maxRuns && (runs === 0 || performance.now() - start < minMs)) {
    merge();
    runs++;
  }
  return runs / ((performance.now() - start) / 1000);
}

async function plainPutRate(puts: number): Promise<number> {
  const db = new ToolDb({ topic: "bench-crdt", server: true, host: "127.0.0.1", port: 0 });
  await db.ready;
  await db.anonSignIn();
  const start = performance.now();
  for (let i = 0; i < puts; i++) await db.putData(`k${i % 1000}`, { i });
  const perSecond = puts / ((performance.now() - start) / 1000);
  await db.close();
  return perSecond;
}

async function documentPutRate(changes: MapChange<number>[], runs: number): Promise<number> {
  const db = new ToolDb({ topic: "bench-crdt", server: true, host: "127.0.0.1", port: 0 });
  await db.ready;
  await db.anonSignIn();
  const doc = new MapCrdt<number>(db.userAccount.getAddress()!, changes);
  const start = performance.now();
  for (let i = 0; i < runs; i++) {
    doc.SET(`extra-${i}`, i); // each put carries one more change and subsumes the stored list
    await db.putCrdt("doc", doc);
  }
  const perSecond = runs / ((performance.now() - start) / 1000);
  await db.close();
  return perSecond;
}

export async function crdtBenchmark(changes = 10_000): Promise<CrdtFigures> {
  const half = changes / 2;
  const mapA = mapChanges("alice", changes);
  const mapB = [...mapA.slice(0, half), ...mapChanges("bob", half)]; // half shared, half concurrent
  const listA = listChanges("alice", changes);
  const listB = [...listA.slice(0, half), ...listChanges("bob", half, listA[half - 1]!.i)];
  const clone = <T>(x: T): T => structuredClone(x);
  const plainPutsPerSecond = await plainPutRate(5000);
  const map = {
    ours: rate(() => {
      const doc = new MapCrdt("carol", mapA);
      doc.mergeChanges(mapB);
      return doc.value;
    }),
    theirs: rate(() => {
      const doc = new t.MapCrdt("carol", clone(mapA) as never);
      doc.mergeChanges(clone(mapB) as never);
      return doc.value;
    }, 1000, 5),
  };
  const list = {
    ours: rate(() => {
      const doc = new ListCrdt("carol", listA);
      doc.mergeChanges(listB);
      return doc.value;
    }),
    theirs: rate(() => {
      const doc = new t.ListCrdt("carol", clone(listA) as never);
      doc.mergeChanges(clone(listB) as never);
      return doc.value;
    }, 1000, 5),
  };
  const documentPutsPerSecond = await documentPutRate(mapA, 20);
  return { changes, plainPutsPerSecond, map, list, documentPutsPerSecond };
}

export function printCrdtFigures(f: CrdtFigures, print: (line: string) => void): void {
  const n = f.changes.toLocaleString();
  print(`plain putData on one node (sign + merge, memory store): ${fmt(f.plainPutsPerSecond, 0)} puts/s`);
  for (const [name, r] of [["map", f.map], ["list", f.list]] as const) {
    print(
      `${name}: replica of ${n} changes merges another ${n} (half new) and reads the value: ${fmt(r.ours, 1)} merges/s = ${fmt((r.ours * f.changes) / 1e6, 2)} M changes/s ` +
        `(tool-db 2.6.6 ${name}: ${fmt(r.theirs, 2)} merges/s; ratio ${fmt(r.ours / r.theirs, 0)}x; ${fmt(r.ours / f.plainPutsPerSecond, 3)} x the plain put rate)`,
    );
  }
  print(`putCrdt of a signed ${n}-change map into its stored document (verify-free local path): ${fmt(f.documentPutsPerSecond, 1)} /s (${fmt(f.documentPutsPerSecond / f.plainPutsPerSecond, 4)} x the plain put rate)`);
}
