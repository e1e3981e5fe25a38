/**
 * Stream a sealed file back out of a chunk store, decrypted, in constant
 * memory: {@linkcode decryptStream} fetches at most `concurrency` chunks ahead
 * of its consumer, authenticates each before releasing a byte of it, retries
 * chunks that fail, and stops fetching the moment the consumer goes away.
 *
 * @example Decrypt into any writable
 * ```ts
 * import { decryptStream, memoryStore, seal } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * const store = memoryStore();
 * const { dataMap, key } = await seal(new Blob(["attack at dawn"]).stream(), store);
 * const chunks: Uint8Array[] = [];
 * await decryptStream(dataMap, key, store).pipeTo(
 *   new WritableStream({ write: (chunk) => void chunks.push(chunk) }),
 * );
 * assert.equal(new TextDecoder().decode(chunks[0]), "attack at dawn");
 * ```
 *
 * @module
 */

import { retry, type RetryOptions } from "../retry/retry.ts";
import { cancelOnAbort } from "./_abort.ts";
import { fromHex } from "./_bytes.ts";
import { unwrapRetryError } from "./_retry.ts";
import {
  type ChunkCipher,
  deriveFileKeys,
  KEY_SIZE,
  verifyCommitment,
} from "./_sealed.ts";
import { type ChunkStore, verifyAddress } from "./chunk_store.ts";
import { type DataMap, parseDataMap } from "./data_map.ts";
import { CancelledError, IntegrityError } from "./errors.ts";

/** What {@linkcode decryptStream} reports while it works. */
export type DecryptEvent =
  | {
    /** The data map was parsed and its commitment verified under the key. */
    type: "verified";
    /** Chunks that will be fetched. */
    chunks: number;
    /** Plaintext bytes that will be delivered. */
    bytes: number;
  }
  | {
    /** A chunk was fetched and authenticated. */
    type: "chunk";
    /** Its index in the data map. */
    index: number;
    /** Its address. */
    address: string;
    /** Its sealed size. */
    bytes: number;
  }
  | {
    /** Plaintext was handed to the consumer. */
    type: "progress";
    /** Plaintext bytes delivered so far. */
    delivered: number;
    /** Plaintext bytes to deliver in all. */
    total: number;
  }
  | {
    /** A chunk's fetch failed and will be tried again. */
    type: "retry";
    /** Its index in the data map. */
    index: number;
    /** Its address. */
    address: string;
    /** The attempt that failed, from 1. */
    attempt: number;
    /** The wait before the next attempt. */
    delayMs: number;
    /** Why it failed. */
    error: unknown;
  };

/** Options of {@linkcode decryptStream}. */
export interface DecryptOptions {
  /** Aborting it stops the fetches and errors the stream with a `CancelledError`. */
  signal?: AbortSignal;
  /** Chunks fetched and decrypted ahead of the consumer. Defaults to 4. */
  concurrency?: number;
  /** The retry policy of each chunk. Defaults to 4 attempts with the `retry()` backoff. */
  retry?: Omit<RetryOptions, "signal">;
  /**
   * Also check each chunk's SHA-256 against its address. Defaults to `false`:
   * with the key, the AEAD tag already authenticates each chunk at its index.
   */
  verifyAddress?: boolean;
  /** The first plaintext byte to deliver. Defaults to 0. */
  start?: number;
  /** One past the last plaintext byte to deliver (like `subarray`). Defaults to the size. */
  end?: number;
  /** Called with progress, retries and checks. */
  onProgress?: (event: DecryptEvent) => void;
}

/**
 * Decrypts a sealed file from `store` into a byte stream.
 *
 * Before any chunk is fetched, the data map is validated and its commitment
 * checked under `key`, so a wrong key or an altered map errors the stream
 * with an `IntegrityError` (check `"commitment"`). Then chunks are fetched
 * with at most `concurrency` ahead of the consumer; each is checked (length,
 * optionally address, then its AEAD tag at its index) before any of its
 * plaintext is enqueued. A chunk that fails is fetched again per `retry`
 * (another peer of a `multiStore` may have a good copy); if it stays bad the
 * stream errors with the last error, typically an `IntegrityError`.
 *
 * Cancelling the stream aborts in-flight fetches and starts no new ones.
 *
 * @param dataMap The data map (validated again here).
 * @param key The 32-byte file key.
 * @param store Where the chunks are.
 * @param options Concurrency, retry policy, byte range, signal, progress.
 * @returns The plaintext, in order.
 * @throws {TypeError} On a malformed data map or a key that is not 32 bytes.
 * @throws {RangeError} On a bad range or concurrency.
 *
 * @example Read only a byte range
 * ```ts
 * import { decryptStream, memoryStore, seal } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * const store = memoryStore();
 * const text = "0123456789".repeat(20_000);
 * const { dataMap, key } = await seal(new Blob([text]).stream(), store, { chunkSize: 65536 });
 * const part = decryptStream(dataMap, key, store, { start: 100_000, end: 100_010 });
 * assert.equal(await new Response(part).text(), "0123456789");
 * ```
 */
export function decryptStream(
  dataMap: DataMap,
  key: Uint8Array,
  store: ChunkStore,
  options: DecryptOptions = {},
): ReadableStream<Uint8Array> {
  const map = parseDataMap(dataMap);
  if (!(key instanceof Uint8Array) || key.length !== KEY_SIZE) {
    throw new TypeError("Cannot decrypt: the key must be 32 bytes");
  }
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(
      `Cannot decrypt: concurrency must be an integer >= 1, got ${concurrency}`,
    );
  }
  const { first, last, start, end } = plan(map, options);
  const total = end - start;
  const emit = options.onProgress ?? (() => {});
  const policy: RetryOptions = { maxAttempts: 4, ...options.retry };
  const checkAddress = options.verifyAddress ?? false;
  const count = map.chunks.length;
  const aborter = new AbortController();
  const window: Promise<Uint8Array>[] = [];
  let cipher: ChunkCipher;
  let next = first; // the next chunk to start fetching
  let delivered = 0;

  const fetchChunk = async (index: number): Promise<Uint8Array> => {
    const ref = map.chunks[index]!;
    const final = index === count - 1;
    let plain: Uint8Array;
    try {
      plain = await retry(async ({ signal }) => {
        const sealed = await store.get(ref.address, { signal });
        if (sealed.length !== ref.size) {
          throw new IntegrityError({
            check: "size",
            subject: `chunk ${index}`,
            expected: String(ref.size),
            actual: String(sealed.length),
            retryable: true,
          });
        }
        if (checkAddress) await verifyAddress(ref.address, sealed, true);
        return await cipher.open(index, final, sealed);
      }, {
        ...policy,
        signal: aborter.signal,
        onRetry(event) {
          policy.onRetry?.(event);
          emit({ type: "retry", index, address: ref.address, ...event });
        },
      });
    } catch (error) {
      if (aborter.signal.aborted) throw aborter.signal.reason;
      throw unwrapRetryError(error);
    }
    // Outside the retry: a throwing listener must not refetch the chunk.
    emit({ type: "chunk", index, address: ref.address, bytes: ref.size });
    return plain;
  };

  const fill = () => {
    while (window.length < concurrency && next <= last) {
      const task = fetchChunk(next++);
      task.catch(() => {}); // observed when its turn comes
      window.push(task);
    }
  };

  const stop = (reason: unknown) => {
    if (!aborter.signal.aborted) aborter.abort(reason);
  };

  return new ReadableStream<Uint8Array>({
    async start(controller) {
      if (cancelOnAbort(options.signal, aborter, controller)) return;
      const keys = await deriveFileKeys(key, fromHex(map.salt), map.suite);
      if (!await verifyCommitment(keys.commitKey, map)) {
        const error = new IntegrityError(
          { check: "commitment", subject: "data map" },
          "Cannot decrypt: the key does not match the data map (wrong key, or the map was altered)",
        );
        stop(error);
        throw error;
      }
      cipher = keys.cipher;
      emit({ type: "verified", chunks: last - first + 1, bytes: total });
    },
    async pull(controller) {
      try {
        fill();
        const task = window.shift();
        if (task === undefined) {
          stop(new CancelledError("Cannot continue: the stream is complete"));
          controller.close();
          return;
        }
        const index = next - window.length - 1;
        const plain = await task;
        const offset = index * map.chunkSize;
        const from = Math.max(0, start - offset);
        const to = Math.min(plain.length, end - offset);
        if (to > from) {
          const piece = from === 0 && to === plain.length
            ? plain
            : plain.subarray(from, to);
          delivered += piece.length;
          controller.enqueue(piece);
          emit({ type: "progress", delivered, total });
        }
        fill();
        if (next > last && window.length === 0) {
          stop(new CancelledError("Cannot continue: the stream is complete"));
          controller.close();
        }
      } catch (error) {
        stop(error);
        throw error;
      }
    },
    cancel(reason) {
      stop(
        reason instanceof CancelledError ? reason : new CancelledError(
          "Cannot continue: the consumer cancelled the stream",
          { cause: reason },
        ),
      );
    },
  }, { highWaterMark: 0 });
}

function plan(
  map: DataMap,
  options: DecryptOptions,
): { first: number; last: number; start: number; end: number } {
  const whole = options.start === undefined && options.end === undefined;
  const start = options.start ?? 0;
  const end = options.end ?? map.size;
  if (
    !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 ||
    end < start || end > map.size
  ) {
    throw new RangeError(
      `Cannot decrypt bytes ${start} to ${end}: the range must satisfy 0 <= start <= end <= ${map.size}`,
    );
  }
  // A whole read authenticates every chunk, the empty one of an empty file too.
  if (whole) return { first: 0, last: map.chunks.length - 1, start, end };
  if (start === end) return { first: 0, last: -1, start, end };
  return {
    first: Math.floor(start / map.chunkSize),
    last: Math.floor((end - 1) / map.chunkSize),
    start,
    end,
  };
}
