import assert from "node:assert/strict";
import { type ErrorCode, ToolDb, isToolDbError } from "../../src/index.js";

/** For `assert.throws`/`rejects`: a ToolDbError of `code` whose message matches `text` (when given). */
export function typed(code: ErrorCode, text?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isToolDbError(err, code), `expected ToolDbError ${code}, got ${String((err as Error)?.name)}: ${String((err as Error)?.message)}`);
    if (text) assert.match(err.message, text);
    return true;
  };
}

/** A client node on `topic`, ready and signed in anonymously: what argument checks of the API are run against. */
export async function signedInNode(topic: string): Promise<ToolDb> {
  const db = new ToolDb({ topic });
  await db.ready;
  await db.anonSignIn();
  return db;
}
