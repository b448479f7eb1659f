export { ServerSelection, type ServerSelectionOptions, type KnownServer, type ServerSource, type ServerLinkState } from "./server-selection.js";
export { PeerCache, type CachedServer, MAX_CACHED_SERVERS } from "./peer-cache.js";
