import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ErrorCode, LevelStore, ToolDb, isToolDbError } from "../src/index.js";
import { closeAll, startClient, startServer } from "./helpers/nodes.js";

describe("accounts", () => {
  const nodes: ToolDb[] = [];
  after(() => closeAll(...nodes));

  it("signs up, then signs in from another node with the same password", async () => {
    const server = await startServer();
    nodes.push(server);
    const alice = await startClient([server]);
    nodes.push(alice);
    await alice.signUp("alice", "correct horse");
    const device = await startClient([server]);
    nodes.push(device);
    await device.signIn("alice", "correct horse");
    const address = device.userAccount.getAddress();
    assert.ok(address);
    assert.equal(device.userAccount.getUsername(), "alice");
    await device.putData("bio", "hi", true);
    assert.equal(await device.getData("bio", true), "hi");
    assert.equal(await server.getData(`:${address}.bio`), "hi");
  });

  it("rejects a wrong password with WRONG_PASSWORD and keeps the current user", async () => {
    const node = new ToolDb({ topic: "test" });
    nodes.push(node);
    await node.signUp("bob", "right");
    const before = node.userAccount.getAddress();
    await assert.rejects(node.signIn("bob", "wrong"), (err: unknown) => isToolDbError(err, ErrorCode.WRONG_PASSWORD));
    assert.equal(node.userAccount.getAddress(), before);
  });

  it("refuses a second sign-up of the same name and a sign-in of an unknown name", async () => {
    const node = new ToolDb({ topic: "test" });
    nodes.push(node);
    await node.signUp("carol", "pw");
    await assert.rejects(node.signUp("carol", "other"), (err: unknown) => isToolDbError(err, ErrorCode.USER_EXISTS));
    await assert.rejects(node.signIn("nobody", "pw"), (err: unknown) => isToolDbError(err, ErrorCode.USER_NOT_FOUND));
  });

  it("refuses dotted keys and namespaced keys before sign-in is possible", async () => {
    const node = new ToolDb({ topic: "test" });
    nodes.push(node);
    await assert.rejects(node.putData("a.b", 1), (err: unknown) => isToolDbError(err, ErrorCode.INVALID_KEY));
  });
});

describe("LevelDB persistence", () => {
  const dir = mkdtempSync(join(tmpdir(), "tooldb-level-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps records, the node identity and the user across a restart, under storageName", async () => {
    const storageName = join(dir, "node-a");
    const first = new ToolDb({ topic: "test", storageAdapter: LevelStore, storageName });
    await first.ready;
    await first.putData("persisted", { n: 42 });
    const peerAddress = first.nodeAddress();
    const userAddress = first.userAccount.getAddress();
    await first.close();
    assert.ok(existsSync(storageName) && existsSync(`${storageName}.keys`), "data and keys live where storageName says");

    const second = new ToolDb({ topic: "test", storageAdapter: LevelStore, storageName });
    await second.ready;
    try {
      assert.deepEqual(await second.getData("persisted"), { n: 42 });
      assert.equal(second.nodeAddress(), peerAddress);
      assert.equal(second.userAccount.getAddress(), userAddress);
    } finally {
      await second.close();
    }
  });

  /** Every byte of the files of `<storageName>.keys`, as text. */
  const keyFiles = (storageName: string) =>
    readdirSync(`${storageName}.keys`)
      .map((f) => readFileSync(join(`${storageName}.keys`, f)).toString("latin1"))
      .join("");

  it("a password account's keys are never written to disk in Node: a restart is anonymous again, as in tool-db 2.6.6", async () => {
    // Before, signIn saved the account's private key unencrypted and the next start was signed in with no password (outside check).
    const storageName = join(dir, "node-b");
    const first = new ToolDb({ topic: "test", storageAdapter: LevelStore, storageName });
    await first.ready;
    const anonymous = first.userAccount.getAddress();
    await first.signUp("ann", "correct horse");
    await first.signIn("ann", "correct horse");
    const ann = first.userAccount.getAddress();
    const { priv } = (await first.userAccount.exportKeys()) as unknown as { priv: string };
    assert.notEqual(ann, anonymous);
    assert.match(priv, /^[0-9a-f]{64,}$/, "the exported private key, to look for");
    await first.close();
    assert.ok(!keyFiles(storageName).includes(priv), "ann's private key is in no file of the key store");

    const second = new ToolDb({ topic: "test", storageAdapter: LevelStore, storageName });
    await second.ready;
    try {
      assert.equal(second.userAccount.getAddress(), anonymous, "anonymous again, under the anonymous keys kept before");
      await second.signIn("ann", "correct horse");
      assert.equal(second.userAccount.getAddress(), ann, "the password still opens the account");
    } finally {
      await second.close();
    }
  });

  it("rememberUser: true keeps the session across a restart; a start without it drops the saved account", async () => {
    const storageName = join(dir, "node-c");
    const first = new ToolDb({ topic: "test", storageAdapter: LevelStore, storageName, rememberUser: true });
    await first.ready;
    await first.signUp("bea", "pw");
    await first.signIn("bea", "pw");
    const bea = first.userAccount.getAddress();
    await first.close();

    const second = new ToolDb({ topic: "test", storageAdapter: LevelStore, storageName, rememberUser: true });
    await second.ready;
    assert.equal(second.userAccount.getAddress(), bea, "signed in as bea with no password");
    await second.close();

    const third = new ToolDb({ topic: "test", storageAdapter: LevelStore, storageName });
    await third.ready;
    try {
      assert.notEqual(third.userAccount.getAddress(), bea, "without rememberUser the saved account is replaced by anonymous keys");
    } finally {
      await third.close();
    }
    assert.throws(() => new ToolDb({ topic: "test", rememberUser: "yes" as unknown as boolean }), (err: unknown) => isToolDbError(err, ErrorCode.INVALID_ARGUMENT));
  });
});
