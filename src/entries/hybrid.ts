export { ServerSelection, type ServerSelectionOptions, type KnownServer, type ServerSource, type ServerLinkState } from "../peering/server-selection.js";
export { ServerUrlCache, type CachedServer, MAX_CACHED_SERVER_URLS } from "../peering/server-url-cache.js";
