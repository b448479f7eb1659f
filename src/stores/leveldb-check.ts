/**
 * A read-only look at a LevelDB directory before it is opened.
 *
 * LevelDB (as classic-level builds it: no `paranoid_checks`) opens a damaged
 * directory without a word and then loses data for good: with CURRENT gone
 * it creates an empty database and deletes every table file; with a
 * truncated manifest it forgets the tables written after the cut and deletes
 * them; a corrupt stretch of the write-ahead log is skipped, and the log is
 * deleted once replayed. So before opening, this reads what LevelDB would:
 * CURRENT, the manifest (its records and the version edits in them), the
 * size of every live table, and the checksums of the logs still to replay.
 * Anything that does not add up is reported, and the store refuses to open;
 * `ClassicLevel.repair` (`tooldb-dht serve --repair`) rebuilds a manifest
 * from the files themselves.
 *
 * Formats: leveldb/doc/log_format.md and leveldb/db/version_edit.cc.
 */
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";

export type LevelDirState = { kind: "absent" } | { kind: "empty" } | { kind: "healthy" } | { kind: "damaged"; problems: string[] };

const BLOCK = 32 * 1024;
const HEADER = 7;
const enum RecordType {
  Zero = 0,
  Full = 1,
  First = 2,
  Middle = 3,
  Last = 4,
}

const LEVELDB_FILE = /^(?:\d+\.(?:log|ldb|sst)|MANIFEST-\d+)$/;

/** Inspects `dir` without changing anything (see the module comment). */
export async function checkLevelDir(dir: string): Promise<LevelDirState> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "absent" };
    throw err;
  }
  const files = new Set(names);
  const hasData = names.some((n) => LEVELDB_FILE.test(n));
  if (!files.has("CURRENT")) {
    return hasData ? { kind: "damaged", problems: [`CURRENT is missing, but ${names.filter((n) => LEVELDB_FILE.test(n)).length} LevelDB files are there`] } : { kind: "empty" };
  }
  const manifestName = (await readFile(join(dir, "CURRENT"), "latin1")).trim();
  if (!/^MANIFEST-\d+$/.test(manifestName)) return { kind: "damaged", problems: [`CURRENT does not name a manifest (${JSON.stringify(manifestName.slice(0, 40))})`] };
  if (!files.has(manifestName)) return { kind: "damaged", problems: [`CURRENT names ${manifestName}, which is missing`] };

  const problems: string[] = [];
  const manifest = readLog(await readFile(join(dir, manifestName)));
  if (manifest.corruptAt !== undefined) problems.push(`${manifestName} is corrupt at byte ${manifest.corruptAt}`);
  if (manifest.tornAt !== undefined) problems.push(`${manifestName} is truncated (its last record, at byte ${manifest.tornAt}, is incomplete)`);
  let version: Version;
  try {
    version = applyEdits(manifest.records);
  } catch (err) {
    return { kind: "damaged", problems: [...problems, `${manifestName}: ${(err as Error).message}`] };
  }
  if (version.nextFile === undefined || version.logNumber === undefined) problems.push(`${manifestName} lacks the next-file or log number (truncated)`);

  for (const [number, expected] of version.tables) {
    const name = tableName(number, files);
    if (!name) {
      problems.push(`table ${pad(number)}.ldb is missing`);
      continue;
    }
    const size = (await stat(join(dir, name))).size;
    if (size !== expected) problems.push(`table ${name} has ${size} bytes, the manifest says ${expected}${size < expected ? " (truncated)" : ""}`);
  }
  for (const name of names) {
    const number = /^(\d+)\.log$/.exec(name)?.[1];
    if (number === undefined) continue;
    const n = Number(number);
    if (n < (version.logNumber ?? 0) && n !== version.prevLogNumber) continue;
    const log = readLog(await readFile(join(dir, name)));
    // A torn or garbled tail is a crash during a write LevelDB never confirmed as synced: it drops it, and so do we.
    if (log.corruptAt !== undefined && log.validAfterCorruption) problems.push(`write-ahead log ${name} is corrupt at byte ${log.corruptAt}, with records after it`);
  }
  return problems.length > 0 ? { kind: "damaged", problems } : { kind: "healthy" };
}

interface LogReadout {
  /** Logical records, in order, up to the first problem. */
  records: Buffer[];
  /** Where a record failed its checksum or framing. */
  corruptAt?: number;
  /** Records with valid checksums follow the corruption (data would be skipped, not just a torn tail). */
  validAfterCorruption?: boolean;
  /** Where the file ends inside a record. */
  tornAt?: number;
}

/** Reads LevelDB's log format (the write-ahead log and the manifest share it). */
function readLog(data: Buffer): LogReadout {
  const records: Buffer[] = [];
  let pending: Buffer[] | undefined;
  let offset = 0;
  while (offset < data.length) {
    const blockLeft = BLOCK - (offset % BLOCK);
    if (blockLeft < HEADER) {
      offset += blockLeft; // block trailer
      continue;
    }
    if (offset + HEADER > data.length) return { records, tornAt: offset };
    const length = data.readUInt16LE(offset + 4);
    const type = data[offset + 6]!;
    if (type === RecordType.Zero && length === 0) {
      offset += blockLeft; // preallocated space (LevelDB skips the rest of the block)
      continue;
    }
    const end = offset + HEADER + length;
    if (end > data.length && length <= blockLeft - HEADER) return { records, tornAt: offset };
    const sound = length <= blockLeft - HEADER && type >= RecordType.Full && type <= RecordType.Last && data.readUInt32LE(offset) === maskedCrc(data.subarray(offset + 6, end));
    if (!sound) return { records, corruptAt: offset, validAfterCorruption: anyRecordFrom(data, offset + blockLeft) };
    const payload = data.subarray(offset + HEADER, end);
    if (type === RecordType.Full) records.push(payload);
    else if (type === RecordType.First) pending = [payload];
    else if (pending) {
      pending.push(payload);
      if (type === RecordType.Last) {
        records.push(Buffer.concat(pending));
        pending = undefined;
      }
    }
    offset = end;
  }
  return pending ? { records, tornAt: offset } : { records };
}

/** Whether a record with a valid checksum starts anywhere from `offset` on (checked where LevelDB resynchronises: block starts, then record by record). */
function anyRecordFrom(data: Buffer, offset: number): boolean {
  for (let block = offset; block + HEADER <= data.length; block += BLOCK) {
    const length = data.readUInt16LE(block + 4);
    const type = data[block + 6]!;
    if (type >= RecordType.Full && type <= RecordType.Last && block + HEADER + length <= data.length) {
      if (data.readUInt32LE(block) === maskedCrc(data.subarray(block + 6, block + HEADER + length))) return true;
    }
  }
  return false;
}

interface Version {
  logNumber?: number;
  prevLogNumber?: number;
  nextFile?: number;
  /** Live table files: number -> size in bytes. */
  tables: Map<number, number>;
}

const enum Tag {
  Comparator = 1,
  LogNumber = 2,
  NextFileNumber = 3,
  LastSequence = 4,
  CompactPointer = 5,
  DeletedFile = 6,
  NewFile = 7,
  PrevLogNumber = 9,
}

/** Replays the manifest's version edits (deletions of an edit before its additions, as VersionSet::Builder does). */
function applyEdits(records: Buffer[]): Version {
  const version: Version = { tables: new Map() };
  for (const record of records) {
    const r = new Reader(record);
    const added: Array<[number, number]> = [];
    while (!r.done) {
      const tag = r.varint();
      switch (tag) {
        case Tag.Comparator:
          r.slice();
          break;
        case Tag.LogNumber:
          version.logNumber = r.varint();
          break;
        case Tag.PrevLogNumber:
          version.prevLogNumber = r.varint();
          break;
        case Tag.NextFileNumber:
          version.nextFile = r.varint();
          break;
        case Tag.LastSequence:
          r.varint();
          break;
        case Tag.CompactPointer:
          r.varint();
          r.slice();
          break;
        case Tag.DeletedFile:
          r.varint();
          version.tables.delete(r.varint());
          break;
        case Tag.NewFile: {
          r.varint();
          const number = r.varint();
          added.push([number, r.varint()]);
          r.slice();
          r.slice();
          break;
        }
        default:
          throw new Error(`unknown version edit tag ${tag}`);
      }
    }
    for (const [number, size] of added) version.tables.set(number, size);
  }
  return version;
}

class Reader {
  private at = 0;
  constructor(private readonly data: Buffer) {}

  get done(): boolean {
    return this.at >= this.data.length;
  }

  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (this.at >= this.data.length) throw new Error("version edit ends inside a number");
      const byte = this.data[this.at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    throw new Error("version edit has an overlong number");
  }

  slice(): void {
    const length = this.varint();
    if (this.at + length > this.data.length) throw new Error("version edit ends inside a field");
    this.at += length;
  }
}

function pad(n: number): string {
  return String(n).padStart(6, "0");
}

function tableName(number: number, files: ReadonlySet<string>): string | undefined {
  for (const name of [`${pad(number)}.ldb`, `${pad(number)}.sst`]) if (files.has(name)) return name;
  return undefined;
}

/**
 * LevelDB's record checksum: CRC-32C (Castagnoli) of the type byte and the
 * payload, masked. Node has no CRC-32C and the npm ones bring native
 * builds or a chain of SDK packages; the table form is a dozen lines.
 */
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

function maskedCrc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  const crc = (c ^ 0xffffffff) >>> 0;
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}
