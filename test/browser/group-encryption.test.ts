/**
 * Group encryption in a browser: the page (Chromium, the browser bundle,
 * WebCrypto) and Node's @tool-db/ecdsa-user 1.1.3 share a group key and a
 * message both ways, so the formats match across platforms too.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import u from "@tool-db/ecdsa-user";
import { launchChromium, openPage, servePages } from "../helpers/chromium.js";

const T = 60_000;

describe("group encryption in Chromium, against @tool-db/ecdsa-user 1.1.3 in Node", () => {
  it("a key wrapped in the page unwraps in 1.1.3, a key wrapped by 1.1.3 unwraps in the page, and messages cross both ways", { timeout: T }, async () => {
    const server = await servePages();
    const browser = await launchChromium();
    try {
      const { page, errors } = await openPage(browser, server.url);
      const node = await u.generateECDHKeyPair();
      const fromNode = await u.encryptWithKey("from node ✓", await u.importAESKey("11".repeat(32)));
      const inPage = await page.evaluate(
        async ({ nodePublic, fromNode }) => {
          const t = (window as any).tooldb;
          const pair = await t.generateECDHKeyPair();
          const groupKey = t.generateGroupKey();
          const wrapped = await t.wrapGroupKey(groupKey, pair.privateKey, nodePublic);
          const sealed = await t.encryptWithKey("from the page ✓", await t.importAESKey(groupKey));
          const read = await t.decryptWithKey(fromNode, await t.importAESKey("11".repeat(32)));
          return { publicKey: pair.publicKey, privateKey: pair.privateKey, groupKey, wrapped, sealed, read };
        },
        { nodePublic: node.publicKey, fromNode },
      );
      assert.equal(inPage.read, "from node ✓");
      const unwrapped = await u.unwrapGroupKey(inPage.wrapped, node.privateKey, inPage.publicKey);
      assert.equal(unwrapped, inPage.groupKey);
      assert.equal(await u.decryptWithKey(inPage.sealed, await u.importAESKey(unwrapped)), "from the page ✓");

      const nodeGroupKey = "22".repeat(32);
      const wrappedByNode = await u.wrapGroupKey(nodeGroupKey, node.privateKey, inPage.publicKey);
      const unwrappedInPage = await page.evaluate(
        async ({ wrapped, privateKey, nodePublic }) => (window as any).tooldb.unwrapGroupKey(wrapped, privateKey, nodePublic),
        { wrapped: wrappedByNode, privateKey: inPage.privateKey, nodePublic: node.publicKey },
      );
      assert.equal(unwrappedInPage, nodeGroupKey);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
