import type { ChildProcess } from "node:child_process";

/** Sends `{ type, ...extra }` to a benchmark child and resolves with its first reply of the same type. */
export function ask<R extends { type: string }>(child: ChildProcess, type: string, extra: Record<string, unknown> = {}): Promise<R> {
  return new Promise((resolve) => {
    const onMsg = (m: R) => {
      if (m.type === type) {
        child.off("message", onMsg);
        resolve(m);
      }
    };
    child.on("message", onMsg);
    child.send({ type, ...extra });
  });
}
