/**
 * Pieces for driving the ToolDb handshake by hand over a raw `ws` socket:
 * a fresh key pair, and a signed ping (optionally tampered with).
 */
import type { PeerRecord } from "../../src/core/messages.js";
import { clientIdOf, signPeerRecord } from "../../src/core/peer-record.js";
import { randomId } from "../../src/core/random.js";
import { EcdsaUser } from "../../src/users/ecdsa-user.js";

export interface RawIdentity {
  user: EcdsaUser;
  address: string;
  clientId: string;
}

export async function rawIdentity(): Promise<RawIdentity> {
  const user = new EcdsaUser();
  await user.ready;
  const address = user.getAddress()!;
  return { user, address, clientId: clientIdOf(address) };
}

export type PingFrame = { type: "ping"; id: string; to: string[]; clientId: string; isServer: false; peer: PeerRecord };

/** A ping signed by `id`; the options tamper with its topic, timestamp or clientId. */
export async function signedPing(
  id: RawIdentity,
  topic: string,
  opts: { timestamp?: number; clientId?: string } = {},
): Promise<PingFrame> {
  const peer = await signPeerRecord(id.user, topic, "127.0.0.1", 0, opts.timestamp ?? Date.now());
  const clientId = opts.clientId ?? id.clientId;
  return { type: "ping", id: randomId(), to: [clientId], clientId, isServer: false, peer };
}
