/**
 * A one-pass zip reader that verifies what it streamed against the central
 * directory at the end.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import {
  FormatError,
  IntegrityError,
  UnsupportedError,
} from "../core/errors.ts";
import { type BodySlot, EntryBody, guardEntries } from "./_entry.ts";
import { RawInflater } from "./_inflate.ts";
import { ByteReader } from "./_reader.ts";
import type {
  ArchiveEntries,
  ArchiveEntry,
  EntryType,
  ReadArchiveOptions,
} from "./types.ts";

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const END = 0x06054b50;
const END64 = 0x06064b50;
const END64_LOCATOR = 0x07064b50;
const DESCRIPTOR = 0x08074b50;
const SPANNED = 0x30304b50;
const U32 = 0xffffffff;
const PIECE = 256 * 1024;
const utf8 = new TextDecoder();

/** What was streamed for one local entry, checked against the central directory. */
interface Streamed {
  offset: number;
  end: number;
  rawName: Uint8Array;
  method: number;
  crc: number;
  compressed: number;
  size: number;
  entry: { -readonly [K in keyof ArchiveEntry]: ArchiveEntry[K] };
}

/**
 * Reads a zip archive in one pass, from its local headers, and yields its
 * entries; at the end it parses the central directory and checks it against
 * everything it streamed.
 *
 * - Stored and deflate entries; zip64 sizes and offsets.
 * - Every entry's CRC-32 and sizes are verified (`IntegrityError`).
 * - Data descriptors are found by decompressing to the end of the deflate
 *   stream and then checking the descriptor's CRC-32 and sizes against what
 *   was counted, never by scanning for a signature. A stored entry with a
 *   data descriptor has no reliable end and is a `FormatError`.
 * - The central directory must list exactly the streamed entries (count,
 *   names, offsets, methods, sizes, CRCs), contiguous from byte 0 with no
 *   overlaps or gaps, followed only by the end records and comment; any
 *   mismatch, or junk before or after, is a `FormatError` that fails the
 *   iteration, so an `install` rolls back.
 * - Encrypted entries, other compression methods and split archives are
 *   `UnsupportedError`s.
 *
 * File modes and symlinks are recorded only in the central directory, which
 * comes last. Entries are yielded as files and directories with default modes
 * (0o644 and 0o755); before the iteration ends the reader updates the
 * yielded entries' `mode` (and, for Unix symlinks, `type` to `"symlink"`,
 * whose target is the body already read). `install` applies modes and links
 * after the last entry, so it sees the final values.
 *
 * Each entry's `body` must be consumed or cancelled before the next entry is
 * produced; if it is not, asking for the next entry drains it (still checked).
 *
 * @example Read a zip made by Info-ZIP
 * ```ts
 * import { unzip } from "@sluice/sluice/archive";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.txt`, "alpha ".repeat(100));
 * await new Deno.Command("zip", { args: ["-q", "a.zip", "a.txt"], cwd: dir }).output();
 * const file = await Deno.open(`${dir}/a.zip`);
 * for await (const entry of unzip(file.readable)) {
 *   assert.equal(entry.path, "a.txt");
 *   assert.equal((await new Response(entry.body).text()).length, 600);
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param source The zip bytes.
 * @param options A `signal` that cancels reading.
 * @returns The entries, read once, front to back.
 */
export function unzip(
  source: ReadableStream<Uint8Array>,
  options: ReadArchiveOptions = {},
): ArchiveEntries {
  const reader = new ByteReader(source, "zip archive", options.signal);
  return {
    get bytesRead() {
      return reader.position;
    },
    [Symbol.asyncIterator]: () => zipEntries(reader)[Symbol.asyncIterator](),
  };
}

/** The entries of the zip behind `reader` (for {@linkcode openArchive}, which sniffs first). */
export function zipEntries(reader: ByteReader): AsyncGenerator<ArchiveEntry> {
  return guardEntries(reader, (slot) => readZip(reader, slot));
}

async function* readZip(
  reader: ByteReader,
  slot: BodySlot,
): AsyncGenerator<ArchiveEntry> {
  const streamed: Streamed[] = [];
  for (;;) {
    const offset = reader.position;
    const signature = u32(await reader.readExact(4), 0);
    if (signature === LOCAL) {
      const record = await readLocal(reader, offset);
      streamed.push(record.streamed);
      slot.current = record.body;
      yield record.streamed.entry;
      await record.body.settle();
      slot.current = undefined;
      record.streamed.end = reader.position;
      continue;
    }
    if (signature === CENTRAL || signature === END) {
      await readCentral(reader, offset, signature, streamed);
      return;
    }
    if (offset === 0 && (signature === DESCRIPTOR || signature === SPANNED)) {
      throw new UnsupportedError({
        format: "zip",
        feature: "split archives",
      });
    }
    throw new FormatError({
      format: "zip",
      reason: offset === 0
        ? "no local file header at the start (not a zip, or junk before it)"
        : "expected a local file header or the central directory",
      offset,
    });
  }
}

async function readLocal(
  reader: ByteReader,
  offset: number,
): Promise<{ streamed: Streamed; body: EntryBody }> {
  const head = await reader.readExact(26);
  const flags = u16(head, 2);
  const method = u16(head, 4);
  const dosTime = u16(head, 6);
  const dosDate = u16(head, 8);
  let crc = u32(head, 10);
  let compressed = u32(head, 14);
  let size = u32(head, 18);
  const rawName = (await reader.readExact(u16(head, 22))).slice();
  const extra = await reader.readExact(u16(head, 24));
  let name = utf8.decode(rawName);
  const fields = extraFields(extra);
  if (flags & 0x0001 || flags & 0x0040 || method === 99) {
    throw new UnsupportedError({
      format: "zip",
      feature: "encrypted entries",
      subject: name,
    });
  }
  if (method !== 0 && method !== 8) {
    throw new UnsupportedError({
      format: "zip",
      feature: `compression method ${method} entries`,
      subject: name,
    });
  }
  const unicodePath = fields.get(0x7075);
  if (
    unicodePath && unicodePath.length > 5 && unicodePath[0] === 1 &&
    u32(unicodePath, 1) === crc32(rawName) >>> 0
  ) {
    name = utf8.decode(unicodePath.subarray(5));
  }
  const zip64 = fields.get(0x0001);
  if (zip64) {
    // In a local header both sizes are present once either is 0xffffffff.
    let at = 0;
    if (size === U32) size = u64(zip64, at, offset), at += 8;
    if (compressed === U32) compressed = u64(zip64, at, offset);
  }
  const descriptor = (flags & 0x0008) !== 0;
  if (descriptor && method === 0) {
    throw new FormatError({
      format: "zip",
      reason: `stored entry ${
        JSON.stringify(name)
      } has a data descriptor, so its end is ambiguous`,
      offset,
    });
  }
  let mtime = dosToDate(dosDate, dosTime);
  const stamp = fields.get(0x5455);
  if (stamp && stamp.length >= 5 && (stamp[0]! & 1)) {
    mtime = new Date(
      new DataView(stamp.buffer, stamp.byteOffset).getInt32(1, true) * 1000,
    );
  }
  const directory = name.endsWith("/");
  if (directory) name = name.replace(/\/+$/, "");
  const type: EntryType = directory ? "directory" : "file";

  const streamed: Streamed = {
    offset,
    end: 0,
    rawName,
    method,
    crc,
    compressed,
    size,
    entry: {
      path: name,
      type,
      size: descriptor ? -1 : size,
      mode: directory ? 0o755 : 0o644,
      mtime,
      body: new ReadableStream(),
    },
  };
  if (!descriptor) streamed.entry.crc32 = crc;

  let produced = 0;
  let running = 0;
  const inflater = method === 8
    ? new RawInflater(reader, "zip", descriptor ? Infinity : compressed)
    : undefined;
  let storedLeft = compressed;
  const subject = `zip entry ${JSON.stringify(name)}`;
  const body = new EntryBody(async () => {
    let piece: Uint8Array | null;
    if (inflater) piece = await inflater.next();
    else if (storedLeft === 0) piece = null;
    else {
      piece = await reader.readSome(Math.min(storedLeft, PIECE));
      if (piece === null) await reader.readExact(storedLeft); // throws: truncated
      storedLeft -= piece!.length;
    }
    if (piece !== null) {
      produced += piece.length;
      if (!descriptor && produced > size) {
        throw new IntegrityError({
          check: "size",
          subject,
          expected: String(size),
          actual: `more than ${size}`,
        });
      }
      running = crc32(piece, running);
      return piece;
    }
    inflater?.close();
    const used = inflater ? inflater.consumed : compressed;
    if (descriptor) {
      const declared = await readDescriptor(
        reader,
        zip64 !== undefined,
        running >>> 0,
      );
      crc = streamed.crc = declared.crc;
      streamed.compressed = declared.compressed;
      streamed.size = declared.size;
      streamed.entry.crc32 = declared.crc;
      if (declared.compressed !== used || declared.size !== produced) {
        throw new IntegrityError({
          check: "size",
          subject: `${subject} (data descriptor)`,
          expected: `${declared.compressed}/${declared.size}`,
          actual: `${used}/${produced}`,
        });
      }
    } else if (used !== compressed) {
      throw new FormatError({
        format: "zip",
        reason:
          `${subject} ends after ${used} of its ${compressed} compressed bytes`,
        offset,
      });
    }
    if (produced !== streamed.size) {
      throw new IntegrityError({
        check: "size",
        subject,
        expected: String(streamed.size),
        actual: String(produced),
      });
    }
    if ((running >>> 0) !== crc) {
      throw new IntegrityError({
        check: "crc32",
        subject,
        expected: hex32(crc),
        actual: hex32(running >>> 0),
      });
    }
    streamed.entry.size = produced;
    return null;
  });
  streamed.entry.body = body.stream;
  return { streamed, body };
}

async function readDescriptor(
  reader: ByteReader,
  zip64: boolean,
  counted: number,
): Promise<{ crc: number; compressed: number; size: number }> {
  const offset = reader.position;
  const length = zip64 ? 20 : 12;
  // The signature is optional. A CRC-32 that happens to equal it is told
  // apart by the counted CRC-32 that a real signature is followed by.
  await reader.fill(4 + length);
  const head = reader.peek(Math.min(reader.buffered, 8));
  if (
    head.length >= 4 && u32(head, 0) === DESCRIPTOR &&
    (counted !== DESCRIPTOR || (head.length === 8 && u32(head, 4) === counted))
  ) {
    await reader.skip(4);
  }
  const bytes = await reader.readExact(length);
  return {
    crc: u32(bytes, 0),
    compressed: zip64 ? u64(bytes, 4, offset) : u32(bytes, 4),
    size: zip64 ? u64(bytes, 12, offset) : u32(bytes, 8),
  };
}

async function readCentral(
  reader: ByteReader,
  start: number,
  firstSignature: number,
  streamed: Streamed[],
): Promise<void> {
  const byOffset = new Map(streamed.map((s) => [s.offset, s]));
  const seen = new Set<number>();
  let signature = firstSignature;
  let offset = start;
  let records = 0;
  while (signature === CENTRAL) {
    const head = await reader.readExact(42);
    const madeBy = u16(head, 0);
    const flags = u16(head, 4);
    const method = u16(head, 6);
    const crc = u32(head, 12);
    let compressed = u32(head, 16);
    let size = u32(head, 20);
    const nameLength = u16(head, 24);
    const extraLength = u16(head, 26);
    const commentLength = u16(head, 28);
    let disk = u16(head, 30);
    const external = u32(head, 34);
    let local = u32(head, 38);
    const rawName = await reader.readExact(nameLength);
    const extra = await reader.readExact(extraLength);
    await reader.skip(commentLength);
    const zip64 = extraFields(extra).get(0x0001);
    if (zip64) {
      let at = 0;
      if (size === U32) size = u64(zip64, at, offset), at += 8;
      if (compressed === U32) compressed = u64(zip64, at, offset), at += 8;
      if (local === U32) local = u64(zip64, at, offset), at += 8;
      if (disk === 0xffff && at + 4 <= zip64.length) disk = u32(zip64, at);
    }
    const name = utf8.decode(rawName);
    if (disk !== 0) {
      throw new UnsupportedError({ format: "zip", feature: "split archives" });
    }
    const mismatch = (what: string): never => {
      throw new FormatError({
        format: "zip",
        reason: `the central directory ${what} for ${JSON.stringify(name)}`,
        offset,
      });
    };
    const match = byOffset.get(local) ??
      mismatch(`points at byte ${local}, where no entry starts,`);
    if (seen.has(local)) mismatch("has a second record (overlapping entries)");
    seen.add(local);
    if (!equalBytes(match.rawName, rawName)) {
      mismatch(`names ${JSON.stringify(utf8.decode(match.rawName))} as`);
    }
    if (flags & 0x0001) {
      throw new UnsupportedError({
        format: "zip",
        feature: "encrypted entries",
        subject: name,
      });
    }
    if (method !== match.method) mismatch("gives another method");
    if (crc !== match.crc) mismatch("gives another CRC-32");
    if (compressed !== match.compressed || size !== match.size) {
      mismatch("gives other sizes");
    }
    if ((madeBy >> 8) === 3) applyUnixMode(match, external >>> 16, name);
    records++;
    offset = reader.position;
    signature = u32(await reader.readExact(4), 0);
  }
  if (records !== streamed.length) {
    throw new FormatError({
      format: "zip",
      reason:
        `the central directory lists ${records} entries, ${streamed.length} were streamed`,
      offset: start,
    });
  }
  const centralSize = offset - start;
  let declared: { entries: number; size: number; offset: number } | undefined;
  if (signature === END64) {
    const record = await reader.readExact(8);
    const length = u64(record, 0, offset);
    const body = await reader.readExact(length);
    if (u32(body, 4) !== 0 || u32(body, 8) !== 0) {
      throw new UnsupportedError({ format: "zip", feature: "split archives" });
    }
    declared = {
      entries: u64(body, 20, offset),
      size: u64(body, 28, offset),
      offset: u64(body, 36, offset),
    };
    signature = u32(await reader.readExact(4), 0);
    if (signature !== END64_LOCATOR) {
      throw new FormatError({
        format: "zip",
        reason: "the zip64 end record is not followed by its locator",
        offset: reader.position - 4,
      });
    }
    const locator = await reader.readExact(16);
    if (u32(locator, 0) !== 0 || u32(locator, 12) > 1) {
      throw new UnsupportedError({ format: "zip", feature: "split archives" });
    }
    signature = u32(await reader.readExact(4), 0);
  }
  if (signature !== END) {
    throw new FormatError({
      format: "zip",
      reason: "expected the end of central directory record",
      offset: reader.position - 4,
    });
  }
  const end = await reader.readExact(18);
  if (u16(end, 0) !== 0 || u16(end, 2) !== 0) {
    throw new UnsupportedError({ format: "zip", feature: "split archives" });
  }
  const entries = widen(u16(end, 6), 0xffff, declared?.entries);
  const size = widen(u32(end, 8), U32, declared?.size);
  const at = widen(u32(end, 12), U32, declared?.offset);
  if (
    entries !== records || u16(end, 4) !== u16(end, 6) ||
    size !== centralSize || at !== start
  ) {
    throw new FormatError({
      format: "zip",
      reason: "the end record does not describe the central directory",
      offset: reader.position - 22,
    });
  }
  await reader.skip(u16(end, 16));
  if (!(await reader.atEnd())) {
    throw new FormatError({
      format: "zip",
      reason: "data after the end of the archive",
      offset: reader.position,
    });
  }
  // Entries are contiguous by construction (each starts where the last
  // ended); the first must start at byte 0 and the last end at the directory.
  const last = streamed.at(-1);
  if (
    (streamed[0] && streamed[0].offset !== 0) || (last && last.end !== start)
  ) {
    throw new FormatError({
      format: "zip",
      reason: "the entries do not fill the archive up to the central directory",
      offset: start,
    });
  }
}

function applyUnixMode(match: Streamed, mode: number, name: string): void {
  const kind = mode & 0o170000;
  const entry = match.entry;
  if (kind === 0o120000) {
    if (entry.type !== "file") {
      throw new FormatError({
        format: "zip",
        reason: `${JSON.stringify(name)} is a symlink with a directory name`,
      });
    }
    entry.type = "symlink";
  } else if (kind === 0o040000 && entry.type !== "directory") {
    throw new FormatError({
      format: "zip",
      reason: `${JSON.stringify(name)} is a directory with a file name`,
    });
  }
  // A zip holds no device or fifo, only bytes: such a kind (Info-ZIP records
  // a pipe it read from stdin as a fifo) is installed as the file it holds.
  if (mode !== 0) entry.mode = mode & 0o7777;
}

function widen(value: number, marker: number, wide: number | undefined) {
  return value === marker && wide !== undefined ? wide : value;
}

function extraFields(extra: Uint8Array): Map<number, Uint8Array> {
  const fields = new Map<number, Uint8Array>();
  let at = 0;
  while (at + 4 <= extra.length) {
    const id = u16(extra, at);
    const length = u16(extra, at + 2);
    fields.set(id, extra.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return fields;
}

function dosToDate(date: number, time: number): Date {
  return new Date(
    1980 + (date >> 9),
    ((date >> 5) & 15) - 1,
    date & 31,
    time >> 11,
    (time >> 5) & 63,
    (time & 31) * 2,
  );
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function u16(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8);
}

function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) |
    (bytes[at + 3]! << 24)) >>> 0;
}

function u64(bytes: Uint8Array, at: number, offset: number): number {
  if (at + 8 > bytes.length) {
    throw new FormatError({
      format: "zip",
      reason: "a zip64 field is missing",
      offset,
    });
  }
  const value = u32(bytes, at) + u32(bytes, at + 4) * 2 ** 32;
  if (!Number.isSafeInteger(value)) {
    throw new FormatError({
      format: "zip",
      reason: "a zip64 size is too large",
      offset,
    });
  }
  return value;
}

function hex32(value: number): string {
  return value.toString(16).padStart(8, "0");
}
