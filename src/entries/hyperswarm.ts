// "tooldb-dht/hyperswarm": the Hyperswarm transport (Node only; loads hyperswarm's native modules).
export {
  HyperswarmNetwork,
  ToolDbHyperswarm,
  ToolDbHyperswarm as Hyperswarm,
  HYPERDHT_BOOTSTRAP_ENV,
  hyperdhtBootstrapFromEnv,
  topicKey,
  type HyperswarmNetworkOptions,
} from "../network/hyperswarm-network.js";
export { ToolDbHyperswarm as default } from "../network/hyperswarm-network.js";
