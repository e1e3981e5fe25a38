/**
 * Where sealed chunks live: the {@linkcode ChunkStore} interface every store
 * implements, and {@linkcode memoryStore}, the simplest one.
 *
 * A store holds content-addressed bytes: a chunk's address is the SHA-256 of
 * its bytes, so stores check what they are given without any key.
 *
 * @example Put and get a chunk
 * ```ts
 * import { memoryStore } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * const store = memoryStore();
 * const bytes = new TextEncoder().encode("sealed bytes");
 * const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
 * const address = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
 * await store.put(address, bytes);
 * assert.equal(await store.has(address), true);
 * assert.deepEqual(await store.get(address), bytes);
 * ```
 *
 * @module
 */

import { isAddress, sha256Hex } from "./_bytes.ts";
import { IntegrityError, SluiceError } from "./errors.ts";

/** Options of every store operation. */
export interface StoreOptions {
  /** Aborting it abandons the operation and rejects with its reason. */
  signal?: AbortSignal;
}

/**
 * A place that holds sealed chunks by address.
 *
 * Implementations check the address on `put` (the SHA-256 of the bytes), are
 * idempotent (putting a chunk twice is fine), and reject a missing chunk with
 * {@linkcode ChunkNotFoundError}. Bytes returned by `get` belong to the
 * caller but may be shared with the store: read them, do not change them.
 */
export interface ChunkStore {
  /** The sealed chunk at `address`. */
  get(address: string, options?: StoreOptions): Promise<Uint8Array>;
  /** Stores `bytes` at `address`, which must be their SHA-256. */
  put(
    address: string,
    bytes: Uint8Array,
    options?: StoreOptions,
  ): Promise<void>;
  /** Whether the store holds `address`. */
  has(address: string, options?: StoreOptions): Promise<boolean>;
}

/**
 * A store does not hold the chunk asked for.
 *
 * Not retryable on the same store; a store that fails over
 * (`multiStore`) tries the next one.
 *
 * @example
 * ```ts
 * import { ChunkNotFoundError, memoryStore } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(memoryStore().get("ab".repeat(32)), ChunkNotFoundError);
 * ```
 */
export class ChunkNotFoundError extends SluiceError {
  /** Always `false`: asking the same store again will not help. */
  readonly retryable: boolean = false;
  /** The address asked for. */
  readonly address: string;

  /**
   * Makes a not-found error.
   *
   * @param address The address asked for.
   * @param options The `cause`, if any.
   */
  constructor(address: string, options?: { cause?: unknown }) {
    super(`Cannot get chunk ${address}: not found`, options);
    this.address = address;
  }
}

/**
 * Throws a `TypeError` unless `address` is 64 lowercase hex characters.
 *
 * @param address The candidate.
 * @throws {TypeError} When it is not a chunk address.
 *
 * @example
 * ```ts
 * import { assertAddress } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * assertAddress("0f".repeat(32));
 * assert.throws(() => assertAddress("../etc/passwd"), TypeError);
 * ```
 */
export function assertAddress(address: string): void {
  if (!isAddress(address)) {
    throw new TypeError(
      `Cannot use chunk address ${
        JSON.stringify(address).slice(0, 80)
      }: it must be 64 lowercase hex characters`,
    );
  }
}

/**
 * Rejects with an `IntegrityError` unless `bytes` hash to `address`.
 *
 * @param address The expected address.
 * @param bytes The sealed chunk.
 * @param retryable Whether another source may have a good copy.
 * @returns When the address matches.
 * @throws {IntegrityError} When it does not.
 *
 * @example
 * ```ts
 * import { verifyAddress } from "@sluice/sluice/chunks";
 * import { IntegrityError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(
 *   verifyAddress("00".repeat(32), new Uint8Array(3)),
 *   IntegrityError,
 * );
 * ```
 */
export async function verifyAddress(
  address: string,
  bytes: Uint8Array,
  retryable = false,
): Promise<void> {
  const actual = await sha256Hex(bytes as Uint8Array<ArrayBuffer>);
  if (actual !== address) {
    throw new IntegrityError({
      check: "address",
      subject: `chunk ${address}`,
      expected: address,
      actual,
      retryable,
    });
  }
}

// Runs `fn` and turns what it throws into a rejection.
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * A chunk store in memory, for tests, caches and small jobs.
 *
 * `put` verifies the address and keeps a copy; `get` returns the stored
 * bytes without copying (do not change them).
 *
 * @returns An empty store.
 *
 * @example
 * ```ts
 * import { memoryStore } from "@sluice/sluice/chunks";
 * import { IntegrityError } from "@sluice/sluice/errors";
 * import assert from "node:assert/strict";
 *
 * const store = memoryStore();
 * await assert.rejects(store.put("00".repeat(32), new Uint8Array(1)), IntegrityError);
 * assert.equal(store.size, 0);
 * ```
 */
export function memoryStore(): ChunkStore & {
  /** How many chunks it holds. */
  readonly size: number;
} {
  const chunks = new Map<string, Uint8Array>();
  return {
    get size(): number {
      return chunks.size;
    },
    get(address, options) {
      return settle(() => {
        options?.signal?.throwIfAborted();
        assertAddress(address);
        const bytes = chunks.get(address);
        if (bytes === undefined) throw new ChunkNotFoundError(address);
        return bytes;
      });
    },
    async put(address, bytes, options) {
      options?.signal?.throwIfAborted();
      assertAddress(address);
      if (chunks.has(address)) return;
      const copy = bytes.slice();
      await verifyAddress(address, copy);
      chunks.set(address, copy);
    },
    has(address, options) {
      return settle(() => {
        options?.signal?.throwIfAborted();
        assertAddress(address);
        return chunks.has(address);
      });
    },
  };
}
