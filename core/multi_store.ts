/**
 * Several chunk stores acting as one: reads fail over (and may be hedged),
 * writes keep each chunk on `replicas` stores.
 *
 * Reads try the stores in order of recent success and move on when one
 * fails, lacks the chunk or serves bytes that do not match the address.
 * Writes ask more stores than needed and keep the first successes, so a few
 * failing peers do not fail an upload.
 *
 * @example Fail over from a store that lost a chunk
 * ```ts
 * import { memoryStore, multiStore, seal, decryptStream } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * const good = memoryStore();
 * const { dataMap, key } = await seal(new Blob(["hello"]).stream(), good);
 * const both = multiStore([memoryStore(), good]);
 * const text = await new Response(decryptStream(dataMap, key, both)).text();
 * assert.equal(text, "hello");
 * ```
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import {
  ChunkNotFoundError,
  type ChunkStore,
  type StoreOptions,
  verifyAddress,
} from "./chunk_store.ts";
import { PartialFailureError } from "./errors.ts";

/** Options of {@linkcode multiStore}. */
export interface MultiStoreOptions {
  /** On how many stores `put` keeps each chunk, and how many must hold it for `has`. Defaults to 1. */
  replicas?: number;
  /** Stores asked beyond `replicas` when writing, to finish even when some fail. Defaults to 1. */
  extraWrites?: number;
  /**
   * Check each chunk read against its address and fail over when it does not
   * match. Defaults to `true`: without it a corrupt copy is only caught by
   * the reader's AEAD check, after the store has already returned it.
   */
  verify?: boolean;
  /** Ask the next store too when a read has not finished after this long. Off by default. */
  hedgeAfterMs?: number;
}

/** A {@linkcode multiStore}: a chunk store, plus what it has learnt. */
export interface MultiStore extends ChunkStore {
  /** The stores, the most recently successful for reads first. */
  readonly ranking: readonly ChunkStore[];
}

/**
 * Combines `stores` into one store with failover, optional hedging and
 * replicated writes.
 *
 * @param stores The stores, in the order to try them first.
 * @param options Replicas, extra writes, read verification and hedging.
 * @returns The combined store.
 * @throws {RangeError} When `stores` is empty or `replicas` exceeds its length.
 *
 * @example Keep every chunk on two of three stores
 * ```ts
 * import { memoryStore, multiStore, seal } from "@sluice/sluice/chunks";
 * import assert from "node:assert/strict";
 *
 * const stores = [memoryStore(), memoryStore(), memoryStore()];
 * const { dataMap } = await seal(new Blob(["x"]).stream(), stores, { replicas: 2 });
 * const address = dataMap.chunks[0]!.address;
 * const holders = await Promise.all(stores.map((s) => s.has(address)));
 * assert.ok(holders.filter(Boolean).length >= 2);
 * ```
 */
export function multiStore(
  stores: readonly ChunkStore[],
  options: MultiStoreOptions = {},
): MultiStore {
  const replicas = options.replicas ?? 1;
  if (stores.length === 0) {
    throw new RangeError("Cannot combine stores: none were given");
  }
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > stores.length) {
    throw new RangeError(
      `Cannot keep ${replicas} replicas: it must be an integer from 1 to ${stores.length}, the number of stores`,
    );
  }
  const extraWrites = options.extraWrites ?? 1;
  const verify = options.verify ?? true;
  const ranking = [...stores];

  const promote = (store: ChunkStore) => {
    const at = ranking.indexOf(store);
    if (at > 0) ranking.unshift(...ranking.splice(at, 1));
  };
  const demote = (store: ChunkStore) => {
    const at = ranking.indexOf(store);
    if (at >= 0 && at < ranking.length - 1) {
      ranking.push(...ranking.splice(at, 1));
    }
  };

  const readOne = async (
    store: ChunkStore,
    address: string,
    signal: AbortSignal,
  ): Promise<Uint8Array> => {
    const bytes = await store.get(address, { signal });
    if (verify) await verifyAddress(address, bytes, true);
    return bytes;
  };

  return {
    get ranking(): readonly ChunkStore[] {
      return [...ranking];
    },
    get(address, opts) {
      return readFailover([...ranking], address, opts, {
        readOne,
        promote,
        demote,
        hedgeAfterMs: options.hedgeAfterMs,
      });
    },
    async put(address, bytes, opts) {
      // Start each chunk at a different store so replicas spread evenly.
      const start = parseInt(address.slice(0, 8), 16) % stores.length;
      const order = stores.map((_, i) => (start + i) % stores.length);
      await writeReplicas(
        stores,
        order,
        address,
        bytes,
        replicas,
        extraWrites,
        opts,
      );
    },
    async has(address, opts) {
      const answers = await Promise.all(
        stores.map((s) => s.has(address, opts).catch(() => false)),
      );
      opts?.signal?.throwIfAborted();
      return answers.filter(Boolean).length >= replicas;
    },
  };
}

interface ReadPlan {
  readOne(
    store: ChunkStore,
    address: string,
    signal: AbortSignal,
  ): Promise<Uint8Array>;
  promote(store: ChunkStore): void;
  demote(store: ChunkStore): void;
  hedgeAfterMs: number | undefined;
}

// Tries the stores in order; the next one starts when the current one fails,
// or, with hedging, when it is slow. The first good answer wins and the
// others are aborted.
function readFailover(
  order: ChunkStore[],
  address: string,
  opts: StoreOptions | undefined,
  plan: ReadPlan,
): Promise<Uint8Array> {
  const outer = opts?.signal;
  const controller = new AbortController();
  const onAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener("abort", onAbort, { once: true });
  const errors: unknown[] = [];
  let next = 0;
  let running = 0;
  return new Promise<Uint8Array>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      outer?.removeEventListener("abort", onAbort);
      controller.abort(
        new DOMException("another store answered", "AbortError"),
      );
      fn();
    };
    const launch = () => {
      const store = order[next++];
      if (store === undefined) return;
      running++;
      if (plan.hedgeAfterMs !== undefined && next < order.length) {
        delay(plan.hedgeAfterMs, undefined, { signal: controller.signal })
          .then(() => {
            if (!settled) launch();
          }, () => {});
      }
      plan.readOne(store, address, controller.signal).then((bytes) => {
        plan.promote(store);
        finish(() => resolve(bytes));
      }, (error) => {
        running--;
        if (settled) return;
        if (outer?.aborted) return finish(() => reject(outer.reason));
        plan.demote(store);
        errors.push(error);
        if (next < order.length) launch();
        else if (running === 0) {
          finish(() => reject(readFailure(address, errors)));
        }
      });
    };
    if (outer?.aborted) return finish(() => reject(outer.reason));
    launch();
  });
}

function readFailure(address: string, errors: unknown[]): unknown {
  const found = errors.filter((e) => !(e instanceof ChunkNotFoundError));
  if (found.length === 0) return new ChunkNotFoundError(address);
  // The last real failure; it decides whether a later retry may help.
  return found[found.length - 1];
}

// Writes to stores in `order` (indexes into `stores`, which the error reports).
async function writeReplicas(
  stores: readonly ChunkStore[],
  order: readonly number[],
  address: string,
  bytes: Uint8Array,
  replicas: number,
  extraWrites: number,
  opts: StoreOptions | undefined,
): Promise<void> {
  const succeeded: number[] = [];
  const failed: { item: number; error: unknown }[] = [];
  const controller = new AbortController();
  const outer = opts?.signal;
  const onAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener("abort", onAbort, { once: true });
  let next = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0;
      const settle = () => {
        if (succeeded.length >= replicas) resolve();
        else if (next < order.length) launch();
        else if (running === 0) reject(undefined);
      };
      const launch = () => {
        const index = order[next++]!;
        const store = stores[index]!;
        running++;
        store.put(address, bytes, { signal: controller.signal }).then(() => {
          running--;
          succeeded.push(index);
          if (succeeded.length >= replicas || running === 0) settle();
        }, (error) => {
          running--;
          if (outer?.aborted) return reject(outer.reason);
          failed.push({ item: index, error });
          settle();
        });
      };
      const first = Math.min(order.length, replicas + extraWrites);
      for (let i = 0; i < first; i++) launch();
    });
  } catch (reason) {
    if (outer?.aborted) throw outer.reason;
    if (succeeded.length === 0 && failed.length > 0) {
      throw failed[failed.length - 1]!.error;
    }
    throw new PartialFailureError({
      succeeded,
      failed,
      operation: `keep chunk ${address} on ${replicas} stores`,
      cause: reason ?? failed[0]?.error,
    });
  } finally {
    outer?.removeEventListener("abort", onAbort);
    // The first successes are kept; writes still running are not needed.
    controller.abort(new DOMException("enough replicas", "AbortError"));
  }
}
