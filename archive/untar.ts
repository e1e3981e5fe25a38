/**
 * A one-pass tar reader: ustar, pax and GNU archives as a stream of entries.
 *
 * @module
 */

import { FormatError, LimitError, UnsupportedError } from "../core/errors.ts";
import { ByteReader } from "./_reader.ts";
import { type BodySlot, EntryBody, guardEntries } from "./_entry.ts";
import type {
  ArchiveEntries,
  ArchiveEntry,
  EntryType,
  ReadArchiveOptions,
} from "./types.ts";

const BLOCK = 512;
const PIECE = 256 * 1024;
const utf8 = new TextDecoder();

/** Options for {@linkcode untar}. */
export interface UntarOptions extends ReadArchiveOptions {
  /**
   * The largest pax extended header or GNU long-name record accepted, in
   * bytes; a bigger one is a `LimitError` before it is read. Defaults to 1 MiB.
   */
  maxMetadataBytes?: number;
}

/**
 * Reads a tar archive in one pass and yields its entries.
 *
 * Understands ustar, pax (`path`, `linkpath`, `size` and `mtime` overrides,
 * global headers) and GNU (long names and long link targets, base-256
 * numbers). Every header's checksum is verified (signed and unsigned sums are
 * both accepted, as GNU tar does). It refuses rather than guesses:
 *
 * - sparse files, character and block devices, fifos and unknown entry types
 *   are `UnsupportedError`s;
 * - a directory or link header that declares a body, a bad checksum, a
 *   malformed number or pax record, and anything but zeros after the two end
 *   blocks are `FormatError`s;
 * - an archive that stops before its end blocks is an `IncompleteStreamError`;
 * - a pax or GNU metadata record over `maxMetadataBytes` is a `LimitError`.
 *
 * Each entry's `body` must be consumed or cancelled before the next entry is
 * produced; if it is not, asking for the next entry drains it. Memory stays
 * bounded whatever the entry sizes.
 *
 * @example List a tar made by GNU tar
 * ```ts
 * import { untar } from "@sluice/sluice/archive";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/docs`);
 * await Deno.writeTextFile(`${dir}/docs/a.txt`, "alpha");
 * const { stdout } = await new Deno.Command("tar", {
 *   args: ["--format=pax", "-cf", "-", "-C", dir, "docs"],
 *   stdout: "piped",
 * }).output();
 * const seen: string[] = [];
 * for await (const entry of untar(ReadableStream.from([stdout]))) {
 *   seen.push(`${entry.type} ${entry.path}`);
 *   await entry.body.cancel();
 * }
 * assert.deepEqual(seen, ["directory docs", "file docs/a.txt"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param source The tar bytes.
 * @param options The metadata cap and a `signal`.
 * @returns The entries, read once, front to back.
 */
export function untar(
  source: ReadableStream<Uint8Array>,
  options: UntarOptions = {},
): ArchiveEntries {
  const reader = new ByteReader(source, "tar archive", options.signal);
  const maxMetadata = options.maxMetadataBytes ?? 1024 * 1024;
  return {
    get bytesRead() {
      return reader.position;
    },
    [Symbol.asyncIterator]: () =>
      tarEntries(reader, maxMetadata)[Symbol.asyncIterator](),
  };
}

interface Overrides {
  path?: string;
  linkpath?: string;
  size?: number;
  mtime?: number;
}

/** The entries of the tar behind `reader` (for {@linkcode openArchive}, which sniffs first). */
export function tarEntries(
  reader: ByteReader,
  maxMetadata: number,
): AsyncGenerator<ArchiveEntry> {
  return guardEntries(reader, (slot) => readTar(reader, maxMetadata, slot));
}

async function* readTar(
  reader: ByteReader,
  maxMetadata: number,
  slot: BodySlot,
): AsyncGenerator<ArchiveEntry> {
  const global: Overrides = {};
  let local: Overrides = {};
  for (;;) {
    const offset = reader.position;
    const block = await reader.readExact(BLOCK);
    if (isZero(block)) {
      await expectEnd(reader, offset);
      return;
    }
    verifyChecksum(block, offset);
    const flag = String.fromCharCode(block[156]!);
    const ustar = text(block, 257, 6) === "ustar";
    let size = readNumber(block, 124, 12, "size", offset);
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (size > maxMetadata) {
        throw new LimitError({
          what: "bytes of tar metadata",
          limit: maxMetadata,
          actual: size,
        });
      }
      const record = await reader.readExact(size);
      await reader.skip(padding(size));
      if (flag === "x") local = { ...local, ...parsePax(record, offset) };
      else if (flag === "g") Object.assign(global, parsePax(record, offset));
      else if (flag === "L") local.path = cString(record, 0, record.length);
      else local.linkpath = cString(record, 0, record.length);
      continue;
    }
    const overrides = { ...global, ...local };
    local = {};
    if (overrides.size !== undefined) size = overrides.size;
    let name = overrides.path ?? cString(block, 0, 100);
    if (overrides.path === undefined && ustar && block[263] === 0x30) {
      // POSIX ustar ("ustar\0" "00") splits long names into prefix/name.
      const prefix = cString(block, 345, 155);
      if (prefix !== "") name = `${prefix}/${name}`;
    }
    const type = entryType(flag, name, size, offset);
    if (type !== "file" && size !== 0) {
      throw new FormatError({
        format: "tar",
        reason: `a ${type} entry declares ${size} bytes of data`,
        offset,
      });
    }
    if (type === "directory") name = name.replace(/\/+$/, "");
    const mode = readNumber(block, 100, 8, "mode", offset) & 0o7777;
    const mtime = overrides.mtime ??
      readNumber(block, 136, 12, "mtime", offset, true);
    const linkTarget = type === "symlink" || type === "hardlink"
      ? overrides.linkpath ?? cString(block, 157, 100)
      : undefined;
    let left = size;
    const body = slot.current = new EntryBody(async () => {
      if (left === 0) return null;
      const piece = await reader.readSome(Math.min(left, PIECE));
      if (piece === null) await reader.readExact(left); // throws: truncated
      left -= piece!.length;
      return piece;
    });
    yield {
      path: name,
      type,
      size,
      mode,
      mtime: new Date(mtime * 1000),
      ...(linkTarget === undefined ? {} : { linkTarget }),
      body: body.stream,
    };
    await body.settle();
    slot.current = undefined;
    await reader.skip(padding(size));
  }
}

function entryType(
  flag: string,
  name: string,
  size: number,
  offset: number,
): EntryType {
  switch (flag) {
    case "0":
    case "\0":
    case "7":
      // Old archives mark directories with a trailing slash only.
      return name.endsWith("/") && size === 0 ? "directory" : "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "5":
      return "directory";
    case "3":
    case "4":
      throw new UnsupportedError({
        format: "tar",
        feature: "device entries",
        subject: name,
      });
    case "6":
      throw new UnsupportedError({
        format: "tar",
        feature: "fifo entries",
        subject: name,
      });
    case "S":
      throw new UnsupportedError({
        format: "tar",
        feature: "sparse files",
        subject: name,
      });
    default:
      throw new UnsupportedError({
        format: "tar",
        feature: `entries of type ${JSON.stringify(flag)} (at byte ${offset})`,
        subject: name,
      });
  }
}

async function expectEnd(reader: ByteReader, offset: number): Promise<void> {
  // The first zero block is read; a second one must follow, then only zeros
  // (the record padding) until the end of the stream.
  const second = await reader.readExact(BLOCK);
  if (!isZero(second)) {
    throw new FormatError({
      format: "tar",
      reason: "a lone zero block is not the end of the archive",
      offset,
    });
  }
  for (;;) {
    const at = reader.position;
    const piece = await reader.readSome(PIECE);
    if (piece === null) return;
    if (!isZero(piece)) {
      throw new FormatError({
        format: "tar",
        reason: "data after the end of the archive",
        offset: at + piece.findIndex((b) => b !== 0),
      });
    }
  }
}

/**
 * Why a 512-byte block is not a valid tar header by its checksum (GNU tar
 * accepts the signed sum as well as the unsigned one), or `undefined` if it is.
 */
export function checksumProblem(block: Uint8Array): string | undefined {
  const field = text(block, 148, 8).trim();
  if (!/^[0-7]+$/.test(field)) {
    return "the header checksum is not an octal number";
  }
  const expected = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return expected === unsigned || expected === signed
    ? undefined
    : "bad header checksum";
}

function verifyChecksum(block: Uint8Array, offset: number): void {
  const reason = checksumProblem(block);
  if (reason !== undefined) {
    throw new FormatError({ format: "tar", reason, offset });
  }
}

function readNumber(
  block: Uint8Array,
  at: number,
  length: number,
  what: string,
  offset: number,
  allowNegative = false,
): number {
  const first = block[at]!;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement, marked by the top bit.
    const negative = (first & 0x40) !== 0;
    if (negative && !allowNegative) badNumber(what, offset);
    let value = BigInt(first & 0x3f) - (negative ? 0x40n : 0n);
    for (let i = 1; i < length; i++) {
      value = (value << 8n) | BigInt(block[at + i]!);
    }
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -(2n ** 53n)) {
      badNumber(what, offset);
    }
    return Number(value);
  }
  const field = text(block, at, length).replace(/[\0 ]+$/, "").replace(
    /^ +/,
    "",
  );
  if (field === "") return 0;
  if (!/^[0-7]+$/.test(field)) badNumber(what, offset);
  const value = parseInt(field, 8);
  if (!Number.isSafeInteger(value)) badNumber(what, offset);
  return value;
}

function badNumber(what: string, offset: number): never {
  throw new FormatError({
    format: "tar",
    reason: `the ${what} field is not a valid number`,
    offset,
  });
}

function parsePax(record: Uint8Array, offset: number): Overrides {
  const out: Overrides = {};
  let at = 0;
  while (at < record.length) {
    const space = record.indexOf(0x20, at);
    const lengthText = space < 0 ? "" : text(record, at, space - at);
    const length = Number(lengthText);
    if (
      !/^[1-9][0-9]*$/.test(lengthText) || at + length > record.length ||
      record[at + length - 1] !== 0x0a
    ) {
      throw new FormatError({
        format: "tar",
        reason: "malformed pax extended header record",
        offset,
      });
    }
    const line = utf8.decode(record.subarray(space + 1, at + length - 1));
    at += length;
    const eq = line.indexOf("=");
    if (eq <= 0) {
      throw new FormatError({
        format: "tar",
        reason: "malformed pax extended header record",
        offset,
      });
    }
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key.startsWith("GNU.sparse.")) {
      throw new UnsupportedError({ format: "tar", feature: "sparse files" });
    }
    if (key === "path") out.path = value;
    else if (key === "linkpath") out.linkpath = value;
    else if (key === "size") {
      if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
        throw new FormatError({
          format: "tar",
          reason: "the pax size is not a valid number",
          offset,
        });
      }
      out.size = Number(value);
    } else if (key === "mtime") {
      const mtime = Number(value);
      if (!/^-?[0-9]+(\.[0-9]*)?$/.test(value) || !Number.isFinite(mtime)) {
        throw new FormatError({
          format: "tar",
          reason: "the pax mtime is not a valid number",
          offset,
        });
      }
      out.mtime = mtime;
    }
  }
  return out;
}

function isZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function text(bytes: Uint8Array, at: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + length)).replace(
    /\0.*$/s,
    "",
  );
}

function cString(bytes: Uint8Array, at: number, length: number): string {
  const field = bytes.subarray(at, at + length);
  const end = field.indexOf(0);
  return utf8.decode(end < 0 ? field : field.subarray(0, end));
}
