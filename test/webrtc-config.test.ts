/**
 * The peer connections' configuration never falls back to public STUN
 * servers: simple-peer merges its own defaults (Google's and Twilio's STUN)
 * under a configuration that has no `iceServers` (found by an outside check:
 * `rtcConfig: { iceTransportPolicy: "all" }` sent every page's candidates
 * gathering to public servers, though the docs promise host candidates only).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rtcConfigOf } from "../src/network/webrtc-network.js";

describe("WebRTC configuration", { timeout: 10_000 }, () => {
  it("has iceServers [] unless the caller gives some, and keeps the caller's other fields", () => {
    assert.deepEqual(rtcConfigOf(undefined), { iceServers: [] });
    assert.deepEqual(rtcConfigOf({ iceTransportPolicy: "all" }), { iceTransportPolicy: "all", iceServers: [] });
    assert.deepEqual(rtcConfigOf({ bindAddress: "127.0.0.2" }), { bindAddress: "127.0.0.2", iceServers: [] });
    const stun = [{ urls: "stun:stun.example.org:3478" }];
    assert.deepEqual(rtcConfigOf({ iceServers: stun }), { iceServers: stun });
  });
});
