/**
 * A message that carries a record, built around the record's JSON as it was
 * stored: the record (most of the frame) is spliced in, not serialised again.
 */
export function frameWithRecord(fields: Readonly<Record<string, unknown>>, recordJson: string): string {
  const head = JSON.stringify(fields);
  return `${head.slice(0, -1)}${head.length > 2 ? "," : ""}"data":${recordJson}}`;
}
