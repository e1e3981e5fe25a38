/**
 * Install frames: archive entries as a small framed byte stream, so a peer
 * that holds an archive can send its entries to a receiver that never sees
 * the archive. {@linkcode encodeFrames} writes the stream and
 * {@linkcode decodeFrames} reads it back, verifying every frame's CRC-32 and
 * every body's SHA-256. The format is specified in `docs/FORMAT.md`
 * ("Install frames").
 *
 * @example Send entries through frames and read them back
 * ```ts
 * import { decodeFrames, encodeFrames } from "@sluice/sluice/archive";
 * import type { ArchiveEntry } from "@sluice/sluice/archive";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("hello");
 * async function* entries(): AsyncGenerator<ArchiveEntry> {
 *   yield {
 *     path: "hello.txt",
 *     type: "file",
 *     size: bytes.length,
 *     mode: 0o644,
 *     mtime: new Date(0),
 *     body: ReadableStream.from([bytes]),
 *   };
 * }
 * for await (const entry of decodeFrames(encodeFrames(entries()))) {
 *   assert.equal(entry.path, "hello.txt");
 *   assert.equal(await new Response(entry.body).text(), "hello");
 * }
 * ```
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { crc32 } from "node:zlib";
import { Buffer } from "node:buffer";
import {
  CancelledError,
  FormatError,
  IntegrityError,
  LimitError,
} from "../core/errors.ts";
import { type BodySlot, EntryBody, guardEntries } from "./_entry.ts";
import { ByteReader } from "./_reader.ts";
import type {
  ArchiveEntries,
  ArchiveEntry,
  EntryType,
  ReadArchiveOptions,
} from "./types.ts";

/** "sluicefr", then the version byte. */
const MAGIC = new Uint8Array([0x73, 0x6c, 0x75, 0x69, 0x63, 0x65, 0x66, 0x72]);
const VERSION = 1;
const PREAMBLE = MAGIC.length + 1;

const HEADER = 0x01;
const DATA = 0x02;
const ENTRY_END = 0x03;
const END = 0x04;

/** type u8, length u32be, head check u32be. */
const HEAD = 9;
/** The head and the trailing CRC-32. */
const OVERHEAD = HEAD + 4;
const MAX_DATA = 1024 * 1024;
/** Body bytes gathered before a data frame goes out, unless the body ends first. */
const FLUSH_BYTES = 64 * 1024;
const MAX_STRING = 0xffff;
/** entry type, flags, size u64, mode u32, mtime i64, path length u16. */
const HEADER_FIXED = 1 + 1 + 8 + 4 + 8 + 2;
const HAS_LINK = 0x01;
const MAX_MTIME = 8.64e15;
const DEFAULT_MAX_PATH = 4096;

const ENTRY_TYPES: readonly EntryType[] = [
  "file",
  "directory",
  "symlink",
  "hardlink",
];

interface FrameRule {
  name: string;
  min: number;
  max: number;
}

const FRAME_RULES: Readonly<Record<number, FrameRule>> = {
  [HEADER]: {
    name: "header",
    min: HEADER_FIXED,
    max: HEADER_FIXED + MAX_STRING + 2 + MAX_STRING,
  },
  [DATA]: { name: "data", min: 1, max: MAX_DATA },
  [ENTRY_END]: { name: "entry-end", min: 32, max: 32 },
  [END]: { name: "end", min: 8, max: 8 },
};

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Options for {@linkcode encodeFrames}. */
export interface EncodeFramesOptions {
  /**
   * Cancels encoding: the stream errors with `CancelledError`, the current
   * body is cancelled and the entries iterator is closed.
   *
   * @example Encode nothing after an abort
   * ```ts
   * import { encodeFrames } from "@sluice/sluice/archive";
   * import { CancelledError } from "@sluice/sluice/errors";
   * import assert from "node:assert/strict";
   *
   * const frames = encodeFrames((async function* () {})(), { signal: AbortSignal.abort() });
   * await assert.rejects(new Response(frames).bytes(), CancelledError);
   * ```
   */
  signal?: AbortSignal;
}

/** Options for {@linkcode decodeFrames}. */
export interface DecodeFramesOptions extends ReadArchiveOptions {
  /**
   * The longest path or link target accepted, in UTF-8 bytes, from 1 to
   * 65 535; a longer one is a `LimitError`. Defaults to 4096.
   *
   * @example Refuse long paths
   * ```ts
   * import { decodeFrames, encodeFrames } from "@sluice/sluice/archive";
   * import { LimitError } from "@sluice/sluice/errors";
   * import assert from "node:assert/strict";
   *
   * async function* entries() {
   *   yield { path: "a".repeat(300), type: "directory" as const, size: 0, mode: 0o755, mtime: new Date(0), body: ReadableStream.from([]) };
   * }
   * const decoded = decodeFrames(encodeFrames(entries()), { maxPathBytes: 255 });
   * await assert.rejects(Array.fromAsync(decoded), LimitError);
   * ```
   */
  maxPathBytes?: number;
}

/**
 * Writes archive entries as install frames, pulled by the consumer.
 *
 * The stream opens with the magic and version; each entry becomes a header
 * frame, its body in data frames of at most 1 MiB, and an entry-end frame
 * carrying the body's SHA-256; an end frame with the entry count closes it.
 * Every frame carries a CRC-32. Nothing is read ahead: the next entry is
 * asked for, and the body read, only as the output is pulled, so memory
 * stays bounded whatever the entry sizes. The entries' `crc32` is not sent:
 * the SHA-256 replaces it.
 *
 * Cancelling the output (or aborting `signal`) cancels the current body and
 * calls `return()` on the entries iterator, which releases the archive
 * behind it.
 *
 * @param entries The entries to send, for example from `untar` or `unzip`.
 * @param options A `signal` that cancels encoding.
 * @returns The frame stream.
 * @throws {RangeError} (through the stream) when an entry cannot be framed:
 * a path or link target over 65 535 UTF-8 bytes, a size that is not a safe
 * integer or is not 0 for a non-file, a mode beyond 32 bits, an invalid
 * `mtime`.
 * @throws {TypeError} (through the stream) for an unknown entry type or a
 * path with lone surrogates, which UTF-8 cannot carry.
 * @throws {IntegrityError} (through the stream) with `check` `"size"` when a
 * body yields more or fewer bytes than its entry's `size`.
 * @throws {CancelledError} (through the stream) when `signal` aborts.
 *
 * @example Frame a directory and a file
 * ```ts
 * import { encodeFrames } from "@sluice/sluice/archive";
 * import type { ArchiveEntry } from "@sluice/sluice/archive";
 * import assert from "node:assert/strict";
 *
 * async function* entries(): AsyncGenerator<ArchiveEntry> {
 *   yield { path: "docs", type: "directory", size: 0, mode: 0o755, mtime: new Date(0), body: ReadableStream.from([]) };
 *   const text = new TextEncoder().encode("alpha");
 *   yield { path: "docs/a.txt", type: "file", size: 5, mode: 0o644, mtime: new Date(0), body: ReadableStream.from([text]) };
 * }
 * const frames = await new Response(encodeFrames(entries())).bytes();
 * assert.equal(new TextDecoder().decode(frames.subarray(0, 8)), "sluicefr");
 * assert.equal(frames[8], 1); // the version
 * ```
 */
export function encodeFrames(
  entries: AsyncIterable<ArchiveEntry>,
  options: EncodeFramesOptions = {},
): ReadableStream<Uint8Array> {
  const { signal } = options;
  const iterator = entries[Symbol.asyncIterator]();
  let started = false;
  let finished = false;
  let count = 0;
  let body: BodyState | undefined;

  // The one place that lets go of the source, whichever way encoding stops.
  const release = async (reason: unknown): Promise<void> => {
    if (finished) return;
    finished = true;
    signal?.removeEventListener("abort", onAbort);
    const open = body;
    body = undefined;
    await Promise.allSettled([
      open?.reader.cancel(reason),
      (async () => await iterator.return?.())(),
    ]);
  };

  let output!: ReadableStreamDefaultController<Uint8Array>;
  const onAbort = () => {
    output.error(CancelledError.fromSignal(signal!));
    void release(signal!.reason);
  };

  return new ReadableStream<Uint8Array>({
    start(controller) {
      output = controller;
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    },
    async pull(controller) {
      try {
        if (!started) {
          started = true;
          const preamble = new Uint8Array(PREAMBLE);
          preamble.set(MAGIC);
          preamble[MAGIC.length] = VERSION;
          return controller.enqueue(preamble);
        }
        const open = body;
        if (open !== undefined) {
          const frames = await readBody(open);
          if (finished) return;
          for (const frame of frames) controller.enqueue(frame);
          if (open.ended) body = undefined;
          return;
        }
        const next = await iterator.next();
        if (finished) return;
        if (next.done) {
          const total = new Uint8Array(8);
          new DataView(total.buffer).setBigUint64(0, BigInt(count));
          controller.enqueue(frame(END, total));
          finished = true;
          signal?.removeEventListener("abort", onAbort);
          return controller.close();
        }
        const entry = next.value;
        body = {
          entry,
          reader: entry.body.getReader(),
          hash: createHash("sha256"),
          received: 0,
          ended: false,
        };
        controller.enqueue(frame(HEADER, encodeHeader(entry)));
        count++;
      } catch (error) {
        controller.error(error);
        await release(error);
      }
    },
    async cancel(reason) {
      await release(reason);
    },
  }, { highWaterMark: 0 });
}

interface BodyState {
  entry: ArchiveEntry;
  reader: ReadableStreamDefaultReader<Uint8Array>;
  hash: Hash;
  received: number;
  ended: boolean;
}

/**
 * Reads the next stretch of a body (at least {@linkcode FLUSH_BYTES} unless
 * it ends first) and frames it; after the last byte, the entry-end frame.
 */
async function readBody(state: BodyState): Promise<Uint8Array[]> {
  const { entry } = state;
  const parts: Uint8Array[] = [];
  let length = 0;
  while (length < FLUSH_BYTES && !state.ended) {
    const { done, value } = await state.reader.read();
    if (done) {
      state.ended = true;
      break;
    }
    if (state.received + value.length > entry.size) {
      throw sizeMismatch(entry, `more than ${entry.size}`);
    }
    state.received += value.length;
    state.hash.update(value);
    parts.push(value);
    length += value.length;
  }
  const frames = dataFrames(parts, length);
  if (state.ended) {
    if (state.received !== entry.size) {
      throw sizeMismatch(entry, String(state.received));
    }
    state.reader.releaseLock();
    frames.push(frame(ENTRY_END, state.hash.digest()));
  }
  return frames;
}

function sizeMismatch(entry: ArchiveEntry, actual: string): IntegrityError {
  return new IntegrityError({
    check: "size",
    subject: entry.path,
    expected: String(entry.size),
    actual,
  });
}

/** Data frames of at most {@linkcode MAX_DATA} bytes holding `parts`, copied once. */
function dataFrames(parts: Uint8Array[], length: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let part = 0;
  let at = 0;
  for (let left = length; left > 0;) {
    const n = Math.min(left, MAX_DATA);
    const out = new Uint8Array(OVERHEAD + n);
    const headCheck = writeHead(out, DATA, n);
    for (let filled = 0; filled < n;) {
      const piece = parts[part]!;
      const take = Math.min(piece.length - at, n - filled);
      out.set(piece.subarray(at, at + take), HEAD + filled);
      filled += take;
      at += take;
      if (at === piece.length) {
        part++;
        at = 0;
      }
    }
    writeCrc(out, n, headCheck);
    frames.push(out);
    left -= n;
  }
  return frames;
}

function frame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(OVERHEAD + payload.length);
  const headCheck = writeHead(out, type, payload.length);
  out.set(payload, HEAD);
  writeCrc(out, payload.length, headCheck);
  return out;
}

/** Writes type, length and the head check; returns the head check. */
function writeHead(out: Uint8Array, type: number, length: number): number {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[0] = type;
  view.setUint32(1, length);
  const headCheck = crc32(out.subarray(0, 5));
  view.setUint32(5, headCheck);
  return headCheck;
}

/** Writes the CRC-32 of type, length and payload after the payload. */
function writeCrc(out: Uint8Array, length: number, headCheck: number): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(
    HEAD + length,
    crc32(out.subarray(HEAD, HEAD + length), headCheck),
  );
}

function encodeHeader(entry: ArchiveEntry): Uint8Array {
  const kind = ENTRY_TYPES.indexOf(entry.type);
  if (kind < 0) {
    throw new TypeError(
      `Cannot frame ${JSON.stringify(entry.path)}: unknown entry type ${
        JSON.stringify(entry.type)
      }`,
    );
  }
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) {
    throw new RangeError(
      `Cannot frame ${
        JSON.stringify(entry.path)
      }: size ${entry.size} is not a safe non-negative integer`,
    );
  }
  if (entry.type !== "file" && entry.size !== 0) {
    throw new RangeError(
      `Cannot frame ${
        JSON.stringify(entry.path)
      }: a ${entry.type} entry declares ${entry.size} bytes of data`,
    );
  }
  if (
    !Number.isInteger(entry.mode) || entry.mode < 0 || entry.mode > 0xffffffff
  ) {
    throw new RangeError(
      `Cannot frame ${
        JSON.stringify(entry.path)
      }: mode ${entry.mode} does not fit in 32 bits`,
    );
  }
  const mtime = entry.mtime.getTime();
  if (Number.isNaN(mtime)) {
    throw new RangeError(
      `Cannot frame ${JSON.stringify(entry.path)}: mtime is an invalid date`,
    );
  }
  const path = encodeString(entry.path, "path", entry.path);
  const link = entry.linkTarget === undefined
    ? undefined
    : encodeString(entry.linkTarget, "link target", entry.path);
  const out = new Uint8Array(
    HEADER_FIXED + path.length + (link === undefined ? 0 : 2 + link.length),
  );
  const view = new DataView(out.buffer);
  out[0] = kind;
  out[1] = link === undefined ? 0 : HAS_LINK;
  view.setBigUint64(2, BigInt(entry.size));
  view.setUint32(10, entry.mode);
  view.setBigInt64(14, BigInt(mtime));
  view.setUint16(22, path.length);
  out.set(path, 24);
  if (link !== undefined) {
    view.setUint16(24 + path.length, link.length);
    out.set(link, 26 + path.length);
  }
  return out;
}

function encodeString(value: string, what: string, path: string): Uint8Array {
  if (!value.isWellFormed()) {
    throw new TypeError(
      `Cannot frame ${
        JSON.stringify(path)
      }: the ${what} has lone surrogates, which UTF-8 cannot carry`,
    );
  }
  const bytes = utf8.encode(value);
  if (bytes.length > MAX_STRING) {
    throw new RangeError(
      `Cannot frame ${
        JSON.stringify(path)
      }: the ${what} is ${bytes.length} bytes, more than ${MAX_STRING}`,
    );
  }
  return bytes;
}

/**
 * Reads install frames back into archive entries, verifying as it goes.
 *
 * The receiver side of {@linkcode encodeFrames}. Each entry's `body` is
 * pulled from the frame stream on demand (a data frame's bytes are handed on
 * only after its CRC-32 checks), so memory stays bounded whatever the entry
 * sizes. A body must be consumed or cancelled before the next entry; asking
 * for the next entry while a body is unread drains it, and still verifies
 * it. `bytesRead` counts the frame-stream bytes consumed so far. It is
 * strict:
 *
 * - bad magic, an unknown version, a frame whose CRC-32 does not check, an
 *   unknown frame type, a length out of bounds, a frame out of place, data
 *   longer or shorter than the declared size, a wrong entry count, and any
 *   byte after the end frame are `FormatError`s (format `"frames"`, with the
 *   offset of the bad frame);
 * - a body whose SHA-256 is not the one its entry-end frame declares is an
 *   `IntegrityError` with `check` `"sha256"`, from the body stream (before it
 *   closes) and from the iterator;
 * - a stream that stops before its end frame is an `IncompleteStreamError`;
 * - a path or link target longer than `maxPathBytes` is a `LimitError`.
 *
 * @param stream The frame stream.
 * @param options A `signal` that cancels reading, and `maxPathBytes`.
 * @returns The entries, read once, front to back.
 * @throws {RangeError} when `maxPathBytes` is not an integer from 1 to 65 535.
 *
 * @example Read entries, and see what they cost
 * ```ts
 * import { decodeFrames, encodeFrames } from "@sluice/sluice/archive";
 * import type { ArchiveEntry } from "@sluice/sluice/archive";
 * import assert from "node:assert/strict";
 *
 * async function* entries(): AsyncGenerator<ArchiveEntry> {
 *   const text = new TextEncoder().encode("alpha");
 *   yield { path: "a.txt", type: "file", size: 5, mode: 0o644, mtime: new Date(0), body: ReadableStream.from([text]) };
 *   yield { path: "b", type: "symlink", size: 0, mode: 0o777, mtime: new Date(0), linkTarget: "a.txt", body: ReadableStream.from([]) };
 * }
 * const frames = await new Response(encodeFrames(entries())).bytes();
 * const decoded = decodeFrames(ReadableStream.from([frames]));
 * const seen: string[] = [];
 * for await (const entry of decoded) {
 *   seen.push(`${entry.type} ${entry.path} ${await new Response(entry.body).text()}`);
 * }
 * assert.deepEqual(seen, ["file a.txt alpha", "symlink b "]);
 * assert.equal(decoded.bytesRead, frames.length);
 * ```
 *
 * @example A stream cut short is an IncompleteStreamError
 * ```ts
 * import { decodeFrames, encodeFrames } from "@sluice/sluice/archive";
 * import { IncompleteStreamError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const frames = await new Response(encodeFrames((async function* () {})())).bytes();
 * const cut = ReadableStream.from([frames.subarray(0, frames.length - 1)]);
 * await assert.rejects(Array.fromAsync(decodeFrames(cut)), IncompleteStreamError);
 * ```
 */
export function decodeFrames(
  stream: ReadableStream<Uint8Array>,
  options: DecodeFramesOptions = {},
): ArchiveEntries {
  const maxPathBytes = options.maxPathBytes ?? DEFAULT_MAX_PATH;
  if (
    !Number.isInteger(maxPathBytes) || maxPathBytes < 1 ||
    maxPathBytes > MAX_STRING
  ) {
    throw new RangeError(
      `Cannot decode frames: maxPathBytes must be an integer from 1 to ${MAX_STRING}, got ${maxPathBytes}`,
    );
  }
  const reader = new ByteReader(stream, "frame stream", options.signal);
  let iterated = false;
  return {
    get bytesRead() {
      return reader.position;
    },
    [Symbol.asyncIterator]() {
      if (iterated) {
        throw new TypeError(
          "Cannot iterate the frames again: they are read once",
        );
      }
      iterated = true;
      return entriesOf(reader, maxPathBytes, options.signal);
    },
  };
}

async function* entriesOf(
  reader: ByteReader,
  maxPathBytes: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<ArchiveEntry> {
  try {
    yield* guardEntries(
      reader,
      (slot) => readFrames(reader, maxPathBytes, signal, slot),
    );
  } catch (error) {
    throw asCancelled(error, signal);
  }
}

async function* readFrames(
  reader: ByteReader,
  maxPathBytes: number,
  signal: AbortSignal | undefined,
  slot: BodySlot,
): AsyncGenerator<ArchiveEntry> {
  await readPreamble(reader);
  for (let count = 0;; count++) {
    const next = await readFrame(reader, [HEADER, END]);
    if (next.type === END) {
      readEndFrame(next, count);
      const at = reader.position;
      if (!(await reader.atEnd())) {
        throw malformed("data after the end frame", at);
      }
      return;
    }
    const header = parseHeader(next, maxPathBytes);
    const body = slot.current = new EntryBody(
      bodyPieces(reader, header, signal),
    );
    yield { ...header, body: body.stream };
    await body.settle();
    slot.current = undefined;
  }
}

type Header = Omit<ArchiveEntry, "body">;

/** The body of one entry, frame by frame: its data, then `null` once the entry-end frame verifies. */
function bodyPieces(
  reader: ByteReader,
  header: Header,
  signal: AbortSignal | undefined,
): () => Promise<Uint8Array | null> {
  const hash = createHash("sha256");
  let received = 0;
  return async () => {
    try {
      const next = await readFrame(reader, [DATA, ENTRY_END]);
      if (next.type === DATA) {
        if (received + next.payload.length > header.size) {
          throw malformed(
            `the data of ${
              JSON.stringify(header.path)
            } is longer than its declared ${header.size} bytes`,
            next.offset,
          );
        }
        received += next.payload.length;
        hash.update(next.payload);
        return next.payload;
      }
      if (received !== header.size) {
        throw malformed(
          `the data of ${
            JSON.stringify(header.path)
          } ends after ${received} of its declared ${header.size} bytes`,
          next.offset,
        );
      }
      const actual = hash.digest("hex");
      const expected = Buffer.from(next.payload).toString("hex");
      if (actual !== expected) {
        throw new IntegrityError({
          check: "sha256",
          subject: header.path,
          expected,
          actual,
        });
      }
      return null;
    } catch (error) {
      throw asCancelled(error, signal);
    }
  };
}

async function readPreamble(reader: ByteReader): Promise<void> {
  const complete = await reader.fill(PREAMBLE);
  const seen = reader.peek(Math.min(reader.buffered, MAGIC.length));
  if (seen.some((byte, i) => byte !== MAGIC[i])) {
    throw malformed("not a frame stream (bad magic)", 0);
  }
  if (!complete) await reader.readExact(PREAMBLE); // throws: truncated
  const preamble = await reader.readExact(PREAMBLE);
  const version = preamble[MAGIC.length]!;
  if (version !== VERSION) {
    throw malformed(`unsupported version ${version}`, MAGIC.length);
  }
}

interface Frame {
  type: number;
  payload: Uint8Array;
  offset: number;
}

/** Reads and checks one frame of one of the `expected` types. */
async function readFrame(
  reader: ByteReader,
  expected: readonly number[],
): Promise<Frame> {
  const offset = reader.position;
  const head = await reader.readExact(HEAD);
  const view = new DataView(head.buffer, head.byteOffset, HEAD);
  const type = head[0]!;
  const length = view.getUint32(1);
  const headCheck = crc32(head.subarray(0, 5));
  // Checked before the length is trusted: a corrupt length must not make
  // the reader wait for (or report as missing) bytes that were never sent.
  if (view.getUint32(5) !== headCheck) {
    throw malformed("bad frame head check", offset);
  }
  const rule = FRAME_RULES[type];
  if (rule === undefined) {
    throw malformed(`unknown frame type ${type}`, offset);
  }
  if (length < rule.min || length > rule.max) {
    const allowed = rule.min === rule.max
      ? `exactly ${rule.min}`
      : `${rule.min} to ${rule.max}`;
    throw malformed(
      `the ${rule.name} frame is ${length} bytes (allowed: ${allowed})`,
      offset,
    );
  }
  if (!expected.includes(type)) {
    const where = expected.includes(HEADER)
      ? "between entries"
      : "inside an entry";
    throw malformed(`unexpected ${rule.name} frame ${where}`, offset);
  }
  const rest = await reader.readExact(length + 4);
  const payload = rest.subarray(0, length);
  const crc = new DataView(rest.buffer, rest.byteOffset + length, 4)
    .getUint32(0);
  if (crc32(payload, headCheck) !== crc) {
    throw malformed(`bad ${rule.name} frame CRC-32`, offset);
  }
  return { type, payload, offset };
}

function readEndFrame(end: Frame, count: number): void {
  const view = new DataView(
    end.payload.buffer,
    end.payload.byteOffset,
    end.payload.byteLength,
  );
  const declared = view.getBigUint64(0);
  if (declared !== BigInt(count)) {
    throw malformed(
      `the end frame counts ${declared} entries, the stream carried ${count}`,
      end.offset,
    );
  }
}

function parseHeader(header: Frame, maxPathBytes: number): Header {
  const { payload, offset } = header;
  const view = new DataView(
    payload.buffer,
    payload.byteOffset,
    payload.byteLength,
  );
  const type = ENTRY_TYPES[payload[0]!];
  if (type === undefined) {
    throw malformed(`unknown entry type ${payload[0]}`, offset);
  }
  const flags = payload[1]!;
  if ((flags & ~HAS_LINK) !== 0) {
    throw malformed(`unknown header flags ${flags}`, offset);
  }
  const size = view.getBigUint64(2);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw malformed(`size ${size} is beyond 2^53 - 1`, offset);
  }
  if (type !== "file" && size !== 0n) {
    throw malformed(`a ${type} entry declares ${size} bytes of data`, offset);
  }
  const mode = view.getUint32(10);
  const mtime = Number(view.getBigInt64(14));
  if (Math.abs(mtime) > MAX_MTIME) {
    throw malformed(`mtime ${mtime} is out of range`, offset);
  }
  const fields = { view, payload, offset, maxPathBytes };
  const path = readString(fields, 22, "path");
  let at = 24 + path.length;
  let linkTarget: string | undefined;
  if (flags & HAS_LINK) {
    const link = readString(fields, at, "link target");
    at += 2 + link.length;
    linkTarget = link.text;
  }
  if (at !== payload.length) {
    throw malformed("the header frame has bytes after its fields", offset);
  }
  return {
    path: path.text,
    type,
    size: Number(size),
    mode,
    mtime: new Date(mtime),
    ...(linkTarget === undefined ? {} : { linkTarget }),
  };
}

function readString(
  fields: {
    view: DataView;
    payload: Uint8Array;
    offset: number;
    maxPathBytes: number;
  },
  at: number,
  what: string,
): { text: string; length: number } {
  const { view, payload, offset, maxPathBytes } = fields;
  if (at + 2 > payload.length) {
    throw malformed(`the header frame ends before its ${what}`, offset);
  }
  const length = view.getUint16(at);
  if (at + 2 + length > payload.length) {
    throw malformed(`the header frame ends inside its ${what}`, offset);
  }
  if (length > maxPathBytes) {
    throw new LimitError({
      what: `bytes of ${what}`,
      limit: maxPathBytes,
      actual: length,
    });
  }
  try {
    return {
      text: strictUtf8.decode(payload.subarray(at + 2, at + 2 + length)),
      length,
    };
  } catch {
    throw malformed(`the ${what} is not valid UTF-8`, offset);
  }
}

function malformed(reason: string, offset: number): FormatError {
  return new FormatError({ format: "frames", reason, offset });
}

function asCancelled(error: unknown, signal: AbortSignal | undefined): unknown {
  return signal?.aborted ? CancelledError.fromSignal(signal) : error;
}
