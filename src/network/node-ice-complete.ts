import { RTCPeerConnection } from "webrtc-polyfill";

/**
 * Node only. webrtc-polyfill (node-datachannel, the RTCPeerConnection that
 * simple-peer uses in Node) reports the end of ICE gathering through
 * `icegatheringstatechange` but never fires the final `icecandidate` event
 * with a null candidate that the spec and browsers fire. simple-peer, which
 * bittorrent-tracker runs without trickle, waits for that event, else 5 s,
 * before it sends an offer or an answer: 10 s per link. This adds the
 * missing event, once per completed gathering, to every instance.
 */
const PATCHED = Symbol.for("tooldb-dht.ice-complete");

type Patchable = { [PATCHED]?: true; dispatchEvent(event: Event): boolean };

export function fireIceCompleteInNode(): void {
  const proto = RTCPeerConnection.prototype as unknown as Patchable;
  if (proto[PATCHED]) return;
  proto[PATCHED] = true;
  const dispatch = proto.dispatchEvent;
  proto.dispatchEvent = function (this: RTCPeerConnection, event: Event): boolean {
    const result = dispatch.call(this, event);
    if (event.type === "icegatheringstatechange" && this.iceGatheringState === "complete") {
      this.onicecandidate?.({ candidate: null } as RTCPeerConnectionIceEvent);
    }
    return result;
  };
}
