/**
 * Seal a byte stream into content-addressed encrypted chunks plus a data map
 * (`docs/FORMAT.md`), writing the chunks to a store as they are made.
 *
 * Memory stays at about `chunkSize × (concurrency + 2)` whatever the input
 * size; failed writes are retried, chunks a store already has are skipped,
 * and chunks that still cannot be stored are reported, never lost silently.
 *
 * @example Seal a stream into a memory store
 * ```ts
 * import { memoryStore, seal } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * const store = memoryStore();
 * const { dataMap, key } = await seal(
 *   new Blob([new Uint8Array(200_000)]).stream(),
 *   store,
 *   { chunkSize: 65536 },
 * );
 * assert.equal(dataMap.chunks.length, 4);
 * assert.equal(store.size, 4);
 * assert.equal(key.length, 32);
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { mapConcurrent } from "../retry/map_concurrent.ts";
import { retry, type RetryOptions } from "../retry/retry.ts";
import { sha256Hex, toHex } from "./_bytes.ts";
import { unwrapRetryError } from "./_retry.ts";
import { commit, convergentKeys, deriveFileKeys, KEY_SIZE } from "./_sealed.ts";
import type { ChunkStore } from "./chunk_store.ts";
import {
  type ChunkRef,
  DATA_MAP_FORMAT,
  type DataMap,
  DEFAULT_CHUNK_SIZE,
  type Suite,
  SUITES,
  validateChunkSize,
} from "./data_map.ts";
import { CancelledError, PartialFailureError } from "./errors.ts";
import { multiStore } from "./multi_store.ts";

/** A plaintext to seal: a stream, or a function that opens it (needed for convergent mode). */
export type SealSource =
  | ReadableStream<Uint8Array>
  | (() => ReadableStream<Uint8Array>);

/** What {@linkcode seal} reports about each chunk. */
export interface SealEvent {
  /** The chunk's index, from 0. */
  index: number;
  /** Its address. */
  address: string;
  /** Its plaintext bytes. */
  bytes: number;
  /** `"stored"` when written, `"skipped"` when the store had it, `"failed"` when it could not be stored. */
  outcome: "stored" | "skipped" | "failed";
}

/** Options of {@linkcode seal}. */
export interface SealOptions {
  /** The AEAD suite. Defaults to `"aes-256-gcm"` (WebCrypto). */
  suite?: Suite;
  /** Plaintext bytes per chunk, 64 KiB to 16 MiB. Defaults to 1 MiB. */
  chunkSize?: number;
  /** A 32-byte file key. Random by default. */
  key?: Uint8Array;
  /** A 32-byte salt. Random by default; fix it with `key` to reproduce a sealing. */
  salt?: Uint8Array;
  /**
   * Derive the key and salt from the plaintext, so identical files seal to
   * identical chunks (see "Convergent mode" in `docs/FORMAT.md` for what it
   * leaks). The source must then be a function: the input is read twice. An
   * object sets a convergence secret that limits the leaks to who shares it.
   */
  convergent?: boolean | { secret: Uint8Array };
  /** Chunks sealed and written at once. Defaults to 4. */
  concurrency?: number;
  /** The retry policy of each chunk's write. Defaults to 4 attempts, waiting 500 ms, 1 s and 2 s. */
  retry?: Omit<RetryOptions, "signal">;
  /** With an array of stores: on how many to keep each chunk. Defaults to 1. */
  replicas?: number;
  /** Ask the store whether it has a chunk before writing it. Defaults to `true`. */
  skipExisting?: boolean;
  /** Aborting it stops reading and writing and rejects with a `CancelledError`. */
  signal?: AbortSignal;
  /** Called once per chunk, in order. */
  onProgress?: (event: SealEvent) => void;
}

/** What {@linkcode seal} returns. */
export interface SealResult {
  /** The data map: store it anywhere; it holds no key. */
  dataMap: DataMap;
  /** The 32-byte file key: keep it apart from the data map. */
  key: Uint8Array;
  /** Chunks written. */
  stored: number;
  /** Chunks the store already had. */
  skipped: number;
}

/**
 * {@linkcode seal} could not store every chunk.
 *
 * `succeeded` lists the addresses in the store, `failed` the others with
 * their errors. The data map and key are kept: sealing the same input again
 * with this `key` and `dataMap.salt` gives the same chunks and writes only
 * the missing ones.
 *
 * @example
 * ```ts
 * import { SealIncompleteError } from "@sluice/sluice/chunks";
 * import { PartialFailureError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * assert.ok(SealIncompleteError.prototype instanceof PartialFailureError);
 * ```
 */
export class SealIncompleteError extends PartialFailureError<string, string> {
  /** The complete data map, valid once the failed chunks are stored. */
  readonly dataMap: DataMap;
  /** The file key. */
  readonly key: Uint8Array;

  /**
   * Makes the error.
   *
   * @param init The stored and failed addresses, the data map and the key.
   */
  constructor(init: {
    succeeded: string[];
    failed: { item: string; error: unknown }[];
    dataMap: DataMap;
    key: Uint8Array;
  }) {
    super({
      succeeded: init.succeeded,
      failed: init.failed,
      operation: "seal every chunk",
    });
    this.dataMap = init.dataMap;
    this.key = init.key;
  }
}

const DEFAULT_RETRY: RetryOptions = {
  maxAttempts: 4,
  baseDelayMs: 500,
  maxDelayMs: 2000,
  jitter: "none",
};

interface Piece {
  index: number;
  last: boolean;
  bytes: Uint8Array;
}

interface Outcome {
  ref: ChunkRef;
  error?: unknown;
  skipped: boolean;
}

/**
 * Seals `source` into chunks written to `store`, and returns the data map and
 * the file key.
 *
 * The plaintext is read once (twice in convergent mode), cut into chunks,
 * each sealed and written with at most `concurrency` chunks in memory. Each
 * write is retried per `retry`; chunks the store `has` are skipped. When some
 * chunks still cannot be stored, every other chunk is still written and a
 * {@linkcode SealIncompleteError} lists both.
 *
 * @param source The plaintext, or a function that opens it.
 * @param store Where the chunks go, or several stores to spread `replicas` copies over.
 * @param options Suite, chunk size, key, concurrency, retry policy, signal.
 * @returns The data map, the key, and how many chunks were written or skipped.
 * @throws {SealIncompleteError} When some chunks could not be stored.
 * @throws {CancelledError} When `signal` aborts.
 * @throws {TypeError} On a bad key, salt or suite, or a convergent seal of a plain stream.
 * @throws {RangeError} On a bad chunk size or concurrency.
 *
 * @example Convergent sealing writes nothing new the second time
 * ```ts
 * import { memoryStore, seal } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * const open = () => new Blob(["the same bytes"]).stream();
 * const store = memoryStore();
 * const first = await seal(open, store, { convergent: true });
 * const again = await seal(open, store, { convergent: true });
 * assert.deepEqual(again.dataMap, first.dataMap);
 * assert.equal(again.stored, 0);
 * assert.equal(again.skipped, 1);
 * ```
 */
export async function seal(
  source: SealSource,
  store: ChunkStore | readonly ChunkStore[],
  options: SealOptions = {},
): Promise<SealResult> {
  const suite = options.suite ?? "aes-256-gcm";
  if (!SUITES.includes(suite)) {
    throw new TypeError(`Cannot seal: unknown suite ${JSON.stringify(suite)}`);
  }
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  validateChunkSize(chunkSize);
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(
      `Cannot seal: concurrency must be an integer >= 1, got ${concurrency}`,
    );
  }
  const signal = options.signal ?? new AbortController().signal;
  const target = Array.isArray(store)
    ? multiStore(store, { replicas: options.replicas ?? 1 })
    : store as ChunkStore;

  const { key, salt } = await fileKeyAndSalt(source, suite, chunkSize, options);
  const { cipher, commitKey } = await deriveFileKeys(key, salt, suite);
  const policy = { ...DEFAULT_RETRY, ...options.retry, signal };
  const skipExisting = options.skipExisting ?? true;

  const storeChunk = async (sealed: Uint8Array, address: string) => {
    return await retry(async ({ signal }) => {
      if (skipExisting && await target.has(address, { signal })) return true;
      await target.put(address, sealed, { signal });
      return false;
    }, policy);
  };

  const input = typeof source === "function" ? source() : source;
  const outcomes: Outcome[] = [];
  let size = 0;
  try {
    const work = mapConcurrent(
      pieces(input, chunkSize, signal),
      async (piece: Piece): Promise<Outcome> => {
        const sealed = await cipher.seal(piece.index, piece.last, piece.bytes);
        const ref = {
          address: await sha256Hex(sealed as Uint8Array<ArrayBuffer>),
          size: sealed.length,
        };
        try {
          return { ref, skipped: await storeChunk(sealed, ref.address) };
        } catch (error) {
          if (signal.aborted) throw error;
          return { ref, skipped: false, error: unwrapRetryError(error) };
        }
      },
      { concurrency, signal },
    );
    for await (const outcome of work) {
      const index = outcomes.length;
      outcomes.push(outcome);
      const plain = outcome.ref.size - 16;
      size += plain;
      options.onProgress?.({
        index,
        address: outcome.ref.address,
        bytes: plain,
        outcome: "error" in outcome
          ? "failed"
          : outcome.skipped
          ? "skipped"
          : "stored",
      });
    }
  } catch (error) {
    if (signal.aborted) throw CancelledError.fromSignal(signal);
    throw error;
  }

  const body = {
    suite,
    chunkSize,
    size,
    salt: toHex(salt),
    chunks: outcomes.map((o) => o.ref),
  };
  const dataMap: DataMap = {
    format: DATA_MAP_FORMAT,
    suite,
    chunkSize,
    size,
    salt: body.salt,
    commitment: toHex(await commit(commitKey, body)),
    chunks: body.chunks,
  };
  const failed = outcomes.filter((o) => "error" in o);
  if (failed.length > 0) {
    throw new SealIncompleteError({
      succeeded: outcomes.filter((o) => !("error" in o)).map((o) =>
        o.ref.address
      ),
      failed: failed.map((o) => ({ item: o.ref.address, error: o.error })),
      dataMap,
      key,
    });
  }
  const skipped = outcomes.filter((o) => o.skipped).length;
  return { dataMap, key, stored: outcomes.length - skipped, skipped };
}

async function fileKeyAndSalt(
  source: SealSource,
  suite: Suite,
  chunkSize: number,
  options: SealOptions,
): Promise<{ key: Uint8Array; salt: Uint8Array }> {
  if (options.convergent) {
    if (options.key !== undefined || options.salt !== undefined) {
      throw new TypeError(
        "Cannot seal: a convergent seal derives its key and salt, so do not pass them",
      );
    }
    if (typeof source !== "function") {
      throw new TypeError(
        "Cannot seal in convergent mode: the key depends on the whole plaintext, so pass a function that opens the source (it is read twice)",
      );
    }
    const secret = options.convergent === true
      ? new Uint8Array(0)
      : options.convergent.secret;
    const digest = await sha256Stream(source(), options.signal);
    return await convergentKeys(digest, secret, suite, chunkSize);
  }
  const key = options.key ?? crypto.getRandomValues(new Uint8Array(KEY_SIZE));
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(32));
  if (key.length !== KEY_SIZE) {
    throw new TypeError(
      `Cannot seal: the key must be 32 bytes, got ${key.length}`,
    );
  }
  if (salt.length !== 32) {
    throw new TypeError(
      `Cannot seal: the salt must be 32 bytes, got ${salt.length}`,
    );
  }
  return { key, salt };
}

async function sha256Stream(
  stream: ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const hash = createHash("sha256");
  const reader = stream.getReader();
  try {
    while (true) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
    }
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    if (signal?.aborted) throw CancelledError.fromSignal(signal);
    throw error;
  } finally {
    reader.releaseLock();
  }
  return new Uint8Array(hash.digest());
}

// Cuts the stream into chunk-sized pieces, holding one piece back so the
// last one is known to be last when it is sealed.
async function* pieces(
  stream: ReadableStream<Uint8Array>,
  chunkSize: number,
  signal: AbortSignal,
): AsyncGenerator<Piece> {
  const reader = stream.getReader();
  let index = 0;
  let held: Uint8Array | undefined;
  let buffer = new Uint8Array(chunkSize);
  let filled = 0;
  let finished = false;
  // Cancel the source the moment the seal is aborted, not at its next read.
  const onAbort = () => void reader.cancel(signal.reason).catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    while (true) {
      signal.throwIfAborted();
      const { done, value } = await reader.read();
      signal.throwIfAborted();
      if (done) break;
      let at = 0;
      while (at < value.length) {
        if (filled === chunkSize) {
          if (held !== undefined) {
            yield { index: index++, last: false, bytes: held };
          }
          held = buffer;
          buffer = new Uint8Array(chunkSize);
          filled = 0;
        }
        const take = Math.min(chunkSize - filled, value.length - at);
        buffer.set(value.subarray(at, at + take), filled);
        filled += take;
        at += take;
      }
    }
    finished = true;
  } finally {
    signal.removeEventListener("abort", onAbort);
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  if (held !== undefined) yield { index: index++, last: false, bytes: held };
  yield { index, last: true, bytes: buffer.subarray(0, filled) };
}
