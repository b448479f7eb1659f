// "tooldb-dht/crdt": the CRDT types, and the node's merged documents of them.
export * from "../crdt/index.js";
export { CrdtDocs, headsOf, splitHeads, type CrdtDocument } from "../node/crdt-docs.js";
