export { BaseCrdt, CRDT_MAP, CRDT_LIST, CRDT_COUNTER } from "./base-crdt.js";
export { MapCrdt } from "./map-crdt.js";
export { ListCrdt } from "./list-crdt.js";
export { CounterCrdt } from "./counter-crdt.js";
export { CRDT_LIMITS } from "./limits.js";
export { canonicalJson } from "./canonical.js";
export {
  type MapChange,
  type MapSetChange,
  type MapDelChange,
  type ListChange,
  type ListInsChange,
  type ListDelChange,
  type CounterChange,
  isMapChange,
  isListChange,
  isCounterChange,
  crdtRecordProblem,
  type MapOperations,
  type SetMapChange,
  type DelMapChange,
  type MapChanges,
  type ListOperations,
  type InsListChange,
  type DelListChange,
  type ListChanges,
  type CounterOperations,
  type AddCounterChange,
  type SubCounterChange,
  type CounterChanges,
} from "./changes.js";
