import type { ToolDb } from "../../src/index.js";

/** Counts the signature checks `db` asks for; while `hold` is set, they wait for it. */
export function watchSignatureChecks(db: ToolDb): { count: number; hold?: Promise<void> } {
  const watch: { count: number; hold?: Promise<void> } = { count: 0 };
  const original = db.verifier.verifySigned.bind(db.verifier);
  db.verifier.verifySigned = async (record, prepared) => {
    watch.count++;
    await watch.hold;
    return original(record, prepared);
  };
  return watch;
}
