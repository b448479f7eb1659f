export { ServerSelection, type ServerSelectionOptions, type KnownServer, type ServerSource, type ServerLinkState } from "./server-selection.js";
export { ServerUrlCache, type CachedServer, MAX_CACHED_SERVER_URLS } from "./server-url-cache.js";
