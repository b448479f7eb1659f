// The architecture of src/, as rules a machine checks (`npm run layers`, part of `npm test`).
// Layers, bottom to top; an import may only point down (or sideways inside a layer):
//   0 base      src/base, src/crypto                    clock, errors, logger, events, bounded sets; hashes, ECDSA
//   1 records   src/records, src/crdt, src/limits,      what is signed, verified and sent; CRDT types;
//               src/utils                               policy (limits, rate limiter, peer URLs); tool-db's helpers
//   2 adapters  src/stores, src/users, src/network,     each a base class or interface plus implementations
//               src/discovery
//   3 node      src/node (src/node/sync)                ToolDb: protocol, intake, outbox, acks, server sync
//   4 services  src/peering, src/metrics                what attaches to a node (DHT peering, server selection, metrics)
//   5 platform  src/platform, src/entries,              the only places that pick concrete adapters;
//               src/index.ts, src/browser.ts            the package's public entry points
//   6 cli       src/cli                                 the `tooldb-dht` command
const layers = [
  ["base", "^src/(base|crypto)/"],
  ["records", "^src/(records|crdt|limits|utils)/"],
  ["adapters", "^src/(stores|users|network|discovery)/"],
  ["node", "^src/node/"],
  ["services", "^src/(peering|metrics)/"],
  ["platform", "^src/(platform|entries)/|^src/(index|browser)\\.ts$"],
  ["cli", "^src/cli/"],
];

/** One rule per layer: nothing in it imports a layer above it. */
const noUpwardImports = layers.slice(0, -1).map(([name, path], i) => ({
  name: `${name}-imports-no-layer-above`,
  comment: `${name} sits below ${layers.slice(i + 1).map(([n]) => n).join(", ")}`,
  severity: "error",
  from: { path },
  to: { path: layers.slice(i + 1).map(([, p]) => p).join("|") },
}));

// Concrete adapters: only the platform layer (and the CLI above it) picks them.
// Adapters may build on each other (a discovery mechanism on the Hyperswarm transport).
const concreteAdapters = [
  "^src/stores/(memory|level|indexeddb)-store\\.ts$",
  "^src/users/ecdsa-user\\.ts$",
  "^src/network/(websocket|browser-websocket|tcp|hyperswarm|webrtc|composite)-network\\.ts$",
].join("|");

module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", comment: "no import cycles, type-only imports included", from: {}, to: { circular: true } },
    ...noUpwardImports,
    {
      name: "node-and-services-pick-no-concrete-adapter",
      comment: "the node and what attaches to it see adapter contracts only; platform entries choose the defaults",
      severity: "error",
      from: { path: "^src/(node|peering|metrics)/" },
      to: { path: concreteAdapters },
    },
    {
      // Peering joins discovery mechanisms to a node and metrics read their counters; the node itself never looks.
      name: "node-knows-no-discovery",
      comment: "the node is found and finds others only through what the platform attaches to it",
      severity: "error",
      from: { path: "^src/node/" },
      to: { path: "^src/discovery/" },
    },
    {
      name: "no-orphans",
      comment: "every file under src/ is reachable from an entry point or imports something",
      severity: "error",
      from: { orphan: true, path: "^src/", pathNot: "\\.d\\.ts$" },
      to: {},
    },
  ],
  options: {
    parser: "swc", // TypeScript 7 has no JS compiler API; swc parses TS, type-only imports included
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    includeOnly: "^src/",
    reporterOptions: {
      ddot: { collapsePattern: "^src/(node/sync|discovery/mechanisms|[^/]+)" },
    },
  },
};
// build/graph.ts (npm run graph) draws the layers; not enumerable, as dependency-cruiser allows no extra keys.
Object.defineProperty(module.exports, "layers", { value: layers, enumerable: false });
