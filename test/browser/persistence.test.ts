import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { launchChromium, openPage, servePages, type PageServer } from "../helpers/chromium.js";

describe("browser node: what survives a page reload (IndexedDB by default)", () => {
  let browser: Browser;
  let server: PageServer;
  before(async () => {
    server = await servePages();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it("node keys, the signed-in account and stored data persist; reads work with no server", async () => {
    const { page, errors } = await openPage(browser, server.url);
    const first = await page.evaluate(async () => {
      const { ToolDb } = (window as any).tooldb;
      const db = new ToolDb({ topic: "reload-test", storageName: "app" });
      await db.ready;
      await db.signUp("alice", "correct horse");
      await db.signIn("alice", "correct horse");
      await db.putData("note", "kept across reloads", true);
      await db.putData("shared", { n: 1 });
      const out = { peer: db.peerAccount.getAddress(), user: db.userAccount.getAddress(), name: db.userAccount.getUsername() };
      await db.close();
      return out;
    });
    assert.notEqual(first.peer, first.user);
    await page.reload();
    await page.waitForFunction(() => "tooldb" in window);
    const second = await page.evaluate(async () => {
      const { ToolDb } = (window as any).tooldb;
      const db = new ToolDb({ topic: "reload-test", storageName: "app" });
      await db.ready;
      const out = {
        peer: db.peerAccount.getAddress(),
        user: db.userAccount.getAddress(),
        name: db.userAccount.getUsername(),
        note: await db.getData("note", true),
        shared: await db.getData("shared"),
        peers: db.network.peers.length,
      };
      await db.close();
      return out;
    });
    assert.deepEqual(second, { ...first, note: "kept across reloads", shared: { n: 1 }, peers: 0 });
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  it("another storageName is another identity (the check above can fail)", async () => {
    const { page } = await openPage(browser, server.url);
    const [a, b] = await page.evaluate(async () => {
      const { ToolDb } = (window as any).tooldb;
      const out: string[] = [];
      for (const name of ["one", "two"]) {
        const db = new ToolDb({ topic: "reload-test", storageName: name });
        await db.ready;
        out.push(db.peerAccount.getAddress());
        await db.close();
      }
      return out;
    });
    assert.notEqual(a, b);
    await page.context().close();
  });
});
