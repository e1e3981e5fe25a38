/**
 * A gzip decoder that handles concatenated members and verifies each one.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { FormatError, IntegrityError } from "../core/errors.ts";
import { RawInflater } from "./_inflate.ts";
import { ByteReader } from "./_reader.ts";
import type { ReadArchiveOptions } from "./types.ts";

const RESERVED_FLAGS = 0xe0;
const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;
const MAX_FIELD = 64 * 1024;

/**
 * Decompresses a gzip stream, member after member.
 *
 * Unlike `DecompressionStream("gzip")`, it reads files made of several
 * concatenated gzip members (as `cat a.gz b.gz` or parallel compressors
 * produce) as one stream, the way `gzip -d` does. Every member's CRC-32 and
 * length are verified (`IntegrityError`); a bad header or anything after the
 * last member that is not another member is a `FormatError`; a stream that
 * stops early is an `IncompleteStreamError` or a `FormatError`. Pull-based:
 * it reads only as fast as its consumer.
 *
 * @example Two members read as one
 * ```ts
 * import { gunzip } from "@sluice/sluice/archive";
 * import { gzipSync } from "node:zlib";
 * import assert from "node:assert/strict";
 *
 * const joined = new Uint8Array([...gzipSync("hello, "), ...gzipSync("world")]);
 * const text = await new Response(gunzip(ReadableStream.from([joined]))).text();
 * assert.equal(text, "hello, world");
 * ```
 *
 * @param source The gzip bytes.
 * @param options A `signal` that cancels reading.
 * @returns The decompressed bytes.
 */
export function gunzip(
  source: ReadableStream<Uint8Array>,
  options: ReadArchiveOptions = {},
): ReadableStream<Uint8Array> {
  return gunzipFrom(new ByteReader(source, "gzip stream", options.signal));
}

/** {@linkcode gunzip} over a reader the caller keeps, to count compressed bytes. */
export function gunzipFrom(reader: ByteReader): ReadableStream<Uint8Array> {
  let inflater: RawInflater | undefined;
  let crc = 0;
  let length = 0;
  let members = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          if (inflater === undefined) {
            if (members > 0 && await reader.atEnd()) {
              return controller.close();
            }
            await readHeader(reader, members);
            inflater = new RawInflater(reader, "gzip");
            crc = 0;
            length = 0;
          }
          const piece = await inflater.next();
          if (piece !== null) {
            crc = crc32(piece, crc);
            length += piece.length;
            return controller.enqueue(piece);
          }
          inflater.close();
          inflater = undefined;
          await readTrailer(reader, crc, length);
          members++;
        }
      } catch (error) {
        inflater?.close();
        await reader.cancel(error);
        controller.error(error);
      }
    },
    async cancel(reason) {
      inflater?.close();
      await reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

async function readHeader(reader: ByteReader, members: number): Promise<void> {
  const offset = reader.position;
  const header = await reader.readExact(10);
  if (header[0] !== 0x1f || header[1] !== 0x8b) {
    throw new FormatError({
      format: "gzip",
      reason: members === 0
        ? "not a gzip stream"
        : "data after the last gzip member",
      offset,
    });
  }
  const flags = header[3]!;
  if (header[2] !== 8 || (flags & RESERVED_FLAGS) !== 0) {
    throw new FormatError({
      format: "gzip",
      reason: header[2] !== 8
        ? `unknown compression method ${header[2]}`
        : "reserved header flags are set",
      offset,
    });
  }
  if (flags & FEXTRA) {
    const size = await reader.readExact(2);
    await reader.skip(size[0]! | (size[1]! << 8));
  }
  if (flags & FNAME) await skipZeroTerminated(reader);
  if (flags & FCOMMENT) await skipZeroTerminated(reader);
  if (flags & FHCRC) await reader.skip(2);
}

async function skipZeroTerminated(reader: ByteReader): Promise<void> {
  for (let n = 0; n < MAX_FIELD; n++) {
    if ((await reader.readExact(1))[0] === 0) return;
  }
  throw new FormatError({
    format: "gzip",
    reason: "a header field is not terminated",
    offset: reader.position,
  });
}

async function readTrailer(
  reader: ByteReader,
  crc: number,
  length: number,
): Promise<void> {
  const trailer = await reader.readExact(8);
  const view = new DataView(trailer.buffer, trailer.byteOffset, 8);
  const expectedCrc = view.getUint32(0, true);
  const expectedLength = view.getUint32(4, true);
  if (expectedCrc !== crc >>> 0) {
    throw new IntegrityError({
      check: "crc32",
      subject: "gzip member",
      expected: expectedCrc.toString(16),
      actual: (crc >>> 0).toString(16),
    });
  }
  if (expectedLength !== length % 2 ** 32) {
    throw new IntegrityError({
      check: "size",
      subject: "gzip member",
      expected: String(expectedLength),
      actual: String(length % 2 ** 32),
    });
  }
}
