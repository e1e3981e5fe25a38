/**
 * The data map of a sealed file: which chunks, in which order, under which
 * suite, and a commitment to the file key. See `docs/FORMAT.md`.
 *
 * {@linkcode parseDataMap} validates every field of a map read from JSON, so
 * the rest of the toolkit can trust its shape.
 *
 * @example Validate a data map read from disk
 * ```ts
 * import { parseDataMap } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * const map = parseDataMap(JSON.stringify({
 *   format: "sluice/1",
 *   suite: "aes-256-gcm",
 *   chunkSize: 65536,
 *   size: 0,
 *   salt: "00".repeat(32),
 *   commitment: "11".repeat(32),
 *   chunks: [{ address: "22".repeat(32), size: 16 }],
 * }));
 * assert.equal(map.chunks.length, 1);
 * assert.throws(() => parseDataMap('{"format":"sluice/9"}'), TypeError);
 * ```
 *
 * @module
 */

import { isAddress } from "./_bytes.ts";

/** The format tag this release writes and reads. */
export const DATA_MAP_FORMAT = "sluice/1";

/** The AEAD suites a sealed file can use. */
export type Suite = "aes-256-gcm" | "xchacha20-poly1305";

/** Every {@linkcode Suite}, the default first. */
export const SUITES: readonly Suite[] = ["aes-256-gcm", "xchacha20-poly1305"];

/** The smallest chunk size allowed: 64 KiB. */
export const MIN_CHUNK_SIZE = 64 * 1024;
/** The largest chunk size allowed: 16 MiB. */
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
/** The default chunk size: 1 MiB. */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Bytes an AEAD tag adds to every sealed chunk. */
export const TAG_SIZE = 16;
/** The largest sealed chunk the format allows: 16 MiB plus the tag. */
export const MAX_SEALED_CHUNK: number = MAX_CHUNK_SIZE + TAG_SIZE;

/** One sealed chunk as the data map lists it. */
export interface ChunkRef {
  /** Lowercase hex SHA-256 of the sealed chunk. */
  readonly address: string;
  /** The sealed chunk's length in bytes (its plaintext plus the 16-byte tag). */
  readonly size: number;
}

/** A sealed file's data map, as in `docs/FORMAT.md`. It holds no key. */
export interface DataMap {
  /** Always `"sluice/1"` in this release. */
  readonly format: typeof DATA_MAP_FORMAT;
  /** The AEAD suite every chunk is sealed with. */
  readonly suite: Suite;
  /** Plaintext bytes per chunk; only the last chunk may be shorter. */
  readonly chunkSize: number;
  /** Plaintext bytes in all. */
  readonly size: number;
  /** The per-file salt, 64 hex characters. */
  readonly salt: string;
  /** HMAC over the map's header under a key derived from the file key, 64 hex characters. */
  readonly commitment: string;
  /** The sealed chunks in plaintext order. */
  readonly chunks: readonly ChunkRef[];
}

const MEMBERS = new Set([
  "format",
  "suite",
  "chunkSize",
  "size",
  "salt",
  "commitment",
  "chunks",
]);

/**
 * How many chunks a plaintext of `size` bytes is cut into.
 *
 * @param size Plaintext bytes.
 * @param chunkSize Plaintext bytes per chunk.
 * @returns `max(1, ceil(size / chunkSize))`: an empty input is one empty chunk.
 *
 * @example
 * ```ts
 * import { chunkCount } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * assert.equal(chunkCount(0, 65536), 1);
 * assert.equal(chunkCount(65537, 65536), 2);
 * ```
 */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(size / chunkSize));
}

/**
 * Checks that `chunkSize` is an allowed chunk size.
 *
 * @param chunkSize The candidate.
 * @throws {RangeError} When it is not an integer from 64 KiB to 16 MiB.
 *
 * @example
 * ```ts
 * import { validateChunkSize } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * validateChunkSize(1 << 20);
 * assert.throws(() => validateChunkSize(1000), RangeError);
 * ```
 */
export function validateChunkSize(chunkSize: number): void {
  if (
    !Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE ||
    chunkSize > MAX_CHUNK_SIZE
  ) {
    throw new RangeError(
      `Cannot use chunk size ${chunkSize}: it must be an integer from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}`,
    );
  }
}

/**
 * Parses and validates a data map.
 *
 * Every member is checked against `docs/FORMAT.md`: the format tag, the
 * suite, the chunk size, the hex fields, and that the chunk list has exactly
 * the count and sealed sizes the plaintext size implies. Unknown members are
 * rejected, since the commitment does not cover them.
 *
 * @param input The JSON text, or a value already parsed from it.
 * @returns The validated map, as a fresh frozen object.
 * @throws {TypeError} When the JSON is malformed, a member is missing, extra
 * or wrong, or the format is another version.
 *
 * @example Reject a map from a newer release
 * ```ts
 * import { parseDataMap } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => parseDataMap({ format: "sluice/2" }),
 *   /unsupported format version "sluice\/2"/,
 * );
 * ```
 */
export function parseDataMap(input: unknown): DataMap {
  let value = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw new TypeError("Cannot parse data map: it is not valid JSON", {
        cause: error,
      });
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail("it is not a JSON object");
  }
  const map = value as Record<string, unknown>;
  const { format, suite, chunkSize, size, salt, commitment, chunks } = map;
  if (format !== DATA_MAP_FORMAT) {
    if (typeof format === "string" && format.startsWith("sluice/")) {
      fail(
        `unsupported format version ${
          JSON.stringify(format)
        } (this release reads "${DATA_MAP_FORMAT}")`,
      );
    }
    fail(`"format" must be "${DATA_MAP_FORMAT}"`);
  }
  for (const member of Object.keys(map)) {
    if (!MEMBERS.has(member)) fail(`unknown member ${JSON.stringify(member)}`);
  }
  if (!SUITES.includes(suite as Suite)) {
    fail(`"suite" must be one of ${SUITES.join(", ")}`);
  }
  if (
    typeof chunkSize !== "number" || !Number.isInteger(chunkSize) ||
    chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE
  ) {
    fail(
      `"chunkSize" must be an integer from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}`,
    );
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    fail(`"size" must be a non-negative safe integer`);
  }
  if (!isAddress(salt)) fail(`"salt" must be 64 lowercase hex characters`);
  if (!isAddress(commitment)) {
    fail(`"commitment" must be 64 lowercase hex characters`);
  }
  if (!Array.isArray(chunks)) fail(`"chunks" must be an array`);
  const count = chunkCount(size, chunkSize);
  if (chunks.length !== count) {
    fail(
      `a size of ${size} needs ${count} chunks, but ${chunks.length} are listed`,
    );
  }
  const refs = chunks.map((chunk: unknown, index: number): ChunkRef => {
    const last = index === count - 1;
    const expected = (last ? size - (count - 1) * chunkSize : chunkSize) +
      TAG_SIZE;
    return Object.freeze(parseChunkRef(chunk, index, expected));
  });
  return Object.freeze({
    format,
    suite: suite as Suite,
    chunkSize,
    size,
    salt,
    commitment,
    chunks: Object.freeze(refs),
  });
}

function parseChunkRef(
  chunk: unknown,
  index: number,
  expected: number,
): ChunkRef {
  if (typeof chunk !== "object" || chunk === null || Array.isArray(chunk)) {
    fail(`chunk ${index} is not an object`);
  }
  const { address, size, ...rest } = chunk as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) {
    fail(`chunk ${index} has unknown member ${JSON.stringify(extra[0])}`);
  }
  if (!isAddress(address)) {
    fail(`chunk ${index} "address" must be 64 lowercase hex characters`);
  }
  if (size !== expected) {
    fail(
      `chunk ${index} "size" must be ${expected}, not ${JSON.stringify(size)}`,
    );
  }
  return { address, size: expected };
}

function fail(reason: string): never {
  throw new TypeError(`Cannot parse data map: ${reason}`);
}
