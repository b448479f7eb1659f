export { default, Discovery } from "./discovery.js";
export type { DiscoveryEvents, JoinOptions, ListEntry, PeerType } from "./discovery.js";
export { DISCOVERY_DEFAULTS, type DiscoveryOptions } from "./options.js";
export { topicInfoHash, INFO_HASH_LENGTH, type Topic, type TopicHash } from "./info-hash.js";
export type { PeerAddress } from "./peer-table.js";
export { startBootstrapNode, type BootstrapNode, type BootstrapNodeOptions } from "./bootstrap-node.js";
export { loadDhtState, saveDhtState, type DhtState } from "./state.js";
