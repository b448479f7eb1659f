import { CRDT_LIMITS } from "./limits.js";

/** tool-db 2.6.6's change formats, field for field. */
export interface MapSetChange<T = unknown> {
  t: "SET";
  k: string;
  a: string;
  v: T;
  i: number;
}
export interface MapDelChange {
  t: "DEL";
  k: string;
  a: string;
  i: number;
}
export type MapChange<T = unknown> = MapSetChange<T> | MapDelChange;

/** `i` is `<author>-<8-digit count>`; `p`/`n` the ids of the neighbours when it was inserted. */
export interface ListInsChange<T = unknown> {
  t: "INS";
  v: T;
  i: string;
  p?: string;
  n?: string;
}
/** `v` is the id of the deleted element. */
export interface ListDelChange {
  t: "DEL";
  v: string;
  i: string;
}
export type ListChange<T = unknown> = ListInsChange<T> | ListDelChange;

export interface CounterChange {
  t: "ADD" | "SUB";
  v: number;
  a: string;
  i: number;
}

type Obj = Record<string, unknown>;

const isObj = (c: unknown): c is Obj => typeof c === "object" && c !== null && !Array.isArray(c);
const isId = (v: unknown): v is string => typeof v === "string" && v.length > 0 && v.length <= CRDT_LIMITS.maxIdLength;
const isIndex = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const optionalId = (v: unknown) => v === undefined || v === null || isId(v);

export function isMapChange(c: unknown): c is MapChange {
  if (!isObj(c) || typeof c.k !== "string" || c.k.length > CRDT_LIMITS.maxIdLength || !isId(c.a) || !isIndex(c.i)) return false;
  return (c.t === "SET" && c.v !== undefined) || c.t === "DEL";
}

export function isListChange(c: unknown): c is ListChange {
  if (!isObj(c) || !isId(c.i)) return false;
  if (c.t === "INS") return c.v !== undefined && optionalId(c.p) && optionalId(c.n);
  return c.t === "DEL" && isId(c.v);
}

export function isCounterChange(c: unknown): c is CounterChange {
  return isObj(c) && (c.t === "ADD" || c.t === "SUB") && typeof c.v === "number" && Number.isFinite(c.v) && isId(c.a) && isIndex(c.i);
}

/**
 * Why a signed CRDT record (`c` set) cannot be accepted, or undefined when
 * it can: its value must be a change list of its type within the limits.
 * tool-db 2.6.6 labels its counters "LIST", so LIST also takes counter changes.
 * Other types (plugins) take any list of objects.
 */
export function crdtRecordProblem(c: string, v: unknown): string | undefined {
  if (c.length === 0 || c.length > CRDT_LIMITS.maxTypeLength) return "CRDT type must be 1 to 64 characters";
  if (!Array.isArray(v)) return `a ${c} record's value must be a change list`;
  if (v.length > CRDT_LIMITS.maxChanges) return `change list of ${v.length} changes is over the limit of ${CRDT_LIMITS.maxChanges}`;
  const valid = c === "MAP" ? isMapChange : c === "COUNTER" ? isCounterChange : c === "LIST" ? (x: unknown) => isListChange(x) || isCounterChange(x) : isObj;
  const bad = v.findIndex((change) => !valid(change));
  return bad === -1 ? undefined : `change ${bad} is not a valid ${c} change`;
}

/** tool-db 2.6.6's names for the same change types. */
export type MapOperations = MapChange["t"];
export type SetMapChange<T = unknown> = MapSetChange<T>;
export type DelMapChange = MapDelChange;
export type MapChanges<T = unknown> = MapChange<T>;
export type ListOperations = ListChange["t"];
export type InsListChange<T = unknown> = ListInsChange<T>;
export type DelListChange = ListDelChange;
export type ListChanges<T = unknown> = ListChange<T>;
export type CounterOperations = CounterChange["t"];
export type AddCounterChange = CounterChange & { t: "ADD" };
export type SubCounterChange = CounterChange & { t: "SUB" };
export type CounterChanges = CounterChange;
