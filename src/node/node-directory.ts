/**
 * The node's server directory (its own signed peer record, the servers it
 * knows) and the learner that takes linked sessions' server lists into it,
 * wired to the node's options, keys and events (split from tooldb.ts).
 */
import type { ToolDbUserAdapter } from "../users/user-adapter.js";
import type { NodeContext } from "./node-context.js";
import { ServerDirectory } from "./server-directory.js";
import { ServerListLearner } from "./server-list-learner.js";

type DirectoryNode = NodeContext & { readonly peerAccount: ToolDbUserAdapter; nodeAddress(): string };

export function directoryFor(node: DirectoryNode, exemptIps: readonly string[]): { directory: ServerDirectory; serverLists: ServerListLearner } {
  const { options, network, log } = node;
  const directory = new ServerDirectory({
    signer: node.peerAccount,
    topic: options.topic,
    host: options.publicHost ?? options.host,
    url: options.publicUrl, // checked with the options
    port: () => network.port || options.port,
    isServer: options.server,
    now: () => node.now(),
    exemptIps,
  });
  const serverLists = new ServerListLearner({
    learn: (records, from) => directory.learn(records, from, node.nodeAddress()),
    strike: (from, code, reason) => network.strikePeer(from, code, reason),
    refused: (event) => node.refused(event),
    learned: (records, from) => void node.emit("servers", records, from), // silenced once closed
    log, now: () => node.now(), intervalMs: options.serverListInterval,
  });
  return { directory, serverLists };
}
